"""Prometheus metrics with `nbthread 2`: the master's endpoint sums every worker's counters."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lab.netlab import Lab, connect, free_port, recv_all

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(got: Samples, name: str, **labels: str) -> float:
    return got[(name, frozenset(labels.items()))]


def _cli(path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        return recv_all(s).decode()


def _cum_conns(path: str, target: str) -> int:
    info = dict(x.split(": ", 1) for x in _cli(path, f"{target} show info").splitlines() if x)
    return int(info["CumConns"])


def test_metrics_sum_the_workers(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("mw")
    sink = lab.sink(ns, "127.0.0.1", echo=True)
    mport, port = free_port(), free_port(ns)
    cli = str(tmp_path / "admin.sock")
    lab.proxy(
        f"""
global
  nbthread 2
  stats socket {cli} mode 600 level admin
  prometheus-exporter 127.0.0.1:{mport}
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:{port} namespace {ns}
  default_backend be
backend be
  server s1 127.0.0.1:{sink.port} namespace {ns}
"""
    )
    made = 0
    per_worker = [0, 0]
    while made < 600 and not all(per_worker):
        for _ in range(20):
            with connect(ns, ("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"abc")
                c.shutdown(socket.SHUT_WR)
                assert recv_all(c, timeout=5) == b"abc"
            made += 1
        per_worker = [_cum_conns(cli, "@1"), _cum_conns(cli, "@2")]
    assert all(per_worker), per_worker  # both workers took connections
    assert sum(per_worker) == made

    status, text = scrape(mport)
    assert status == 200
    got = samples(text)
    fe = {"proxy": "fe", "netns": ns}
    assert value(got, "haproxy_frontend_connections_total", **fe) == made
    assert value(got, "haproxy_frontend_sessions_total", **fe) == made
    assert value(got, "haproxy_frontend_bytes_in_total", **fe) == 3 * made
    assert value(got, "haproxy_frontend_status", state="UP", **fe) == 1
    s1 = {"proxy": "be", "server": "s1", "netns": ns}
    assert value(got, "haproxy_server_sessions_total", **s1) == made
    assert value(got, "haproxy_server_status", state="UP", **s1) == 1
    assert value(got, "nsproxy_netns_connections_total", netns=ns) == made
    assert value(got, "nsproxy_netns_bytes_in_total", netns=ns) == 3 * made
    assert value(got, "nsproxy_netns_bytes_out_total", netns=ns) == 3 * made
    assert value(got, "haproxy_process_connections_total") == made
    assert value(got, "haproxy_process_nbthread") == 2
    assert scrape(mport, "/nope")[0] == 404
