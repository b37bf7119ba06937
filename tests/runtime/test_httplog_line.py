"""`option httplog`'s line, written natively by the runtime, is the line HTTPLOG_FORMAT's
compiled renderer writes for the same traffic (a `log-format` with the same text)."""

from __future__ import annotations

import re
import socket

from lab.netlab import Lab, free_port
from nsproxy.sample.logformat import HTTPLOG_FORMAT

CONFIG = """global
    log stdout format raw local0
defaults
    mode http
    log global
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend native
    bind 127.0.0.1:{p_native}
    option httplog
    {rules}
frontend compiled
    bind 127.0.0.1:{p_compiled}
    log-format "{fmt}"
    {rules}
backend be
    server origin 127.0.0.1:{p_origin}
frontend origin
    bind 127.0.0.1:{p_origin}
    http-request return status 200 content-type text/plain string hello
"""

RULES = """capture request header Host len 20
    capture request header X-Ten len 4
    capture response header Content-Type len 32
    http-request return status 403 if { path /denied }
    http-request set-var(txn.x) str(x)
    use_backend be if { path_beg /srv }
    default_backend be_none"""

REQUESTS = (
    b"GET /srv/a?q=1 HTTP/1.1\r\nHost: one\r\nX-Ten: 0123456789\r\n\r\n"
    b"GET /denied HTTP/1.1\r\nHost: two\r\n\r\n"
    b"GET /elsewhere HTTP/1.1\r\nHost: three\r\n\r\n"
    b"GET /srv/b HTTP/1.0\r\n\r\n"
)


def _send(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(REQUESTS)
        while c.recv(65536):
            pass
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"GET /srv/bad\x01 HTTP/1.1\r\n\r\n")  # a 400: <BADREQ>
        while c.recv(65536):
            pass


def _comparable(line: str, name: str) -> str:
    line = re.sub(r"^(\S+):\d+ \[[^]]+\] ", r"\1:PORT [DATE] ", line).replace(name, "FE")
    return re.sub(r" [-\d]+/[-\d]+/[-\d]+/[-\d]+/[-\d]+ (\d{3}) ", r" T/T/T/T/T \1 ", line)


def test_native_httplog_line_equals_the_compiled_format(lab: Lab) -> None:
    ports = {"p_native": free_port(), "p_compiled": free_port(), "p_origin": free_port()}
    config = CONFIG.format(fmt=HTTPLOG_FORMAT, rules=RULES, **ports) + "backend be_none\n"
    proxy = lab.proxy(config)
    _send(ports["p_native"])
    out = proxy.wait_count(" native ", 5)
    _send(ports["p_compiled"])
    out = proxy.wait_count(" compiled ", 5)
    lines = proxy.log_lines()
    native = [_comparable(ln, "native") for ln in lines if " native " in ln]
    compiled = [_comparable(ln, "compiled") for ln in lines if " compiled " in ln]
    assert len(native) == 5, out
    assert native == compiled
    # the lines say what happened: a server's answer, the proxy's own, no backend, a bad request
    assert " be/origin T/T/T/T/T 200 " in native[0] and "{one|0123} {text/plain}" in native[0]
    assert " T/T/T/T/T 403 " in native[1] and " T/T/T/T/T 503 " in native[2]
    assert native[3].endswith('"GET /srv/b HTTP/1.0"')
    assert native[4].endswith('"<BADREQ>"') and " 400 " in native[4]
