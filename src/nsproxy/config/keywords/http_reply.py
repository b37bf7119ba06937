"""Answers configured in rules: `return`/`deny` replies, `errorfile` contents, redirects.

Each is parsed with HAProxy 2.6's messages and prepared at load: a constant reply is built
once, as bytes; a log-format one (`lf-string`, `lf-file`, a redirect location) renders
only its variable part per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nsproxy.config.model_http import ErrorFile, HttpResult, Verb
from nsproxy.config.registry import ConfigError
from nsproxy.http import answers
from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import UNTIL_EOF, parse_response_head
from nsproxy.sample import CompileEnv, Hook, SampleError, compile_logformat
from nsproxy.sample.context import Txn

REASONS: dict[int, str] = {
    100: "Continue",
    101: "Switching Protocols",
    102: "Processing",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    207: "Multi-Status",
    210: "Content Different",
    226: "IM Used",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    310: "Too many Redirects",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Time-out",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested range unsatisfiable",
    417: "Expectation failed",
    418: "I'm a teapot",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    423: "Locked",
    424: "Method failure",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    449: "Retry With",
    450: "Blocked by Windows Parental Controls",
    451: "Unavailable For Legal Reasons",
    456: "Unrecoverable Error",
    499: "client has closed connection",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway or Proxy Error",
    503: "Service Unavailable",
    504: "Gateway Time-out",
    505: "HTTP Version not supported",
    506: "Variant also negotiate",
    507: "Insufficient storage",
    508: "Loop detected",
    509: "Bandwidth Limit Exceeded",
    510: "Not extended",
    511: "Network authentication required",
    520: "Web server is returning an unknown error",
}
_CLASS_REASONS = {1: "Informational", 2: "Success", 3: "Redirection", 4: "Client Error"}


def reason(status: int) -> str:
    """HAProxy's http_get_reason(): the phrase it writes after a status it generates."""
    known = REASONS.get(status)
    if known is not None:
        return known
    if 500 <= status <= 599:
        return "Server Error"
    return _CLASS_REASONS.get(status // 100, "Other")


Render = Callable[[Txn], str]


@dataclass(slots=True)
class ReplySpec:
    """The arguments of `return` (and of `deny`/`tarpit` with a payload), as parsed."""

    status: int = 200
    status_given: bool = False
    content_type: str | None = None
    body: bytes | None = None
    lf_body: Render | None = None
    errorfile: ErrorFile | None = None
    headers: list[tuple[str, Render]] = field(default_factory=list)
    payload_kw: str | None = None

    @property
    def has_payload(self) -> bool:
        return self.body is not None or self.lf_body is not None


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        raise ConfigError(f"error opening file '{path}'") from None


def load_errorfile(status: int, path: str) -> ErrorFile:
    """`errorfile CODE FILE`: the file is a whole HTTP response; HAProxy sends its head with
    lower-case names and without its Connection header, then the body as written."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        raise ConfigError(f"errorfile : error opening file '{path}'.") from None
    return ErrorFile(status, path, *_prepare_errorfile(raw, f"errorfile : '{path}'"))


def _prepare_errorfile(raw: bytes, what: str) -> tuple[bytes, bool]:
    end = raw.find(b"\r\n\r\n")
    cut, keep = end + 4, end + 2
    lf = raw.find(b"\n\n")
    if end < 0 or (0 <= lf < end):
        end, cut, keep = lf, lf + 2, lf + 1
    if end < 0:
        raise ConfigError(f"{what}: unable to parse headers (error offset: 0)")
    try:
        head = parse_response_head(raw[:keep])
    except H1Error:
        raise ConfigError(f"{what}: unable to parse headers (error offset: 0)") from None
    body = raw[cut:]
    lines = [b"%s %d %s\r\n" % (head.version, head.status, head.reason)]
    lines += [n + b": " + v + b"\r\n" for n, v in head.headers if n != b"connection"]
    return b"".join(lines) + b"\r\n" + body, head.framing == UNTIL_EOF


def default_answer(status: int) -> HttpResult:
    """HAProxy's built-in answer for an error status (deny, tarpit)."""
    return HttpResult(Verb.ANSWER, status, answers.answer(status), answers.closes(status))


def parse_reply(
    args: list[str],
    i: int,
    env: CompileEnv,
    hook: Hook,
    *,
    deny: bool,
    warn: Callable[[str], None],
) -> tuple[ReplySpec, int]:
    """Parses `[status N] [content-type T] [string|lf-string|file|lf-file|errorfile X]
    [hdr N V]...` from args[i]; stops at `if`/`unless` or an unknown word."""
    spec = ReplySpec(status=403 if deny else 200)
    n = len(args)
    while i < n:
        kw = args[i]
        if kw == "status" or (deny and kw == "deny_status"):
            if i + 1 >= n:
                raise ConfigError("'status' expects <status_code> as argument")
            text = args[i + 1]
            digits = len(text) - len(text.lstrip("0123456789"))
            spec.status = int(text[:digits]) if digits else 0
            spec.status_given = True
            if not 200 <= spec.status <= 599:
                raise ConfigError(f"Unexpected status code '{spec.status}'")
            i += 2
        elif kw == "content-type":
            if i + 1 >= n:
                raise ConfigError("'content-type' expects <ctype> as argument")
            spec.content_type = args[i + 1]
            i += 2
        elif kw in ("string", "lf-string", "file", "lf-file", "errorfile"):
            if i + 1 >= n:
                what = "<str>" if "string" in kw else "<file>"
                raise ConfigError(f"'{kw}' expects {what} as argument")
            if spec.payload_kw is not None:
                raise ConfigError(
                    f"unexpected '{kw}' argument, '{spec.payload_kw}' already defined"
                )
            spec.payload_kw = kw
            value = args[i + 1]
            if kw == "string":
                spec.body = value.encode("latin-1", "surrogateescape")
            elif kw == "file":
                spec.body = _read(value)
            elif kw == "errorfile":
                try:
                    with open(value, "rb") as f:
                        raw = f.read()
                except OSError:
                    raise ConfigError(f"error opening file '{value}'") from None
                data, close = _prepare_errorfile(raw, f"'{value}'")
                spec.errorfile = ErrorFile(0, value, data, close)
            else:
                text = value if kw == "lf-string" else _read(value).decode("latin-1")
                try:
                    spec.lf_body = compile_logformat(
                        text, hook, env, mandatory=False, merge_spaces=False, http=True
                    )
                except SampleError as e:
                    raise ConfigError(str(e)) from None
            i += 2
        elif kw == "hdr":
            if i + 2 >= n:
                raise ConfigError("'hdr' expects <name> and <value> as arguments")
            try:
                value_fmt = compile_logformat(
                    args[i + 2], hook, env, mandatory=False, merge_spaces=False, http=True
                )
            except SampleError as e:
                raise ConfigError(str(e)) from None
            spec.headers.append((args[i + 1].lower(), value_fmt))
            i += 3
        else:
            break
    if spec.errorfile is not None:
        if spec.content_type is not None:
            warn(
                f"content-type '{spec.content_type}' ignored by the http reply when used "
                "with an erorrfile."
            )
        return spec, i
    if spec.has_payload and spec.content_type is None:
        raise ConfigError("a content type must be defined when non-empty payload is configured")
    if spec.status in (204, 304) and spec.has_payload:
        raise ConfigError(f"No body expected for {spec.status} responses")
    if deny and not spec.has_payload and not spec.headers and spec.status not in answers.MESSAGES:
        raise ConfigError(
            f"status code '{spec.status}' not handled by default with 'default-errorfiles' "
            "argument."
        )
    return spec, i


def compile_reply(
    spec: ReplySpec, verb: Verb, errorfile: Callable[[int], ErrorFile | None]
) -> Callable[[Txn], HttpResult]:
    """The reply as a callable; constant replies are built once.

    `errorfile(status)` finds the proxy's `errorfile` for a bare deny/tarpit (looked up at
    the first use, since `errorfile` lines may follow the rule).
    """
    status = spec.status
    if spec.errorfile is not None:
        fixed = HttpResult(verb, status, spec.errorfile.data, spec.errorfile.close)
        return lambda txn: fixed
    head = b"HTTP/1.1 %d %s\r\n" % (status, reason(status).encode())
    ctype = (
        b""
        if spec.content_type is None or not spec.has_payload
        else b"content-type: " + spec.content_type.encode("latin-1") + b"\r\n"
    )
    hdrs = spec.headers
    if spec.lf_body is None and not hdrs:
        body = spec.body or b""
        data = head + b"content-length: %d\r\n" % len(body) + ctype + b"\r\n" + body
        result = HttpResult(verb, status, data)
        return lambda txn: result
    lf_body = spec.lf_body
    const_body = spec.body or b""
    names = [(n.encode("latin-1"), fmt) for n, fmt in hdrs]

    def render(txn: Txn) -> HttpResult:
        body = const_body if lf_body is None else lf_body(txn).encode("latin-1", "replace")
        parts = [head]
        for n, fmt in names:
            parts.append(n + b": " + fmt(txn).encode("latin-1", "replace") + b"\r\n")
        parts.append(b"content-length: %d\r\n" % len(body))
        if body:
            parts.append(ctype)
        parts.append(b"\r\n")
        parts.append(body)
        return HttpResult(verb, status, b"".join(parts))

    return render


def compile_error_reply(
    status: int, verb: Verb, errorfile: Callable[[int], ErrorFile | None]
) -> Callable[[Txn], HttpResult]:
    """A bare `deny`/`tarpit` (optionally `deny_status N`): the proxy's errorfile for N when
    it has one, else HAProxy's built-in answer."""
    builtin = default_answer(status)
    if verb is not Verb.ANSWER:
        builtin = HttpResult(verb, status, builtin.data, builtin.close)
    resolved: list[HttpResult] = []

    def reply(txn: Txn) -> HttpResult:
        if not resolved:
            ef = errorfile(status)
            resolved.append(builtin if ef is None else HttpResult(verb, status, ef.data, ef.close))
        return resolved[0]

    return reply


REDIRECT_CODES = (301, 302, 303, 307, 308)


@dataclass(slots=True)
class RedirectSpec:
    """`redirect location|prefix|scheme X [code N] [drop-query] [append-slash] ...`."""

    kind: str = ""
    target: Render | None = None
    code: int = 302
    drop_query: bool = False
    append_slash: bool = False
    ignore_empty: bool = False
    set_cookie: str | None = None
    clear_cookie: str | None = None


_REDIRECT_WORDS = (
    "expects 'code', 'prefix', 'location', 'scheme', 'set-cookie', 'clear-cookie', "
    "'drop-query', 'ignore-empty' or 'append-slash'"
)


def parse_redirect(
    args: list[str], i: int, env: CompileEnv, hook: Hook, *, response: bool = False
) -> tuple[RedirectSpec, int]:
    """Parses the words after `redirect` from args[i], up to `if`/`unless`."""
    spec = RedirectSpec()
    n = len(args)
    while i < n and args[i] not in ("if", "unless"):
        kw = args[i]
        if kw in ("location", "prefix", "scheme"):
            if i + 1 >= n:
                raise ConfigError(f"missing argument for '{kw}'")
            spec.kind = kw
            try:
                spec.target = compile_logformat(
                    args[i + 1], hook, env, mandatory=False, merge_spaces=False
                )
            except SampleError as e:
                raise ConfigError(str(e)) from None
            i += 2
        elif kw in ("set-cookie", "clear-cookie"):
            if i + 1 >= n:
                raise ConfigError(f"missing argument for '{kw}'")
            if kw == "set-cookie":
                spec.set_cookie = args[i + 1]
            else:
                spec.clear_cookie = args[i + 1]
            i += 2
        elif kw == "code":
            if i + 1 >= n:
                raise ConfigError("missing argument for 'code'")
            text = args[i + 1]
            code = int(text) if text.isdigit() else 0
            if code not in REDIRECT_CODES:
                raise ConfigError(
                    f"'code': unsupported HTTP code '{text}' (must be one of 301, 302, 303, "
                    "307 or 308)"
                )
            spec.code = code
            i += 2
        elif kw == "drop-query":
            spec.drop_query = True
            i += 1
        elif kw == "append-slash":
            spec.append_slash = True
            i += 1
        elif kw == "ignore-empty":
            spec.ignore_empty = True
            i += 1
        else:
            raise ConfigError(f"{_REDIRECT_WORDS} (was '{kw}')")
    if not spec.kind:
        raise ConfigError("redirection type expected ('prefix', 'location', or 'scheme')")
    if response and spec.kind != "location":
        raise ConfigError("response only supports redirect type 'location'")
    return spec, i


def _path_and_query(target: bytes) -> bytes:
    """The request target without scheme and authority (HAProxy's http_get_path)."""
    if target[:1] == b"/":
        return target
    sep = target.find(b"://")
    if sep < 0:
        return b""
    slash = target.find(b"/", sep + 3)
    return b"" if slash < 0 else target[slash:]


def compile_redirect(spec: RedirectSpec) -> Callable[[Txn], HttpResult | None]:
    """The redirect as a callable answering the 30x HAProxy sends (None: `ignore-empty` met
    an empty location)."""
    code = spec.code
    head = b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nlocation: " % (code, reason(code).encode())
    tail = b"\r\n"
    if code in (302, 303, 307):
        tail += b"cache-control: no-cache\r\n"
    if spec.set_cookie is not None:
        tail += b"set-cookie: " + spec.set_cookie.encode("latin-1") + b"; path=/;\r\n"
    if spec.clear_cookie is not None:
        tail += b"set-cookie: " + spec.clear_cookie.encode("latin-1") + b"; path=/; Max-Age=0;\r\n"
    tail += b"\r\n"
    target = spec.target
    assert target is not None
    kind = spec.kind
    drop, slash, ignore_empty = spec.drop_query, spec.append_slash, spec.ignore_empty

    def run(txn: Txn) -> HttpResult | None:
        value = target(txn).encode("latin-1", "replace")
        if ignore_empty and not value:
            return None
        if kind == "location":
            loc = value
        else:
            req = txn.http_req
            path = b"/"
            if req is not None:
                path = _path_and_query(req.target) or b"/"
            if drop:
                path = path.split(b"?", 1)[0]
            if slash and not path.endswith(b"/"):
                path += b"/"
            if kind == "prefix":
                loc = path if value == b"/" else value + path
            else:
                host = b""
                if req is not None:
                    host = next((v for n, v in req.headers if n == b"host"), b"")
                loc = value + b"://" + host + path
        return HttpResult(Verb.ANSWER, code, head + loc + tail)

    return run
