"""HTTP keywords through the configuration parser: HAProxy 2.6's errors and warnings (checked
against the local `haproxy -c`), and the HttpCfg they build."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from nsproxy.config.model import ProxyCfg
from nsproxy.config.model_http import (
    AddrHeader,
    Capture,
    HttpCfg,
    Verb,
    evaluate,
    stream_modes,
)
from nsproxy.config.parser import ParseState, parse_files
from nsproxy.proto.h1.connection import HttpMode
from sample.haproxy_ref import HAPROXY, check_config, needs_haproxy
from sample.http_txn import request

HEAD = """defaults
  mode http
  timeout client 1s
  timeout server 1s
  timeout connect 1s
"""


def parse(tmp_path: Path, body: str, head: str = HEAD) -> tuple[ParseState, dict[str, ProxyCfg]]:
    cfg = tmp_path / "c.cfg"
    cfg.write_text(head + body)
    config, state = parse_files([str(cfg)])
    proxies = {p.name: p for p in config.proxies} if config is not None else {}
    return state, proxies


def ours(tmp_path: Path, body: str, head: str = HEAD) -> list[str]:
    state, _ = parse(tmp_path, body, head)
    prefix = str(tmp_path / "c.cfg")
    out = []
    for m in state.errors + state.warnings:
        m = m.removeprefix("config : ")
        out.append(m.replace(prefix, "c.cfg"))
    return out


def theirs(tmp_path: Path, body: str, head: str = HEAD) -> list[str]:
    lines = check_config(head + body, tmp_path)
    prefix = str(tmp_path / "check.cfg")
    return [
        ln.replace(prefix, "c.cfg")
        for ln in lines
        if not ln.startswith("Error(s) found") and not ln.startswith("Fatal errors")
    ]


FE = "frontend fe\n  bind 127.0.0.1:1\n"
LISTEN = "listen l\n  bind 127.0.0.1:1\n"
BE = "backend b\n"

# One case per line: the section it goes in, then the line. Every message must be HAProxy's.
CASES = [
    (FE, "http-request"),
    (FE, "http-request foo"),
    (FE, "http-request set-header"),
    (FE, "http-request set-header X"),
    (FE, "http-request set-header X y z"),
    (FE, "http-request del-header"),
    (LISTEN, "http-request del-header x -m foo"),
    (FE, "http-request del-header x y"),
    (FE, "http-request replace-header X"),
    (FE, "http-request set-path"),
    (FE, "http-request set-query a b"),
    (FE, "http-request set-uri"),
    (FE, "http-request set-method"),
    (FE, 'http-request set-query ""'),
    (FE, "http-request deny deny_status 999"),
    (FE, "http-request deny deny_status 299"),
    (FE, "http-request deny deny_status"),
    (FE, "http-request deny deny_status x"),
    (FE, "http-request deny foo"),
    (FE, "http-request deny if foo"),
    (FE, "http-request return status 999"),
    (FE, "http-request return status 100"),
    (FE, "http-request return foo"),
    (FE, "http-request return string"),
    (FE, "http-request return content-type"),
    (FE, "http-request return string x"),
    (FE, "http-request return hdr"),
    (FE, "http-request return hdr x"),
    (FE, "http-request return status 204 content-type t string x"),
    (FE, "http-request return status 200 content-type t string a file /etc/hostname"),
    (FE, "http-request return file /nonexistent content-type t"),
    (FE, "http-request return content-type t lf-string %[foo]"),
    (FE, "http-request redirect"),
    (FE, "http-request redirect foo"),
    (FE, "http-request redirect location"),
    (FE, "http-request redirect location /x code 305"),
    (FE, "http-request redirect location /x code x"),
    (FE, "http-request redirect location /x code"),
    (FE, "http-request redirect location /x foo"),
    (FE, "http-request auth realm"),
    (FE, "http-request auth realm a b"),
    (FE, "http-request set-var(txn.x)"),
    (FE, "http-request set-var(foo) str(1)"),
    (FE, "http-request set-var(txn.x) res.hdr(x)"),
    (FE, "http-request set-var(txn.x) str(a) foo"),
    (FE, "http-request unset-var(txn.x) str(x)"),
    (FE, "http-request set-log-level foo"),
    (FE, "http-request set-log-level silent foo"),
    (LISTEN, "http-request set-log-level"),
    (FE, "http-request capture"),
    (FE, "http-request capture req.hdr(x)"),
    (FE, "http-request capture req.hdr(x) len x"),
    (FE, "http-request capture req.hdr(x) len 3 foo"),
    (FE, "http-request capture req.hdr(x) id x"),
    (FE, "http-request capture req.hdr(x) id 0"),
    (BE, "http-request capture req.hdr(x) len 3"),
    (LISTEN, "http-response capture res.hdr(x) len 3"),
    (FE, "http-request set-header X %[res.hdr(x)]"),
    (FE, "http-request set-header X %[foo]"),
    (FE, "http-request set-header X y if { res.hdr(x) a }"),
    (FE, "http-response set-header X y if { path /a }"),
    (FE, "http-request allow foo"),
    (FE, "http-request set-status 200"),
    (FE, "http-request set-hdr a b"),
    (FE, "http-request deni"),
    (FE, "http-request xyzzy"),
    (LISTEN, "http-response set-stats 200"),
    (LISTEN, "http-after-response set-head a b"),
    (FE, "http-request set-header a b\n  redirect location /x\n  http-request set-header c d"),
    (FE, "http-response set-status"),
    (FE, "http-response set-status 9"),
    (FE, "http-response set-status 200 reason"),
    (FE, "http-response foo"),
    (LISTEN, "http-response redirect prefix /x"),
    (FE, "http-request use-service foo"),
    (FE, "http-request use-service"),
    (LISTEN, "http-after-response set-header a"),
    (LISTEN, "http-after-response deny"),
    (FE, "http-reuse safe"),
    (BE, "monitor-uri /x"),
    (BE, "capture request header Host len 10"),
    (BE, "option httplog"),
    (BE, "declare capture request len 3"),
    (LISTEN, "option forwardfor except"),
    (LISTEN, "option forwardfor except 1.2.3.4/33"),
    (LISTEN, "option forwardfor header"),
    (LISTEN, "option forwardfor foo"),
    (LISTEN, "option httplog foo"),
    (LISTEN, "http-reuse foo"),
    (LISTEN, "http-reuse"),
    (LISTEN, "monitor-uri"),
    (LISTEN, "unique-id-header"),
    (LISTEN, "capture request header"),
    (LISTEN, "capture request header Host"),
    (LISTEN, "capture request header Host len"),
    (LISTEN, "declare capture foo len 5"),
    (LISTEN, "errorfile 503"),
    (LISTEN, "errorfile 999 /tmp/x"),
    (LISTEN, "errorfile 503 /nonexistent"),
    ("defaults\n", "http-request deny"),
    (FE, "capture"),
    (FE, "capture foo"),
    (FE, "capture cookie x"),
    (FE, "capture response header Server"),
    (FE, "declare"),
    (FE, "declare foo"),
    (FE, "declare capture request"),
    (FE, "declare capture request len"),
    (FE, "declare capture request len 0"),
    (FE, "declare capture request len x"),
    (LISTEN, "option originalto except"),
    (LISTEN, "option originalto foo"),
    (LISTEN, "option originalto header"),
    (LISTEN, "option originalto if-none"),
    (LISTEN, "option forceclose"),
    (LISTEN, "option http-tunnel"),
    (FE, "option httpchk GET /x"),
    (LISTEN, "timeout http-request x"),
    (LISTEN, "monitor-uri /a b"),
    (FE, "redirect location /x if foo"),
    (FE, "redirect location /x foo"),
    (FE, "redirect"),
    (FE, "redirect location /x if { res.hdr(a) b }"),
]


@needs_haproxy
@pytest.mark.parametrize(("section", "line"), CASES)
def test_messages_are_haproxys(tmp_path: Path, section: str, line: str) -> None:
    body = f"{section}  {line}\n"
    assert ours(tmp_path, body) == theirs(tmp_path, body)


@pytest.mark.parametrize(
    "line",
    [
        "http-response track-sc0 src",
        "http-request normalize-uri path-merge-slashes",
        "http-response set-map(/x) a b",
        "http-request wait-for-body time 1s",
    ],
)
def test_actions_nsproxy_lacks_are_refused(tmp_path: Path, line: str) -> None:
    action = line.split()[1]
    assert ours(tmp_path, f"{FE}  {line}\n") == [
        f"parsing [c.cfg:8] : '{line.split()[0]} {action}' is not supported by nsproxy in "
        "frontend 'fe'."
    ]


TCP_MODE = """listen l
  mode tcp
  bind 127.0.0.1:1
  option httplog
  option forwardfor
  option http-server-close
  option httpclose
  option http-keep-alive
  option http-buffer-request
  option originalto
  timeout http-request 1s
  timeout http-keep-alive 1s
  http-request set-header a b
  http-response set-header a b
  capture request header Host len 10
  monitor-uri /m
  unique-id-header X-U
  http-reuse always
  redirect location /x
  server s 127.0.0.1:2
"""


@needs_haproxy
def test_http_keywords_in_tcp_mode_warn_as_haproxy(tmp_path: Path) -> None:
    head = "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"
    expected = theirs(tmp_path, TCP_MODE, head)
    assert ours(tmp_path, TCP_MODE, head) == expected
    assert len(expected) == 9


INHERITED = """defaults
  mode tcp
  option httplog
  option forwardfor
  timeout client 1s
  timeout server 1s
  timeout connect 1s
frontend f
  bind 127.0.0.1:1
  default_backend b
backend b
  server s 127.0.0.1:2
listen l
  mode http
  bind 127.0.0.1:3
  server s 127.0.0.1:2
"""


@needs_haproxy
def test_options_inherited_from_defaults_warn_as_haproxy(tmp_path: Path) -> None:
    assert ours(tmp_path, INHERITED, "") == theirs(tmp_path, INHERITED, "")


def test_error_file_answers_with_lowercase_head(tmp_path: Path) -> None:
    page = tmp_path / "503.http"
    page.write_bytes(
        b"HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\n"
        b"Content-Type: text/html\r\n\r\n<html><body>sorry</body></html>\n"
    )
    state, px = parse(
        tmp_path,
        f"{FE}  errorfile 503 {page}\n  http-request deny deny_status 503 if {{ path /d }}\n",
    )
    assert state.errors == []
    http = px["fe"].http
    assert http is not None
    ef = http.errorfile(503)
    assert ef is not None and ef.close
    assert ef.data == (
        b"HTTP/1.0 503 Service Unavailable\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n\r\n<html><body>sorry</body></html>\n"
    )
    got = http.http_request[0].run(request(b"GET /d HTTP/1.1\r\nHost: a\r\n\r\n"))
    assert got is not None and got.verb is Verb.ANSWER and got.data == ef.data
    assert http.http_request[0].run(request(b"GET /e HTTP/1.1\r\nHost: a\r\n\r\n")) is None


def test_options_build_http_cfg(tmp_path: Path) -> None:
    state, px = parse(
        tmp_path,
        "frontend fe\n  bind 127.0.0.1:1\n  log stdout format raw local0\n  option httplog clf\n"
        "  option forwardfor except 10.0.0.0/8 header X-Real-IP if-none\n"
        "  option originalto header X-O\n  option http-buffer-request\n"
        "  option httpclose\n  monitor-uri /healthz\n  unique-id-header X-Unique-ID\n"
        "  capture request header Host len 20\n  declare capture request len 8\n"
        "  capture response header Server len 5\n  timeout http-request 5s\n"
        "  timeout http-keep-alive 2s\n  default_backend b\n"
        "backend b\n  http-reuse always\n  option http-server-close\n"
        "  server s 127.0.0.1:2\n",
    )
    assert state.errors == [] and state.warnings == []
    fe, be = px["fe"], px["b"]
    assert fe.http == HttpCfg(
        mode=HttpMode.CLOSE,
        httplog=True,
        clf=True,
        forwardfor=AddrHeader("X-Real-IP", ip_network("10.0.0.0/8"), True),
        originalto=AddrHeader("X-O"),
        http_buffer_request=True,
        monitor_uri=b"/healthz",
        unique_id_header="X-Unique-ID",
        req_captures=(Capture("host", 20), Capture(None, 8)),
        res_captures=(Capture("server", 5),),
    )
    assert fe.timeouts.http_request == 5.0 and fe.timeouts.http_keep_alive == 2.0
    assert be.http is not None and be.http.http_reuse == "always"
    assert be.http.mode is HttpMode.SERVER_CLOSE
    assert fe.http.forwardfor is not None
    assert fe.http.forwardfor.name == b"x-real-ip"
    assert fe.http.forwardfor.excluded("10.1.2.3")
    assert fe.http.forwardfor.excluded("::ffff:10.1.2.3")
    assert not fe.http.forwardfor.excluded("192.0.2.1")


def test_no_option_resets_the_connection_mode(tmp_path: Path) -> None:
    _, px = parse(
        tmp_path,
        "backend a\n  option httpclose\n  no option httpclose\n  server s 127.0.0.1:2\n"
        "backend b\n  option httpclose\n  no option http-server-close\n"
        "  server s 127.0.0.1:2\n",
    )
    assert px["a"].http is not None and px["a"].http.mode is HttpMode.KEEP_ALIVE
    assert px["b"].http is not None and px["b"].http.mode is HttpMode.CLOSE


@pytest.mark.parametrize(
    ("fe", "be", "client", "server"),
    [
        (HttpMode.KEEP_ALIVE, HttpMode.KEEP_ALIVE, HttpMode.KEEP_ALIVE, HttpMode.KEEP_ALIVE),
        (HttpMode.KEEP_ALIVE, HttpMode.CLOSE, HttpMode.KEEP_ALIVE, HttpMode.CLOSE),
        (HttpMode.KEEP_ALIVE, HttpMode.SERVER_CLOSE, HttpMode.KEEP_ALIVE, HttpMode.SERVER_CLOSE),
        (HttpMode.CLOSE, HttpMode.KEEP_ALIVE, HttpMode.CLOSE, HttpMode.CLOSE),
        (HttpMode.CLOSE, HttpMode.SERVER_CLOSE, HttpMode.CLOSE, HttpMode.CLOSE),
        (HttpMode.SERVER_CLOSE, HttpMode.CLOSE, HttpMode.KEEP_ALIVE, HttpMode.CLOSE),
        (HttpMode.SERVER_CLOSE, HttpMode.KEEP_ALIVE, HttpMode.KEEP_ALIVE, HttpMode.SERVER_CLOSE),
    ],
)
def test_stream_modes(fe: HttpMode, be: HttpMode, client: HttpMode, server: HttpMode) -> None:
    assert stream_modes(HttpCfg(mode=fe), HttpCfg(mode=be)) == (client, server)


def test_haproxy_is_there_for_the_differential_cases() -> None:
    """The message cases above are only meaningful against a real haproxy."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed")
    assert Path(HAPROXY).exists()


def test_capture_log_level_service_and_reject_actions(tmp_path: Path) -> None:
    state, px = parse(
        tmp_path,
        f"{FE}  capture request header Host len 4\n  declare capture request len 3\n"
        "  declare capture response len 6\n"
        "  http-request capture req.hdr(x-a) len 2\n"
        "  http-request capture req.hdr(x-b) id 1\n"
        "  http-response capture res.hdr(server) id 0\n"
        "  http-request set-log-level silent if { path /quiet }\n"
        "  http-request use-service prometheus-exporter if { path /metrics }\n"
        "  http-request reject if { path /reject }\n"
        "  http-request allow if { path /allow }\n"
        "  http-request deny\n",
    )
    assert state.errors == [] and state.warnings == []
    http = px["fe"].http
    assert http is not None
    assert http.req_captures == (Capture("host", 4), Capture(None, 3), Capture(None, 2))
    assert http.res_captures == (Capture(None, 6),)

    def run(raw: bytes) -> tuple[object, list[str | None], str | None]:
        txn = request(raw)
        txn.req_captures = [None] * len(http.req_captures)
        txn.res_captures = [None] * len(http.res_captures)
        for rule in http.http_request:
            r = rule.run(txn)
            if r is not None:
                return r.verb, txn.req_captures, txn.log_level
        return None, txn.req_captures, txn.log_level

    verb, caps, level = run(b"GET /quiet HTTP/1.1\r\nHost: a\r\nx-a: long\r\nx-b: value\r\n\r\n")
    assert (verb, caps, level) == (Verb.ANSWER, [None, "val", "lo"], "silent")
    assert run(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")[0] is Verb.SERVICE
    assert run(b"GET /reject HTTP/1.1\r\nHost: a\r\n\r\n")[0] is Verb.REJECT
    assert run(b"GET /allow HTTP/1.1\r\nHost: a\r\n\r\n")[0] is Verb.ALLOW


def test_metadata_id_from_the_client_namespace(tmp_path: Path) -> None:
    """One listener for many `ovnmeta-<network>` namespaces: the ID comes from the namespace
    the client connected in, and a forged one is dropped first."""
    state, px = parse(
        tmp_path,
        "listen listener\n  bind 169.254.169.254:80\n"
        "  http-request del-header X-OVN-Network-ID\n"
        "  http-request set-header X-OVN-Network-ID %[fc_netns,regsub(^ovnmeta-,)]\n"
        "  server metadata /var/lib/neutron/metadata_proxy\n",
    )
    assert state.errors == [] and state.warnings == []
    http = px["listener"].http
    assert http is not None
    txn = request(
        b"GET /openstack HTTP/1.1\r\nHost: 169.254.169.254\r\nX-OVN-Network-ID: forged\r\n\r\n",
        fc_netns="ovnmeta-3c6ac0b0-7b5c",
    )
    assert evaluate(http.http_request, txn) is None
    assert txn.http_req is not None
    assert txn.http_req.headers == [
        (b"host", b"169.254.169.254"),
        (b"x-ovn-network-id", b"3c6ac0b0-7b5c"),
    ]
