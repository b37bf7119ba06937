"""Requests whose head never completes on an HTTP frontend (the client connects and leaves, or
times out, before or in the middle of a head, or sends a malformed one), with no option,
`option dontlognull` and `option http-ignore-probes`: the same log lines, answers and counters
(ereq, req_tot, hrsp_4xx of the frontend, nothing on the backend, CumReq) as HAProxy 2.6.

HAProxy's H1 mux reports these before any stream exists: a request and an error of the
frontend alone, logged with the frontend standing for the backend, and one more CumReq when a
line is logged. The counters are read from the Prometheus exporter on a frontend of its own,
whose scrapes are subtracted from CumReq (HAProxy counts its CLI sessions too; none is used)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.netlab import Lab, connect, free_port, recv_all, wait_until

FRONTENDS = {
    "f_none": "",
    "f_null": "  option dontlognull\n",
    "f_probes": "  option http-ignore-probes\n",
}
SCENARIOS = ["close", "timeout", "partial-close", "partial-timeout", "bad", "ka-partial-close"]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _config(log_port: int, ports: dict[str, int], web: int) -> str:
    text = (
        f"global\n  log 127.0.0.1:{log_port} format raw local1 info\n"
        "defaults\n  mode http\n  log global\n  option httplog\n  timeout client 5s\n"
        "  timeout server 5s\n  timeout connect 2s\n  timeout http-request 300ms\n"
    )
    for name, option in FRONTENDS.items():
        text += f"frontend {name}\n  bind 127.0.0.1:{ports[name]}\n{option}  default_backend be\n"
    text += (
        f"frontend f_admin\n  bind 127.0.0.1:{ports['f_admin']}\n"
        "  http-request use-service prometheus-exporter if { path /metrics }\n"
        f"  default_backend be\nbackend be\n  server s1 127.0.0.1:{web}\n"
    )
    return text


def _get(port: int, path: str) -> bytes:
    with connect(None, ("127.0.0.1", port)) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
        return recv_all(c)


def _metrics(port: int) -> dict[tuple[str, str, str], float]:
    head, _, page = _get(port, "/metrics").partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        page = _dechunk(page)
    out = {}
    for fam in text_string_to_metric_families(page.decode()):
        for s in fam.samples:
            out[(s.name, s.labels.get("proxy", ""), s.labels.get("code", ""))] = float(s.value)
    return out


def _dechunk(data: bytes) -> bytes:
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body
        body, data = body + data[:size], data[size + 2 :]


def _scenario(port: int, scenario: str) -> bytes:
    """What the client reads from the proxy while playing `scenario`."""
    c = connect(None, ("127.0.0.1", port))
    got = b""
    try:
        if scenario.startswith("ka-"):
            c.sendall(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
            while not got.endswith(b"ok"):
                data = c.recv(65536)
                assert data, got
                got += data
            got = b""
        if "partial" in scenario:
            c.sendall(b"GET / HT")
        if scenario == "bad":
            c.sendall(b"GET / HTTP/1.1\r\nHost a\r\n\r\n")
        if scenario.endswith("timeout") or scenario == "bad":
            got = recv_all(c)
    finally:
        c.close()
    return got.split(b"\r\n", 1)[0]


def _observe(lab: Lab, tmp_path: Path, program: str, scenario: str) -> dict[str, object]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(10)
        web = lab.sink(None, "127.0.0.1", reply=OK)
        ports = {name: free_port() for name in [*FRONTENDS, "f_admin"]}
        text = _config(udp.getsockname()[1], ports, web.port)
        if program == "haproxy":
            sock = str(tmp_path / "haproxy.sock")  # only to know when it started
            lab.haproxy(text.replace("global\n", f"global\n  stats socket {sock}\n", 1), sock)
        else:
            lab.proxy(text)
        admin = ports["f_admin"]
        got = {}
        for name in FRONTENDS:  # one after the other: the logs count the connections open
            got[name] = _scenario(ports[name], scenario)

            def settled(name: str = name) -> bool:
                return not _metrics(admin)[("haproxy_frontend_current_sessions", name, "")]

            wait_until(settled, 10, f"the connection to {name} closed")
        _get(admin, "/marker")
        lines: dict[str, list[str]] = {name: [] for name in FRONTENDS}
        while True:
            line = udp.recv(65536).decode()
            fields = line.split()
            if fields[2] in lines:
                # without Ta and the connection counts (timing: when the close is seen)
                lines[fields[2]].append(" ".join(fields[2:4] + fields[5:10] + fields[11:]))
            if "GET /marker" in line:
                break
        m = _metrics(admin)
    out: dict[str, object] = {"got": got, "logs": lines}
    for name in [*FRONTENDS, "be"]:
        kind = "backend" if name == "be" else "frontend"
        out[name] = (
            m.get((f"haproxy_{kind}_request_errors_total", name, ""), -1.0),
            m[(f"haproxy_{kind}_http_requests_total", name, "")],
            m[(f"haproxy_{kind}_http_responses_total", name, "4xx")],
        )
    scrapes = m[("haproxy_frontend_http_requests_total", "f_admin", "")]
    out["CumReq"] = m[("haproxy_process_requests_total", "", "")] - scrapes
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_unfinished_requests_as_haproxy(lab: Lab, tmp_path: Path, scenario: str) -> None:
    ours = _observe(lab, tmp_path, "nsproxy", scenario)
    logs = ours["logs"]
    assert isinstance(logs, dict)
    first = 1 if scenario.startswith("ka-") else 0  # the request that went through
    probe = scenario in ("close", "timeout")
    silent = {"f_probes"} if probe else set()
    unlogged = {"f_null", "f_probes"} if probe else set()
    for name in FRONTENDS:
        assert len(logs[name]) == first + (name not in unlogged), (name, logs[name])
        if name not in unlogged:
            assert logs[name][-1].startswith(f"{name} {name}/<NOSRV> ")
            assert logs[name][-1].endswith('"<BADREQ>"')
        counted = 0 if name in silent else 1
        assert ours[name] == (counted, first + counted, counted)
    assert ours["be"] == (-1.0, 3 * first + 1, 0)  # + the marker request
    assert ours == _observe(lab, tmp_path, "haproxy", scenario)
