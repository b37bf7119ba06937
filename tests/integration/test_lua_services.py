"""`http-request use-service lua.NAME` beside HAProxy 2.6: the same script, the same requests;
the answers (headers compared as a set: HAProxy writes them in a Lua table's random order)
and the httplog lines must match."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.netlab import Lab, free_port
from sample.haproxy_ref import needs_haproxy

SCRIPT = """
core.register_service("page", "http", function(applet)
    local body = "<html><body><h1>404 Not Found</h1>\\nNo such page.\\n</body></html>\\n"
    applet:set_status(404)
    applet:add_header("Content-Length", string.len(body))
    applet:add_header("Content-Type", "text/html")
    applet:add_header("Cache-Control", "no-cache")
    applet:start_response()
    applet:send(body)
end)
core.register_service("stream", "http", function(applet)
    applet:start_response()
    applet:send("hello ")
    applet:send("world")
end)
core.register_service("empty", "http", function(applet)
    applet:start_response()
end)
core.register_service("odd", "http", function(applet)
    applet:set_status(496)
    applet:add_header("content-length", 0)
    applet:start_response()
end)
core.register_service("echo", "http", function(applet)
    local body = applet.method .. " " .. applet.path .. " " .. applet.qs .. " " ..
        applet.version .. " " .. applet.headers["host"][0] .. " " .. tostring(applet.length)
    applet:set_status(201, "Made")
    applet:add_header("content-length", string.len(body))
    applet:start_response()
    applet:send(body)
end)
core.register_service("boom", "http", function(applet)
    error("kaput")
end)
core.register_service("early", "http", function(applet)
    applet:send("too soon")
end)
core.register_service("silent", "http", function(applet)
end)
"""

CONFIG = """global
    {log}
    lua-load {script}
    {stats}
defaults
    mode http
    log global
    option httplog
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    bind 127.0.0.1:{port}
    http-request use-service lua.page if {{ path /page }}
    http-request use-service lua.stream if {{ path /stream }}
    http-request use-service lua.empty if {{ path /empty }}
    http-request use-service lua.odd if {{ path /odd }}
    http-request use-service lua.boom if {{ path /boom }}
    http-request use-service lua.early if {{ path /early }}
    http-request use-service lua.silent if {{ path /silent }}
    default_backend b
backend b
    http-request use-service lua.echo
"""

REQUESTS = [
    b"GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /stream HTTP/1.0\r\nHost: x\r\n\r\n",
    b"GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /odd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /silent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /e?a=1 HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n",
]


def _fetch(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(raw)
        out = b""
        while data := c.recv(65536):
            out += data
    return out


def _unordered(answer: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    return lines[0], sorted(lines[1:]), body


def _log_fields(line: str) -> str:
    """A httplog line without the client port, the date, the timers' values (which of
    them happened is kept: -1 stays) and %ac/%fc (HAProxy may not have processed the close of
    the client's previous connection yet)."""
    fields = line.split()
    fields[0] = fields[0].rsplit(":", 1)[0]
    fields[1] = "[DATE]"
    fields[4] = "/".join("-1" if t == "-1" else "N" for t in fields[4].split("/"))
    fields[10] = "/".join(["N", "N", *fields[10].split("/")[2:]])
    return " ".join(fields)


@pytest.fixture
def both(lab: Lab) -> Iterator[tuple[int, int, Lab, socket.socket, object]]:
    d = Path(tempfile.mkdtemp(prefix="nsp-lua-"))
    script = d / "s.lua"
    script.write_text(SCRIPT)
    pn, ph = free_port(), free_port()
    proxy = lab.proxy(
        CONFIG.format(log="log stdout format raw local0", script=script, stats="", port=pn)
    )
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    stats = d / "stats"
    lab.haproxy(
        CONFIG.format(
            log=f"log 127.0.0.1:{udp.getsockname()[1]} format raw local0",
            script=script,
            stats=f"stats socket {stats}",
            port=ph,
        ),
        str(stats),
    )
    try:
        yield pn, ph, lab, udp, proxy
    finally:
        udp.close()


@needs_haproxy
def test_lua_services_answer_and_log_like_haproxy(
    both: tuple[int, int, Lab, socket.socket, object],
) -> None:
    pn, ph, _, udp, proxy = both
    for raw in REQUESTS:
        got, want = _fetch(pn, raw), _fetch(ph, raw)
        assert _unordered(got) == _unordered(want), raw
    haproxy_lines = []
    while sum(" LR-- " in ln for ln in haproxy_lines) < len(REQUESTS):
        haproxy_lines.append(udp.recv(65536).decode().strip())
    out = proxy.wait_count(" LR-- ", len(REQUESTS))  # type: ignore[attr-defined]
    nsproxy_lines = [ln for ln in out.splitlines() if ln and not ln.startswith("[")]
    requests_n = [_log_fields(x) for x in nsproxy_lines if " LR-- " in x]
    assert requests_n == [_log_fields(x) for x in haproxy_lines if " LR-- " in x]
    assert " f b/<lua.echo> " in requests_n[-1]
    # the applets' runtime errors, as HAProxy logs them
    errors_n = [x for x in nsproxy_lines if x.startswith("Lua applet")]
    assert errors_n == [x for x in haproxy_lines if x.startswith("Lua applet")]
    assert len(errors_n) >= 2
