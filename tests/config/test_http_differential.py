"""http-request/http-response rules compiled by nsproxy against HAProxy 2.6 on loopback.

Each action runs in a live HAProxy in front of a recording backend; the same lines compiled
by nsproxy and applied to the parsed request (or response) must give the head the backend
got (or the client got), and HAProxy's own answers (deny, return, redirect, auth, tarpit)
byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nsproxy.config.model import ProxyCfg
from nsproxy.config.model_http import Verb, evaluate
from nsproxy.config.parser import parse_files
from nsproxy.proto.h1.head import parse_response_head, serialize_request, serialize_response
from nsproxy.proto.h1.rewrite import add_forwarded_for
from sample.haproxy_ref import needs_haproxy
from sample.http_ref import HttpRef, http_haproxy
from sample.http_txn import request, response

pytestmark = needs_haproxy

# (selector, rule): the rule applies when the request carries `x-t: <selector>`.
REQUEST_RULES = [
    ("sh", "http-request set-header X-A %[req.hdr(host)]-v"),
    ("sh2", "http-request set-header x-dup new"),
    ("ah", "http-request add-header X-Dup 3"),
    ("dh", "http-request del-header x-dup"),
    ("dhb", "http-request del-header x-d -m beg"),
    ("dhs", "http-request del-header up -m sub"),
    ("rh", r"http-request replace-header x-r ^(a+)(b*)$ \2\1"),
    ("rv", r"http-request replace-value x-v ^a(.*)$ z\1"),
    ("sp", "http-request set-path /new%[path]"),
    ("sq", "http-request set-query a=%[url_param(b)]"),
    ("sq0", "http-request set-query %[req.hdr(x-none)]"),
    ("su", "http-request set-uri /u?x=%[req.hdr(x-r)]"),
    ("sm", "http-request set-method PUT"),
    ("spq", "http-request set-pathq /pq?z=1"),
    ("sv", "http-request set-header x-var %[var(txn.t)]-%[src]"),
    ("fmt", "http-request set-var-fmt(txn.f) %[path],%[method]"),
    ("fmt", "http-request set-header x-f %[var(txn.f)]"),
    ("un", "http-request unset-var(txn.t)"),
    ("un", "http-request set-header x-un %[var(txn.t)]"),
    ("al", "http-request allow"),
    ("al", "http-request set-header x-never 1"),
]
DATA = Path(__file__).parent / "data"
ANSWER_RULES = [
    ("reterr", f"http-request return errorfile {DATA / 'errorfile-403-lf.http'}"),
    ("deny503", "http-request deny deny_status 503"),
    ("deny403", "http-request deny deny_status 403"),
    ("deny", "http-request deny"),
    ("deny429", "http-request deny deny_status 429"),
    ("denyb", "http-request deny deny_status 200 content-type text/plain string hi hdr x-h v"),
    ("ret", 'http-request return status 200 content-type text/plain string "hello" hdr x-a b'),
    ("ret0", "http-request return"),
    ("ret404", "http-request return status 404"),
    ("ret502", "http-request return status 502 content-type text/plain string x"),
    ("retlf", 'http-request return content-type text/plain lf-string "v=%[req.hdr(x-v)]"'),
    ("r301", "http-request redirect location /foo code 301"),
    ("r302", "http-request redirect location /a%[req.hdr(x-v)]"),
    ("r303", "http-request redirect location /a code 303 set-cookie A=b"),
    ("r307", "http-request redirect location /a code 307 clear-cookie A"),
    ("r308", "http-request redirect location /a code 308"),
    ("rpre", "http-request redirect prefix /pre"),
    ("rpre2", "http-request redirect prefix /pre drop-query append-slash"),
    ("rpre3", "http-request redirect prefix / append-slash"),
    ("rsch", "http-request redirect scheme https"),
    ("rsch2", "http-request redirect scheme https drop-query"),
    ("auth", "http-request auth realm myrealm"),
    ("auth2", "http-request auth"),
    ("tarpit", "http-request tarpit"),
    ("tarpit404", "http-request tarpit deny_status 404"),
]
RESPONSE_RULES = [
    ("rsh", "http-response set-header X-Srv b-%[status]"),
    ("rah", "http-response add-header X-Srv c"),
    ("rdh", "http-response del-header x-srv"),
    ("rss", "http-response set-status 404"),
    ("rss2", 'http-response set-status 299 reason "Fine Thanks"'),
    ("rrv", r"http-response replace-value x-srv ^(.)$ <\1>"),
    ("rret", "http-response return status 503 content-type text/plain string down"),
    ("rdeny", "http-response deny"),
    ("rredir", "http-response redirect location /elsewhere"),
]
AFTER_RULES = [
    ("aft", "http-after-response set-header x-after %[status]"),
    ("aft2", "http-after-response set-status 202"),
    ("aft2", "http-after-response del-header x-srv"),
    ("rdeny", "http-after-response add-header x-after-deny 1"),
]


def _frontend() -> str:
    lines = [
        "  http-request set-var(txn.t) req.hdr(x-t)",
        f"  errorfile 503 {DATA / 'errorfile-503.http'}",
    ]
    for sel, rule in REQUEST_RULES + ANSWER_RULES:
        lines.append(f"  {rule} if {{ req.hdr(x-t) -m str {sel} }}")
    for sel, rule in RESPONSE_RULES + AFTER_RULES:
        lines.append(f"  {rule} if {{ var(txn.t) -m str {sel} }}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def ref() -> Iterator[HttpRef]:
    with http_haproxy(_frontend()) as r:
        yield r


@pytest.fixture(scope="module")
def fe(tmp_path_factory: pytest.TempPathFactory) -> ProxyCfg:
    cfg = tmp_path_factory.mktemp("cfg") / "fe.cfg"
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


def _req(sel: str, extra: bytes = b"", target: bytes = b"/p/x?b=2&c=3") -> bytes:
    return (
        b"GET "
        + target
        + b" HTTP/1.1\r\nHost: h.example:81\r\nx-t: "
        + sel.encode()
        + b"\r\nx-r: aab\r\nx-v: a1, b2,a3\r\nX-Dup: 1\r\nx-dup: 2\r\nx-del: d\r\n"
        + b"X-Up: u\r\n"
        + extra
        + b"\r\n"
    )


@pytest.mark.parametrize("sel", sorted({s for s, _ in REQUEST_RULES} | {"none"}))
def test_request_rules_edit_what_the_server_gets(ref: HttpRef, fe: ProxyCfg, sel: str) -> None:
    raw = _req(sel)
    client, server = ref.exchange(raw)
    assert server is not None, client
    txn = request(raw, src=("127.0.0.1", 40000))
    assert fe.http is not None
    got = evaluate(fe.http.http_request, txn)
    assert got is None or got.verb is Verb.ALLOW
    assert txn.http_req is not None
    # the source port differs from the live run: compare without it
    assert serialize_request(txn.http_req) == server


@pytest.mark.parametrize("sel", [s for s, _ in ANSWER_RULES])
def test_answers_are_haproxys(ref: HttpRef, fe: ProxyCfg, sel: str) -> None:
    raw = _req(sel, target=b"/p/x?b=2")
    client, server = ref.exchange(raw)
    assert server is None
    txn = request(raw)
    assert fe.http is not None
    got = evaluate(fe.http.http_request, txn)
    assert got is not None
    assert got.verb is (Verb.TARPIT if sel.startswith("tarpit") else Verb.ANSWER)
    assert got.data == client


@pytest.mark.parametrize("sel", sorted({s for s, _ in RESPONSE_RULES + AFTER_RULES}))
def test_response_rules(ref: HttpRef, fe: ProxyCfg, sel: str) -> None:
    raw = _req(sel)
    client, server = ref.exchange(raw)
    assert server is not None  # response rules: the request went through
    txn = request(raw)
    assert fe.http is not None
    assert evaluate(fe.http.http_request, txn) is None
    response(txn, ref.recorder.response)
    got = evaluate(fe.http.http_response, txn)
    if got is not None:
        # HAProxy's own answer: http-after-response rules run on it too, on its parsed head
        head, _, body = got.data.partition(b"\r\n\r\n")
        txn.http_resp = parse_response_head(head + b"\r\n")
        assert evaluate(fe.http.http_after_response, txn) is None
        assert serialize_response(txn.http_resp) + body == client
        return
    assert evaluate(fe.http.http_after_response, txn) is None
    assert txn.http_resp is not None
    body = ref.recorder.response.split(b"\r\n\r\n", 1)[1]
    assert serialize_response(txn.http_resp) + body == client


def test_rules_of_a_listen_section_and_their_order(tmp_path: Path) -> None:
    cfg = tmp_path / "l.cfg"
    cfg.write_text(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
        "  timeout connect 2s\nlisten l\n  bind 127.0.0.1:1\n"
        "  http-request del-header X-Neutron-Router-ID\n"
        "  http-request set-header X-Neutron-Network-ID net-1\n"
        "  server s 127.0.0.1:2\n"
    )
    config, state = parse_files([str(cfg)])
    assert config is not None and state.errors == []
    px = config.proxy("l")
    assert px is not None and px.http is not None
    txn = request(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Neutron-Router-ID: forged\r\n"
        b"X-Neutron-Network-ID: forged\r\n\r\n"
    )
    assert evaluate(px.http.http_request, txn) is None
    assert txn.http_req is not None
    assert txn.http_req.headers == [(b"host", b"a"), (b"x-neutron-network-id", b"net-1")]


ADDR_OPTIONS = [
    "option forwardfor",
    "option forwardfor except 127.0.0.0/8",
    "option forwardfor except 10.0.0.0/8 header X-Real-IP",
    "option forwardfor header X-Client if-none",
    "option originalto",
    "option originalto except 127.0.0.1 header X-Dst",
    "option originalto header X-Client",
]


@pytest.mark.parametrize("option", ADDR_OPTIONS)
def test_forwardfor_and_originalto_settings(option: str, tmp_path: Path) -> None:
    """HttpCfg's forwardfor/originalto, applied as the runtime will (after the rules), give
    the header HAProxy adds: X-Forwarded-For after the client's own, none when excluded,
    none under if-none when the client sent one."""
    cfg = tmp_path / "o.cfg"
    cfg.write_text(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
        f"  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:1\n  {option}\n"
        "  default_backend be\nbackend be\n  server s1 127.0.0.1:2\n"
    )
    config, state = parse_files([str(cfg)])
    assert state.errors == [] and config is not None
    px = config.proxy("fe")
    assert px is not None and px.http is not None
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.7\r\nX-Client: c\r\n\r\n"
    with http_haproxy(f"  {option}") as ref:
        _, server = ref.exchange(raw)
    assert server is not None
    txn = request(raw)
    req = txn.http_req
    assert req is not None
    for setting in (px.http.forwardfor, px.http.originalto):
        if setting is not None and not setting.excluded("127.0.0.1"):
            add_forwarded_for(req.headers, b"127.0.0.1", setting.name, setting.if_none)
    assert serialize_request(req) == server
