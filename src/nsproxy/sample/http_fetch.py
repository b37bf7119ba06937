"""HTTP sample fetches and ACL keywords (req.hdr, path, url_param, req.cook, status, ...).

They read the parsed heads the runtime exposes as `txn.http_req` / `txn.http_resp`
(proto.h1.head: lower-case names, values as bytes) and answer None when there is no such
head (no response yet; in TCP mode, buffered bytes that are not an HTTP request). The
request-head fetches answer MISSING while a TCP stream's bytes are an unfinished head.
Values are latin-1 text, one character per byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from ipaddress import IPv6Address
from typing import cast

from nsproxy.balance import full_hash
from nsproxy.proto.h1.head import Header, RequestHead
from nsproxy.sample.acl import AclKeyword, register_acl_keyword
from nsproxy.sample.args import ArgSpec, ArgType, ArgValue
from nsproxy.sample.context import Txn
from nsproxy.sample.fetch import FetchDef, FetchFn, register_fetch
from nsproxy.sample.match import Method
from nsproxy.sample.patref import CompileEnv
from nsproxy.sample.places import Use
from nsproxy.sample.types import MISSING, FetchResult, Sample, SmpType, buf2ip, read_int64
from nsproxy.sample.userlist import Userlist, Userlists, basic_credentials

Iterate = Callable[[Txn, Sequence[ArgValue]], list[Sample] | None]


def split_values(value: bytes) -> list[bytes]:
    """A header value cut at commas outside double quotes, each element trimmed of blanks
    (HAProxy's view of a multi-value header for `hdr`, `hdr_cnt`, ...)."""
    if b'"' not in value:
        return [v.strip(b" \t") for v in value.split(b",")]
    out: list[bytes] = []
    start = 0
    quoted = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == 0x5C:  # backslash escapes the next byte inside quotes
                i += 1
            elif c == 0x22:
                quoted = False
        elif c == 0x22:
            quoted = True
        elif c == 0x2C:
            out.append(value[start:i].strip(b" \t"))
            start = i + 1
        i += 1
    out.append(value[start:].strip(b" \t"))
    return out


def _values(headers: list[Header], name: bytes, full: bool) -> list[bytes]:
    """Every occurrence of `name` (all headers when empty), split at commas unless `full`."""
    lines = [v for n, v in headers if n == name] if name else [v for _, v in headers]
    if full:
        return lines
    out: list[bytes] = []
    for v in lines:
        out.extend(split_values(v))
    return out


def _pick(values: list[bytes], occ: int) -> bytes | None:
    """Occurrence `occ`: 1 = first, -1 = last (the default), 0 = last as well."""
    if not values:
        return None
    if occ > 0:
        return values[occ - 1] if occ <= len(values) else None
    if occ < 0:
        return values[occ] if -occ <= len(values) else None
    return values[-1]


def _str(v: bytes) -> Sample:
    return Sample(SmpType.STR, v.decode("latin-1"))


def _name(args: Sequence[ArgValue]) -> bytes:
    return str(args[0]).lower().encode("latin-1") if args else b""


def _occ(args: Sequence[ArgValue]) -> int:
    return int(args[1]) if len(args) > 1 else -1


def _req_headers(txn: Txn) -> list[Header] | None:
    req = txn.http_req
    return None if req is None else req.headers


def _res_headers(txn: Txn) -> list[Header] | None:
    resp = txn.http_resp
    return None if resp is None else resp.headers


Headers = Callable[[Txn], list[Header] | None]


def _hdr(heads: Headers, full: bool) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        headers = heads(txn)
        if headers is None:
            return None
        v = _pick(_values(headers, _name(args), full), _occ(args))
        return None if v is None else _str(v)

    return fetch


def _hdr_all(heads: Headers, full: bool) -> Iterate:
    """For ACLs: every occurrence (or only the one asked for)."""

    def iterate(txn: Txn, args: Sequence[ArgValue]) -> list[Sample] | None:
        headers = heads(txn)
        if headers is None:
            return None
        values = _values(headers, _name(args), full)
        if len(args) > 1 and int(args[1]):
            one = _pick(values, int(args[1]))
            values = [] if one is None else [one]
        return [_str(v) for v in values] or None

    return iterate


def _hdr_cnt(heads: Headers, full: bool) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        headers = heads(txn)
        if headers is None:
            return None
        return Sample(SmpType.SINT, len(_values(headers, _name(args), full)))

    return fetch


def _ip_of(v: bytes) -> Sample | None:
    text = v.decode("latin-1")
    a4 = buf2ip(text)
    if a4 is not None:
        return Sample(SmpType.IPV4, a4)
    try:
        return Sample(SmpType.IPV6, IPv6Address(text))
    except ValueError:
        return None


def _int_of(v: bytes) -> Sample:
    return Sample(SmpType.SINT, read_int64(v.decode("latin-1"))[0])


def _hdr_conv(heads: Headers, conv: Callable[[bytes], Sample | None]) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        headers = heads(txn)
        if headers is None:
            return None
        v = _pick(_values(headers, _name(args), False), _occ(args))
        return None if v is None else conv(v)

    return fetch


def _hdr_conv_all(heads: Headers, conv: Callable[[bytes], Sample | None]) -> Iterate:
    base = _hdr_all(heads, False)

    def iterate(txn: Txn, args: Sequence[ArgValue]) -> list[Sample] | None:
        got = base(txn, args)
        if got is None:
            return None
        out = [conv(str(s.value).encode("latin-1")) for s in got]
        return [s for s in out if s is not None] or None

    return iterate


def _hdrs(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    headers = _req_headers(txn)
    if headers is None:
        return None
    return _str(b"".join([n + b": " + v + b"\r\n" for n, v in headers]) + b"\r\n")


def _hdr_names(heads: Headers) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        headers = heads(txn)
        if headers is None:
            return None
        delim = str(args[0]).encode("latin-1") if args and args[0] != "" else b","
        return _str(delim.join(n for n, _ in headers))

    return fetch


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(path, query-with-?) of a request target; an absolute URI loses its scheme and
    authority first. The path is empty for `*` or an authority-form target."""
    if target[:1] != b"/":
        sep = target.find(b"://")
        if sep < 0:
            return b"", b""
        slash = target.find(b"/", sep + 3)
        qmark = target.find(b"?", sep + 3)
        if slash < 0 or (0 <= qmark < slash):
            # no path: HAProxy sees none (and an empty one before a query)
            return b"", target[qmark:] if qmark >= 0 else b""
        target = target[slash:]
    q = target.find(b"?")
    if q < 0:
        return target, b""
    return target[:q], target[q:]


def _req(txn: Txn) -> RequestHead | None:
    return txn.http_req


def _path(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    req = txn.http_req
    if req is None:
        return None
    path, _ = split_target(req.target)
    return _str(path) if path else None


def _pathq(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    req = txn.http_req
    if req is None:
        return None
    path, query = split_target(req.target)
    return _str(path + query) if path else None


def _query(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    req = txn.http_req
    if req is None:
        return None
    _, query = split_target(req.target)
    return _str(query[1:]) if query else None


def _url(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    req = txn.http_req
    return None if req is None else _str(req.target)


def _host(req: RequestHead) -> bytes | None:
    return next((v for n, v in req.headers if n == b"host"), None)


def _base(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    req = txn.http_req
    if req is None:
        return None
    path, _ = split_target(req.target)
    host = _host(req)
    if host is None:
        return _str(path) if path else None
    return _str(host + path)


def _base32(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    req = txn.http_req
    if req is None:
        return None
    return Sample(SmpType.SINT, base32(req))


def base32(req: RequestHead) -> int:
    """HAProxy's `base32`: the sdbm hash of Host + path, avalanched (an unsigned 32-bit int)."""
    h = 0
    host = _host(req)
    for c in host or b"":
        h = (c + (h << 6) + (h << 16) - h) & 0xFFFFFFFF
    path, _ = split_target(req.target)
    for c in path:
        h = (c + (h << 6) + (h << 16) - h) & 0xFFFFFFFF
    return full_hash(h)


def _method(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    req = txn.http_req
    return None if req is None else Sample(SmpType.METH, req.method.decode("latin-1"))


def _version(v: bytes) -> Sample | None:
    return _str(v[5:]) if v.startswith(b"HTTP/") else None


def _req_ver(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    req = txn.http_req
    return None if req is None else _version(req.version)


def _res_ver(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    resp = txn.http_resp
    return None if resp is None else _version(resp.version)


def _status(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    resp = txn.http_resp
    return None if resp is None else Sample(SmpType.SINT, resp.status)


def url_params(query: bytes, delim: bytes = b"&") -> list[tuple[bytes, bytes]]:
    """The (name, value) pairs of a query string (without `?`), in order."""
    out: list[tuple[bytes, bytes]] = []
    for part in query.split(delim):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        out.append((name, value))
    return out


def _params(txn: Txn, args: Sequence[ArgValue]) -> list[bytes] | None:
    req = txn.http_req
    if req is None:
        return None
    _, query = split_target(req.target)
    if not query:
        return None
    delim = str(args[1]).encode("latin-1") if len(args) > 1 and args[1] != "" else b"&"
    name = str(args[0]).encode("latin-1") if args else b""
    pairs = url_params(query[1:], delim)
    if not name:
        return [v for _, v in pairs]
    return [v for n, v in pairs if n == name]


def _url_param(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    values = _params(txn, args)
    return _str(values[0]) if values else None


def _url_param_all(txn: Txn, args: Sequence[ArgValue]) -> list[Sample] | None:
    values = _params(txn, args)
    return [_str(v) for v in values] if values else None


def _urlp_val(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    values = _params(txn, args)
    return _int_of(values[0]) if values else None


def _cookie_line(value: bytes, name_len: int) -> list[tuple[bytes, bytes]]:
    """The `name=value` pairs of one Cookie line, scanned as HAProxy does: a pair starting
    (blanks included) fewer than name_len + 2 bytes before the end of the line is not seen,
    so `Cookie: a=` has no cookie `a` while `Cookie: x=1; a=` has one."""
    out: list[tuple[bytes, bytes]] = []
    pos = 0
    n = len(value)
    while pos + name_len + 1 < n:
        semi = value.find(b";", pos)
        end = n if semi < 0 else semi
        name, eq, val = value[pos:end].strip(b" \t").partition(b"=")
        if eq:
            out.append((name.strip(b" \t"), val.strip(b" \t")))
        if semi < 0:
            break
        pos = semi + 1
    return out


def cookies(headers: list[Header], header: bytes, name_len: int = 0) -> list[tuple[bytes, bytes]]:
    """The (name, value) pairs of every `header` (cookie: `;`-separated; set-cookie: the
    first pair of each line). `name_len`: the length of the name looked for."""
    out: list[tuple[bytes, bytes]] = []
    for n, v in headers:
        if n != header:
            continue
        if header == b"cookie":
            out.extend(_cookie_line(v, name_len))
            continue
        name, eq, value = v.split(b";", 1)[0].strip(b" \t").partition(b"=")
        if eq:
            out.append((name.strip(b" \t"), value.strip(b" \t")))
    return out


def _cook_values(
    heads: Headers, header: bytes
) -> Callable[[Txn, Sequence[ArgValue]], list[bytes] | None]:
    def values(txn: Txn, args: Sequence[ArgValue]) -> list[bytes] | None:
        headers = heads(txn)
        if headers is None:
            return None
        name = str(args[0]).encode("latin-1") if args else b""
        pairs = cookies(headers, header, len(name))
        if not name:
            return [v for _, v in pairs[:1]]
        return [v for n, v in pairs if n == name]

    return values


def _cook(heads: Headers, header: bytes) -> FetchFn:
    values = _cook_values(heads, header)

    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        vs = values(txn, args)
        return _str(vs[-1]) if vs else None

    return fetch


def _cook_all(heads: Headers, header: bytes) -> Iterate:
    values = _cook_values(heads, header)

    def iterate(txn: Txn, args: Sequence[ArgValue]) -> list[Sample] | None:
        vs = values(txn, args)
        return [_str(v) for v in vs] if vs else None

    return iterate


def _cook_cnt(heads: Headers, header: bytes) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        headers = heads(txn)
        if headers is None:
            return None
        name = str(args[0]).encode("latin-1") if args else b""
        pairs = cookies(headers, header, len(name))
        return Sample(SmpType.SINT, sum(1 for n, _ in pairs if not name or n == name))

    return fetch


def _cook_val(heads: Headers, header: bytes) -> FetchFn:
    values = _cook_values(heads, header)

    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        vs = values(txn, args)
        return _int_of(vs[-1]) if vs else None

    return fetch


def _body(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    if txn.http_req is None:
        return None
    return Sample(SmpType.BIN, txn.req_body)


def _body_len(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    if txn.http_req is None:
        return None
    return Sample(SmpType.SINT, len(txn.req_body))


def _body_size(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    req = txn.http_req
    if req is None:
        return None
    return Sample(SmpType.SINT, req.content_length if req.framing == 1 else len(txn.req_body))


def _capture(res: bool) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        slots = txn.res_captures if res else txn.req_captures
        idx = int(args[0])
        if not 0 <= idx < len(slots):
            return None
        v = slots[idx]
        return None if v is None else Sample(SmpType.STR, v)

    return fetch


def _capture_req(part: str) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        req = txn.http_req
        if req is None or txn.http_status == 0:  # 0: TCP mode, where nothing captured it
            return None
        if part == "method":
            return _str(req.method)
        if part == "uri":
            path, query = split_target(req.target)
            return _str(path + query) if path else None
        return _str(req.version)

    return fetch


def _capture_res_ver(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    resp = txn.http_resp
    return None if resp is None else _str(resp.version)


def _proto_http(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    return _TRUE if txn.http_req is not None else None


_TRUE = Sample(SmpType.BOOL, True)


def wait_for_head(fn: FetchFn) -> FetchFn:
    """`fn` answering MISSING ("not yet") instead of nothing while a TCP stream's buffered
    bytes are an unfinished request head that more bytes may complete."""

    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        r = fn(txn, args)
        if r is None and not txn.req_final and txn.http_req_pending:
            return MISSING
        return r

    return fetch


def _over_tcp(defs: Sequence[FetchDef]) -> list[FetchDef]:
    """The request-head fetches made to wait for a TCP stream's head (see wait_for_head); the
    captures read what HTTP mode captured, never the buffered bytes."""
    return [
        FetchDef(d.name, wait_for_head(d.fn), d.out, d.use, d.args, d.check, d.iterate, d.prepare)
        if d.use in (_QV, _QP) and not d.name.startswith("capture.")
        else d
        for d in defs
    ]


def _bind_userlists(fetch: str) -> Callable[[list[ArgValue], CompileEnv], list[ArgValue]]:
    """The configuration's userlists travel with the arguments; the named one is looked up
    per request (it may be declared after the rule), and checked once parsing ends."""

    def prepare(args: list[ArgValue], env: CompileEnv) -> list[ArgValue]:
        lists = env.refs.userlists
        lists.uses.append((env.file, env.line, str(args[0]), fetch))
        return [args[0], cast(ArgValue, lists)]

    return prepare


def _credentials(txn: Txn) -> tuple[str, str] | None:
    req = txn.http_req
    if req is None:
        return None
    value = next((v for n, v in req.headers if n == b"authorization"), None)
    return None if value is None else basic_credentials(value)


def _valid_user(txn: Txn, args: Sequence[ArgValue]) -> tuple[Userlist, str] | None:
    creds = _credentials(txn)
    if creds is None:
        return None
    lists = cast(Userlists, args[1])
    ul = lists.get(str(args[0]))
    if ul is None or not ul.check(*creds):
        return None
    return ul, creds[0]


def _http_auth(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    creds = _credentials(txn)
    if creds is None:
        return None
    return Sample(SmpType.BOOL, _valid_user(txn, args) is not None)


def _http_auth_group(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    found = _valid_user(txn, args)
    return None if found is None else Sample(SmpType.STR, found[1])


def _http_auth_groups(txn: Txn, args: Sequence[ArgValue]) -> list[Sample] | None:
    """For ACLs: the groups of the authenticated user (the patterns are group names)."""
    found = _valid_user(txn, args)
    if found is None:
        return None
    ul, user = found
    return [Sample(SmpType.STR, g) for g in ul.groups_of(user)] or None


def _auth_part(index: int) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        if index == 0:
            req = txn.http_req
            if req is None:
                return None
            value = next((v for n, v in req.headers if n == b"authorization"), None)
            if value is None:
                return None
            return _str(value.strip().split(b" ", 1)[0])
        creds = _credentials(txn)
        return None if creds is None else Sample(SmpType.STR, creds[index - 1])

    return fetch


def _check_capture_id(args: list[ArgValue]) -> list[ArgValue]:
    if int(args[0]) < 0:
        raise ValueError("capture id must be a positive integer")
    return args


_S, _I = ArgType.STR, ArgType.SINT
_NAME_OCC = ArgSpec((_S, _I), 0)
_NAME_OCC1 = ArgSpec((_S, _I), 1)
_NAME = ArgSpec((_S,), 0)
_NAME1 = ArgSpec((_S,), 1)
_URLP = ArgSpec((_S, _S), 0)
_QV, _QP = Use.HRQHV, Use.HRQHP
_SV, _SP = Use.HRSHV, Use.HRSHP
_T, _B, _N, _M = SmpType.STR, SmpType.BIN, SmpType.SINT, SmpType.METH


def _header_fetches(prefix: str, heads: Headers, use: Use) -> list[FetchDef]:
    """The header fetches of one direction under one name prefix (`req.`, `res.`, ...)."""
    return [
        FetchDef(
            f"{prefix}hdr", _hdr(heads, False), _T, use, _NAME_OCC, None, _hdr_all(heads, False)
        ),
        FetchDef(
            f"{prefix}fhdr", _hdr(heads, True), _T, use, _NAME_OCC, None, _hdr_all(heads, True)
        ),
        FetchDef(f"{prefix}hdr_cnt", _hdr_cnt(heads, False), _N, use, _NAME),
        FetchDef(f"{prefix}fhdr_cnt", _hdr_cnt(heads, True), _N, use, _NAME),
        FetchDef(
            f"{prefix}hdr_ip",
            _hdr_conv(heads, _ip_of),
            SmpType.IPV4,
            use,
            _NAME_OCC,
            None,
            _hdr_conv_all(heads, _ip_of),
        ),
        FetchDef(
            f"{prefix}hdr_val",
            _hdr_conv(heads, _int_of),
            _N,
            use,
            _NAME_OCC,
            None,
            _hdr_conv_all(heads, _int_of),
        ),
    ]


_HTTP_FETCHES = [
    *_header_fetches("req.", _req_headers, _QV),
    *_header_fetches("res.", _res_headers, _SV),
    FetchDef(
        "hdr", _hdr(_req_headers, False), _T, _QV, _NAME_OCC, None, _hdr_all(_req_headers, False)
    ),
    FetchDef("hdr_cnt", _hdr_cnt(_req_headers, False), _N, _QV, _NAME),
    FetchDef(
        "hdr_ip",
        _hdr_conv(_req_headers, _ip_of),
        SmpType.IPV4,
        _QV,
        _NAME_OCC,
        None,
        _hdr_conv_all(_req_headers, _ip_of),
    ),
    FetchDef(
        "hdr_val",
        _hdr_conv(_req_headers, _int_of),
        _N,
        _QV,
        _NAME_OCC,
        None,
        _hdr_conv_all(_req_headers, _int_of),
    ),
    FetchDef(
        "shdr", _hdr(_res_headers, False), _T, _SV, _NAME_OCC, None, _hdr_all(_res_headers, False)
    ),
    FetchDef("shdr_cnt", _hdr_cnt(_res_headers, False), _N, _SV, _NAME),
    FetchDef(
        "shdr_ip",
        _hdr_conv(_res_headers, _ip_of),
        SmpType.IPV4,
        _SV,
        _NAME_OCC,
        None,
        _hdr_conv_all(_res_headers, _ip_of),
    ),
    FetchDef(
        "shdr_val",
        _hdr_conv(_res_headers, _int_of),
        _N,
        _SV,
        _NAME_OCC,
        None,
        _hdr_conv_all(_res_headers, _int_of),
    ),
    FetchDef("req.hdrs", _hdrs, _T, _QV),
    FetchDef("req.hdr_names", _hdr_names(_req_headers), _T, _QV, _NAME),
    FetchDef("res.hdr_names", _hdr_names(_res_headers), _T, _SV, _NAME),
    FetchDef("path", _path, _T, _QV),
    FetchDef("pathq", _pathq, _T, _QV),
    FetchDef("query", _query, _T, _QV),
    FetchDef("url", _url, _T, _QV),
    FetchDef("base", _base, _T, _QV),
    FetchDef("base32", _base32, _N, _QV),
    FetchDef("method", _method, _M, _QP),
    FetchDef("req.ver", _req_ver, _T, _QV),
    FetchDef("req_ver", _req_ver, _T, _QV),
    FetchDef("res.ver", _res_ver, _T, _SV),
    FetchDef("resp_ver", _res_ver, _T, _SV),
    FetchDef("status", _status, _N, _SP),
    FetchDef("url_param", _url_param, _T, _QV, _URLP, None, _url_param_all),
    FetchDef("urlp", _url_param, _T, _QV, _URLP, None, _url_param_all),
    FetchDef("urlp_val", _urlp_val, _N, _QV, _URLP),
    FetchDef(
        "req.cook",
        _cook(_req_headers, b"cookie"),
        _T,
        _QV,
        _NAME,
        None,
        _cook_all(_req_headers, b"cookie"),
    ),
    FetchDef(
        "cook",
        _cook(_req_headers, b"cookie"),
        _T,
        _QV,
        _NAME,
        None,
        _cook_all(_req_headers, b"cookie"),
    ),
    FetchDef("req.cook_cnt", _cook_cnt(_req_headers, b"cookie"), _N, _QV, _NAME),
    FetchDef("cook_cnt", _cook_cnt(_req_headers, b"cookie"), _N, _QV, _NAME),
    FetchDef("req.cook_val", _cook_val(_req_headers, b"cookie"), _N, _QV, _NAME),
    FetchDef("cook_val", _cook_val(_req_headers, b"cookie"), _N, _QV, _NAME),
    FetchDef(
        "res.cook",
        _cook(_res_headers, b"set-cookie"),
        _T,
        _SV,
        _NAME,
        None,
        _cook_all(_res_headers, b"set-cookie"),
    ),
    FetchDef(
        "scook",
        _cook(_res_headers, b"set-cookie"),
        _T,
        _SV,
        _NAME,
        None,
        _cook_all(_res_headers, b"set-cookie"),
    ),
    FetchDef("res.cook_cnt", _cook_cnt(_res_headers, b"set-cookie"), _N, _SV, _NAME),
    FetchDef("scook_cnt", _cook_cnt(_res_headers, b"set-cookie"), _N, _SV, _NAME),
    FetchDef("res.cook_val", _cook_val(_res_headers, b"set-cookie"), _N, _SV, _NAME),
    FetchDef("scook_val", _cook_val(_res_headers, b"set-cookie"), _N, _SV, _NAME),
    FetchDef("req.body", _body, _B, Use.HRQBO),
    FetchDef("req.body_len", _body_len, _N, Use.HRQBO),
    FetchDef("req.body_size", _body_size, _N, Use.HRQBO),
    FetchDef(
        "capture.req.hdr", _capture(False), _T, Use.FTEND, ArgSpec((_I,), 1), _check_capture_id
    ),
    FetchDef(
        "capture.res.hdr", _capture(True), _T, Use.FTEND, ArgSpec((_I,), 1), _check_capture_id
    ),
    FetchDef("capture.req.method", _capture_req("method"), _T, _QP),
    FetchDef("capture.req.uri", _capture_req("uri"), _T, _QP),
    FetchDef("capture.req.ver", _capture_req("ver"), _T, _QP),
    FetchDef("capture.res.ver", _capture_res_ver, _T, _SP),
    FetchDef("req.proto_http", _proto_http, SmpType.BOOL, _QP),
    FetchDef(
        "http_auth", _http_auth, SmpType.BOOL, _QV, _NAME1, prepare=_bind_userlists("http_auth")
    ),
    FetchDef(
        "http_auth_group",
        _http_auth_group,
        _T,
        _QV,
        _NAME1,
        iterate=_http_auth_groups,
        prepare=_bind_userlists("http_auth_group"),
    ),
    FetchDef("http_auth_type", _auth_part(0), _T, _QV),
    FetchDef("http_auth_user", _auth_part(1), _T, _QV),
    FetchDef("http_auth_pass", _auth_part(2), _T, _QV),
    FetchDef("req_proto_http", _proto_http, SmpType.BOOL, _QP),
]
register_fetch(*_over_tcp(_HTTP_FETCHES))

_MATCHES = (
    ("", Method.STR),
    ("_beg", Method.BEG),
    ("_dir", Method.DIR),
    ("_dom", Method.DOM),
    ("_end", Method.END),
    ("_len", Method.LEN),
    ("_reg", Method.REG),
    ("_sub", Method.SUB),
)

# HAProxy 2.6's HTTP ACL keywords: a fetch with a match method fixed by the name.
register_acl_keyword(
    *(
        AclKeyword(f"{acl}{suffix}", fetch, method)
        for acl, fetch in (
            ("base", "base"),
            ("cook", "req.cook"),
            ("hdr", "req.hdr"),
            ("path", "path"),
            ("scook", "res.cook"),
            ("shdr", "res.hdr"),
            ("url", "url"),
            ("urlp", "urlp"),
        )
        for suffix, method in _MATCHES
    ),
    AclKeyword("method", "method", Method.STR),
    AclKeyword("http_auth_group", "http_auth_group", Method.STR),
    AclKeyword("req.ver", "req.ver", Method.STR),
    AclKeyword("req_ver", "req.ver", Method.STR),
    AclKeyword("res.ver", "res.ver", Method.STR),
    AclKeyword("resp_ver", "res.ver", Method.STR),
)
