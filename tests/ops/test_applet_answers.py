"""The stats page and the Prometheus exporter answer as HAProxy 2.6's applets do: the same
status lines and headers in the same order (`cache-control`, `content-type`, `refresh`,
`transfer-encoding: chunked`, `connection`), a chunked body with upper-case hex sizes, a HEAD
answered with the head alone; and promex's exposition text: the same families in the same
order with the same HELP and TYPE lines, labels in promex's order, integers printed as
integers, times in seconds with six decimals, NaN where a value is empty.

The bodies' bytes differ where they are live figures; their structure and formatting may not.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from lab.netlab import Lab, connect, free_port, recv_all

AUTH = "Authorization: Basic " + base64.b64encode(b"admin:secret").decode() + "\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
FORM = "s=s1&action=maint&b=be"
EXCHANGES = {
    "metrics-keep-alive": "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "metrics-1.0": "GET /metrics HTTP/1.0\r\n\r\n",
    "metrics-head": "HEAD /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "stats-keep-alive": f"GET /stats HTTP/1.1\r\nHost: a\r\n{AUTH}\r\n"
    f"GET /stats;csv HTTP/1.1\r\nHost: a\r\n{AUTH}Connection: close\r\n\r\n",
    "stats-norefresh": f"GET /stats;csv;norefresh HTTP/1.1\r\nHost: a\r\n{AUTH}"
    "Connection: close\r\n\r\n",
    "stats-head": f"HEAD /stats HTTP/1.1\r\nHost: a\r\n{AUTH}Connection: close\r\n\r\n",
    "stats-401": "GET /stats HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "stats-post": f"POST /stats HTTP/1.1\r\nHost: a\r\n{AUTH}"
    "Content-Type: application/x-www-form-urlencoded\r\n"
    f"Content-Length: {len(FORM)}\r\nConnection: close\r\n\r\n{FORM}",
}


def _config(sock: str, port: int, web: int) -> str:
    return (
        f"global\n  stats socket {sock} level admin\n"
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n"
        f"frontend fe\n  bind 127.0.0.1:{port}\n  stats enable\n  stats uri /stats\n"
        "  stats refresh 5s\n  stats auth admin:secret\n  stats admin if TRUE\n"
        "  http-request use-service prometheus-exporter if { path /metrics }\n"
        f"  default_backend be\nbackend be\n  server s1 127.0.0.1:{web}\n"
    )


def _responses(data: bytes, head_only: bool) -> list[tuple[list[str], bytes]]:
    """(status line and header lines, de-chunked body) of each response in `data`; asserts
    the chunked framing (upper-case hex sizes, the last chunk)."""
    out = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = {ln.split(":", 1)[0].lower(): ln.split(":", 1)[1].strip() for ln in lines[1:]}
        body = b""
        if head_only:
            pass
        elif fields.get("transfer-encoding") == "chunked":
            while True:
                size_line, _, data = data.partition(b"\r\n")
                assert re.fullmatch(rb"[0-9A-F]+", size_line), size_line
                size = int(size_line, 16)
                if size == 0:
                    assert data[:2] == b"\r\n"
                    data = data[2:]
                    break
                assert data[size : size + 2] == b"\r\n"
                body, data = body + data[:size], data[size + 2 :]
        else:
            size = int(fields.get("content-length", "0"))
            body, data = data[:size], data[size:]
        out.append((lines, body))
    return out


def _exposition(text: str) -> list[str]:
    """promex's text with the values replaced by their form (int, flt, NaN) and nsproxy's own
    `netns` label and `nsproxy_*` families left out; the build version label too."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            if " nsproxy_" not in line:
                out.append(line)
            continue
        key, value = line.rsplit(" ", 1)
        if key.startswith("nsproxy_"):
            continue
        key = re.sub(r',?netns="[^"]*"', "", key).replace("{}", "")
        key = re.sub(r'version="[^"]*"', 'version=""', key)
        form = "NaN" if value == "NaN" else "flt" if re.fullmatch(r"-?\d+\.\d{6}", value) else ""
        if not form:
            assert re.fullmatch(r"-?\d+", value), line
            form = "int"
        out.append(f"{key} {form}")
    return out


def _observe(lab: Lab, tmp_path: Path, program: str) -> dict[str, object]:
    web = lab.sink(None, "127.0.0.1", reply=OK)
    sock, port = str(tmp_path / f"{program}.sock"), free_port()
    text = _config(sock, port, web.port)
    if program == "haproxy":
        lab.haproxy(text, sock)
    else:
        lab.proxy(text)
    seen: dict[str, object] = {}
    for name, request in EXCHANGES.items():
        c = connect(None, ("127.0.0.1", port))
        c.sendall(request.encode())
        responses = _responses(recv_all(c), request.startswith("HEAD"))
        c.close()
        seen[name] = [lines for lines, _ in responses]
        if name == "metrics-keep-alive":
            seen["exposition"] = _exposition(responses[0][1].decode())
        if name == "stats-keep-alive":
            page, csv = responses[0][1], responses[1][1]
            seen["pages"] = (page.startswith(b"<!DOCTYPE HTML"), csv.startswith(b"# pxname,"))
        if request.startswith("HEAD"):
            assert all(body == b"" for _, body in responses)
    return seen


def test_stats_page_and_promex_answers_as_haproxy(lab: Lab, tmp_path: Path) -> None:
    ours = _observe(lab, tmp_path, "nsproxy")
    head = ours["metrics-keep-alive"]
    assert isinstance(head, list)
    assert head[0] == [
        "HTTP/1.1 200 OK",
        "cache-control: no-cache",
        "content-type: text/plain; version=0.0.4",
        "transfer-encoding: chunked",
    ]
    exposition = ours["exposition"]
    assert isinstance(exposition, list)
    assert "haproxy_process_nbproc int" in exposition
    assert 'haproxy_backend_total_time_average_seconds{proxy="be"} flt' in exposition
    theirs = _observe(lab, tmp_path, "haproxy")
    assert ours == theirs
