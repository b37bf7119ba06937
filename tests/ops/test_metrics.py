"""Prometheus metrics scraped over HTTP from a real nsproxy process."""

from __future__ import annotations

import http.client
import socket

from prometheus_client.parser import text_string_to_metric_families

from lab.netlab import Lab, connect, free_port, recv_all, tcp_defaults

DEFAULTS = tcp_defaults(tcplog=False)


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(
    got: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return got[(name, frozenset(labels.items()))]


def test_metrics_per_frontend_backend_server_and_netns(lab: Lab) -> None:
    ns = lab.netns("tenant")
    sink = lab.sink(ns, "127.0.0.1", reply=b"pong")
    mport, port = free_port(), free_port(ns)
    lab.proxy(
        f"global\n  prometheus-exporter 127.0.0.1:{mport}\n"
        + DEFAULTS
        + f"""
frontend fe
  bind 127.0.0.1:{port} namespace {ns}
  default_backend be
backend be
  server s1 127.0.0.1:{sink.port} namespace {ns}
  server s2 127.0.0.1:9 namespace {ns} disabled
"""
    )
    for _ in range(3):
        with connect(ns, ("127.0.0.1", port)) as c:
            c.sendall(b"ping!")
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"pong"
    held = connect(ns, ("127.0.0.1", port))
    held.sendall(b"xyz")
    sink.wait_conns(4)
    try:
        status, text = scrape(mport)
    finally:
        held.close()
    assert status == 200
    got = samples(text)
    fe = {"proxy": "fe", "netns": ns}
    assert value(got, "haproxy_frontend_sessions_total", **fe) == 4
    assert value(got, "haproxy_frontend_current_sessions", **fe) == 1
    assert value(got, "haproxy_frontend_bytes_in_total", **fe) == 15 + 3
    assert value(got, "haproxy_frontend_bytes_out_total", **fe) == 4 * 4
    assert value(got, "haproxy_frontend_status", state="UP", **fe) == 1
    be = {"proxy": "be", "netns": ns}
    assert value(got, "haproxy_backend_sessions_total", **be) == 4
    assert value(got, "haproxy_backend_active_servers", **be) == 1
    s1 = {"proxy": "be", "server": "s1", "netns": ns}
    s2 = {"proxy": "be", "server": "s2", "netns": ns}
    assert value(got, "haproxy_server_sessions_total", **s1) == 4
    assert value(got, "haproxy_server_current_sessions", **s1) == 1
    assert value(got, "haproxy_server_status", state="UP", **s1) == 1
    assert value(got, "haproxy_server_status", state="MAINT", **s2) == 1
    assert value(got, "haproxy_server_status", state="UP", **s2) == 0
    assert value(got, "nsproxy_netns_connections_total", netns=ns) == 4
    assert value(got, "nsproxy_netns_current_connections", netns=ns) == 1
    assert value(got, "nsproxy_netns_bytes_in_total", netns=ns) == 18
    assert value(got, "haproxy_process_connections_total") == 4
    assert value(got, "haproxy_process_current_connections") == 1
    assert scrape(mport, "/nope")[0] == 404
