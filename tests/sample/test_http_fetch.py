"""HTTP fetches and ACL keywords: unit cases, then the same expressions in a live HAProxy 2.6
(`http-request return ... lf-string "%[EXPR]"` and `if { ACL }` probes) against nsproxy's
compiled rules on the same requests."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsproxy.config.model import ProxyCfg
from nsproxy.config.model_http import HttpResult
from nsproxy.config.parser import parse_files
from nsproxy.sample import (
    AclSet,
    CompileEnv,
    Hook,
    Sample,
    SmpType,
    Verdict,
    compile_condition,
    compile_expr,
)
from nsproxy.sample.expr import parse_expr
from nsproxy.sample.http_fetch import base32, split_target, split_values, url_params
from nsproxy.sample.types import MISSING

from .haproxy_ref import needs_haproxy
from .http_ref import HttpRef, http_haproxy
from .http_txn import HttpTxn, request, response

REQ = (
    b"GET /p/a.b/x?b=2&c=3&b=4&n=42 HTTP/1.1\r\nHost: h.example:81\r\nx: 1\r\n"
    b'x: "a,b", c\r\nX: LAST\r\nx-ip: 10.1.2.3, ::1\r\nx-n: 12abc\r\n'
    b"Cookie: a=1; b=2; a=3\r\nCookie: n=7\r\n\r\n"
)


def value(expr: str, txn: HttpTxn, hook: Hook = Hook.FE_HRQ_HDR) -> object:
    smp = compile_expr(expr, hook, CompileEnv())(txn)
    return None if smp is None else smp.value


def test_header_occurrences_split_at_commas_outside_quotes() -> None:
    t = request(REQ)
    assert value("req.hdr(x)", t) == "LAST"
    assert value("req.hdr(x,1)", t) == "1"
    assert value("req.hdr(x,2)", t) == '"a,b"'
    assert value("req.hdr(x,-2)", t) == "c"
    assert value("req.hdr(x,9)", t) is None
    assert value("req.fhdr(x,2)", t) == '"a,b", c'
    assert value("req.hdr_cnt(x)", t) == 4
    assert value("req.fhdr_cnt(x)", t) == 3
    assert value("hdr_cnt(nope)", t) == 0
    assert value("req.hdr_ip(x-ip)", t) == IPv6Address("::1")
    assert value("req.hdr_ip(x-ip,1)", t) == IPv4Address("10.1.2.3")
    assert value("req.hdr_val(x-n)", t) == 12
    assert split_values(b'a, "b,\\"c", d') == [b"a", b'"b,\\"c"', b"d"]


def test_uri_parts() -> None:
    t = request(REQ)
    assert value("path", t) == "/p/a.b/x"
    assert value("query", t) == "b=2&c=3&b=4&n=42"
    assert value("base", t) == "h.example:81/p/a.b/x"
    assert value("url_param(b)", t) == "2"
    assert value("urlp_val(n)", t) == 42
    assert value("method", t) == "GET"
    assert value("req.ver", t) == "1.1"
    assert split_target(b"http://h/x?y") == (b"/x", b"?y")
    assert split_target(b"*") == (b"", b"")
    assert url_params(b"a=1&&b&c=") == [(b"a", b"1"), (b"b", b""), (b"c", b"")]
    assert value("base32", t) == base32(t.http_req) if t.http_req else False


def test_cookies_and_response() -> None:
    t = request(REQ)
    assert value("req.cook(a)", t) == "3"
    assert value("req.cook", t) == "1"
    assert value("req.cook_cnt(a)", t) == 2
    assert value("req.cook_val(n)", t) == 7
    response(t, b"HTTP/1.1 404 Nope\r\nSet-Cookie: s=9; Path=/\r\nServer: x, y\r\n\r\n")
    hook = Hook.FE_HRS_HDR
    assert value("status", t, hook) == 404
    assert value("res.cook(s)", t, hook) == "9"
    assert value("res.hdr(server)", t, hook) == "y"
    assert value("shdr_cnt(server)", t, hook) == 2
    assert value("res.ver", t, hook) == "1.1"


def test_body_and_captures() -> None:
    t = request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", req_body=b"hello")
    t.req_captures = ["cap0", None]
    assert value("req.body", t, Hook.FE_HRQ_BDY) == b"hello"
    assert value("req.body_len", t, Hook.FE_HRQ_BDY) == 5
    assert value("capture.req.hdr(0)", t) == "cap0"
    assert value("capture.req.hdr(1)", t) is None
    assert value("capture.req.hdr(7)", t) is None


def test_tcp_mode_has_no_http_values() -> None:
    t = HttpTxn()
    assert value("req.hdr(host)", t) is None
    assert value("path", t) is None
    assert value("req.proto_http", t) is None  # the fetch fails, as HAProxy's


def test_tcp_mode_fetches_wait_for_an_unfinished_head() -> None:
    """TCP mode, bytes that may still become a request head: the request fetches and the
    HTTP ACL answer "not yet" until the data is final, then nothing."""
    t = HttpTxn(http_req_pending=True)
    for expr in ("req.hdr(host)", "path", "method", "url", "base", "req.cook(a)", "req.ver"):
        assert parse_expr(expr, CompileEnv())[0].get(t) is MISSING, expr
    assert compile_condition(["if", "HTTP"], AclSet(), Hook.FE_REQ_CNT)(t) is Verdict.MISS
    assert (
        compile_condition(["if", "{", "path_beg", "/x", "}"], AclSet(), Hook.FE_REQ_CNT)(t)
        is Verdict.MISS
    )
    assert value("capture.req.method", t) is None  # only HTTP mode captures: never waits
    assert parse_expr("res.hdr(x)", CompileEnv())[0].get(t) is None  # response side: no wait
    t.req_final = True
    assert value("path", t) is None
    assert compile_condition(["if", "HTTP"], AclSet(), Hook.FE_REQ_CNT)(t) is Verdict.FAIL


def cond(words: str, t: HttpTxn) -> Verdict:
    return compile_condition(["if", *words.split()], AclSet(), Hook.FE_HRQ_HDR)(t)


def test_acl_keywords_iterate_occurrences() -> None:
    t = request(REQ)
    assert cond("{ hdr(x) 1 }", t) is Verdict.PASS  # not the last one: ACLs see them all
    assert cond("{ hdr_beg(host) h. }", t) is Verdict.PASS
    assert cond("{ path_dir a.b }", t) is Verdict.PASS
    assert cond("{ urlp(b) 4 }", t) is Verdict.PASS
    assert cond("{ cook(a) 1 }", t) is Verdict.PASS
    assert cond("{ method POST }", t) is Verdict.FAIL
    assert cond("METH_GET", t) is Verdict.PASS
    assert cond("HTTP_1.1", t) is Verdict.PASS


def test_unavailable_fetch_is_refused_in_requests() -> None:
    with pytest.raises(Exception, match="HTTP response headers"):
        compile_expr("res.hdr(x)", Hook.FE_HRQ_HDR)
    assert Sample(SmpType.STR, "x").value == "x"


# --- differential: the same expressions in HAProxy 2.6 ------------------------------------

EXPRS = [
    "req.hdr(x)",
    "req.hdr(x,1)",
    "req.hdr(x,2)",
    "req.hdr(x,-2)",
    "req.hdr(x,9)",
    "hdr(x)",
    "req.fhdr(x)",
    "req.fhdr(x,2)",
    "req.hdr_cnt(x)",
    "req.fhdr_cnt(x)",
    "req.hdr_cnt",
    "hdr_cnt(cookie)",
    "req.hdr_ip(x-ip)",
    "req.hdr_ip(x-ip,2)",
    "hdr_ip(x-ip,1)",
    "req.hdr_val(x-n)",
    "hdr_val(x-n)",
    "req.hdr_names",
    "req.hdr_names(;)",
    "req.hdrs",
    "path",
    "pathq",
    "query",
    "url",
    "base",
    "base32",
    "method",
    "req.ver",
    "req_ver",
    "url_param(b)",
    "url_param(c)",
    "url_param(zz)",
    "urlp(n)",
    "urlp_val(n)",
    "req.cook(a)",
    "req.cook(b)",
    "req.cook",
    "cook(n)",
    "req.cook_cnt(a)",
    "cook_cnt",
    "req.cook_val(n)",
    "req.hdr(host)",
    "capture.req.method",
    "capture.req.uri",
    "capture.req.ver",
    "req.proto_http",
]
ACLS = [
    "path_beg /p",
    "path_end x",
    "path_sub a.b",
    "path_dir a.b",
    "path_dom a",
    "path_reg ^/p/a",
    "path_len 8",
    "path /p/a.b/x",
    "hdr_beg(host) h.",
    "hdr_end(host) :81",
    "hdr_sub(x) a",
    "hdr_dom(host) example",
    "hdr_reg(x) ^c$",
    "hdr_len(x) 1",
    "hdr(x) 1",
    "hdr(x) -i last",
    "hdr_cnt(x) 4",
    "hdr_ip(x-ip) 10.0.0.0/8",
    "hdr_ip(x-ip) ::1",
    "hdr_val(x-n) gt 10",
    "req.hdr(x) -m found",
    "req.hdr(nope) -m found",
    "method GET",
    "method POST",
    "url_beg /p",
    "url_sub n=42",
    "urlp(b) 4",
    "url_param(b) 2",
    "cook(a) 1",
    "cook_beg(a) 3",
    "base_beg h.example",
    "base_end /x",
    "req.ver 1.1",
    "HTTP_1.0",
    "METH_GET",
    "HTTP_URL_ABS",
    "HTTP_URL_SLASH",
    "HTTP_CONTENT",
]
REQUESTS = [
    REQ,
    b"POST http://abs.example/q;p?x=1 HTTP/1.1\r\nHost: abs.example\r\nContent-Length: 0\r\n"
    b"Cookie: a=\r\nCookie: =x; b=\r\n\r\n",
    b"GET /only?b HTTP/1.0\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: z\r\n\r\n",
]


def _frontend() -> str:
    lines = []
    for n, e in enumerate(EXPRS):
        lines.append(
            f'  http-request return status 200 content-type text/plain lf-string "%[{e}]" '
            f"if {{ req.hdr(x-t) -m str e{n} }}"
        )
    for n, a in enumerate(ACLS):
        lines.append(
            "  http-request return status 200 content-type text/plain string yes "
            f"if {{ req.hdr(x-t) -m str a{n} }} {a if a.isupper() else '{ ' + a + ' }'}"
        )
    lines.append(
        "  http-request return status 200 content-type text/plain string no "
        "if { req.hdr(x-t) -m beg a }"
    )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def ref() -> Iterator[HttpRef]:
    with http_haproxy(_frontend()) as r:
        yield r


@pytest.fixture(scope="module")
def fe(tmp_path_factory: pytest.TempPathFactory) -> ProxyCfg:
    cfg: Path = tmp_path_factory.mktemp("cfg") / "fe.cfg"
    cfg.write_text(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
        f"  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:1\n{_frontend()}\n"
        "  default_backend be\nbackend be\n  server s1 127.0.0.1:2\n"
    )
    config, state = parse_files([str(cfg)])
    assert state.errors == [] and state.warnings == []
    assert config is not None
    px = config.proxy("fe")
    assert px is not None and px.http is not None
    return px


def _with_selector(raw: bytes, sel: str) -> bytes:
    cut = raw.index(b"\r\n") + 2
    return raw[:cut] + b"x-t: " + sel.encode() + b"\r\n" + raw[cut:]


def _ours(fe: ProxyCfg, raw: bytes) -> bytes | None:
    """The answer nsproxy's rules give, as the runtime sends it: an HTTP/1.0 client that
    did not ask for keep-alive gets HAProxy's `connection: close` after the headers."""
    assert fe.http is not None
    txn = request(raw)
    for rule in fe.http.http_request:
        r = rule.run(txn)
        if r is not None:
            return on_wire(r, txn)
    return None


def on_wire(r: HttpResult, txn: HttpTxn) -> bytes:
    assert txn.http_req is not None
    if txn.http_req.keep_alive:
        return r.data
    head, _, body = r.data.partition(b"\r\n\r\n")
    return head + b"\r\nconnection: close\r\n\r\n" + body


@needs_haproxy
@pytest.mark.parametrize("n", range(len(EXPRS)), ids=EXPRS)
def test_fetch_values_are_haproxys(ref: HttpRef, fe: ProxyCfg, n: int) -> None:
    for raw in REQUESTS:
        req = _with_selector(raw, f"e{n}")
        client, _ = ref.exchange(req)
        assert _ours(fe, req) == client, raw


@needs_haproxy
@pytest.mark.parametrize("n", range(len(ACLS)), ids=ACLS)
def test_acl_matches_are_haproxys(ref: HttpRef, fe: ProxyCfg, n: int) -> None:
    for raw in REQUESTS:
        req = _with_selector(raw, f"a{n}")
        client, _ = ref.exchange(req)
        assert _ours(fe, req) == client, raw


USERLIST = """userlist L
  group admins users bob
  group ops
  user alice insecure-password secret groups ops
  user bob password {hash}
"""
AUTH_RULES = (
    "  http-request auth realm r if !{ http_auth(L) }\n"
    "  http-request return status 200 content-type text/plain string admin "
    "if { http_auth_group(L) admins }\n"
    "  http-request return status 200 content-type text/plain lf-string "
    '"%[http_auth_type]:%[http_auth_user]:%[http_auth_pass]:%[http_auth_group(L)]"\n'
)


def _basic(user: str, password: str) -> bytes:
    import base64

    token = base64.b64encode(f"{user}:{password}".encode())
    return b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic " + token + b"\r\n\r\n"


@needs_haproxy
def test_http_auth_against_haproxy(tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    hashed = crypt.crypt("hunter2", "$6$nsproxytest")
    assert hashed is not None
    userlist = USERLIST.format(hash=hashed)
    cfg = tmp_path / "auth.cfg"
    cfg.write_text(
        f"{userlist}defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
        f"  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:1\n{AUTH_RULES}"
        "  default_backend be\nbackend be\n  server s1 127.0.0.1:2\n"
    )
    config, state = parse_files([str(cfg)])
    assert state.errors == [] and config is not None
    fe = config.proxy("fe")
    assert fe is not None
    requests = [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        _basic("alice", "secret"),
        _basic("alice", "wrong"),
        _basic("bob", "hunter2"),
        _basic("bob", "hunter3"),
        _basic("carol", "x"),
        b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc\r\n\r\n",
    ]
    with http_haproxy(AUTH_RULES, defaults="", extra=userlist) as ref:
        for raw in requests:
            client, _ = ref.exchange(raw)
            assert _ours(fe, raw) == client, raw


def test_missing_userlist_and_group_are_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(
        "userlist L\n  user a insecure-password x groups nope\ndefaults\n  mode http\n"
        "frontend fe\n  bind 127.0.0.1:1\n  http-request auth if !{ http_auth(M) }\n"
    )
    _, state = parse_files([str(cfg)])
    assert state.errors == [
        "config : userlist 'L': no such group 'nope' specified in user 'a'",
        f"parsing [{cfg}:7]: unable to find userlist 'M' referenced in arg 1 of sample fetch "
        "keyword 'http_auth'.",
    ]


# --- properties of the parsing helpers -----------------------------------------------------

_VALUE = st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@given(_VALUE)
def test_split_values_keeps_every_byte_outside_blanks(value: bytes) -> None:
    parts = split_values(value)
    assert len(parts) >= 1
    if b'"' not in value:
        assert parts == [p.strip(b" \t") for p in value.split(b",")]
    assert all(p == p.strip(b" \t") for p in parts)


@given(st.binary(max_size=60))
def test_split_target_parts_come_from_the_target(target: bytes) -> None:
    path, query = split_target(target)
    assert path == b"" or path.startswith(b"/")
    assert query == b"" or query.startswith(b"?")
    assert b"?" not in path
    assert (path + query) in target


@given(st.binary(max_size=60), st.sampled_from([b"&", b";"]))
def test_url_params_round_trip(query: bytes, delim: bytes) -> None:
    pairs = url_params(query, delim)
    assert all(delim not in n and delim not in v for n, v in pairs)
    assert len(pairs) <= query.count(delim) + 1
