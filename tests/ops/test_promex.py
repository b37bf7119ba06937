"""The built-in Prometheus exporter against HAProxy 2.6's promex on the same configuration:
the same families, types, label names and `state`/`code` values (nsproxy adds `netns`),
served by `http-request use-service prometheus-exporter` and by `prometheus-exporter ADDR`."""

from __future__ import annotations

import http.client
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lab.netlab import Lab, Sink, cli, free_port, tcp_defaults, wait_until

HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def config(sock: str, tcp_port: int, http_port: int, up: Sink, web: Sink, down: int) -> str:
    return (
        f"global\n  stats socket {sock} level admin\n"
        + tcp_defaults(tcplog=False)
        + f"\nlisten tcp_li\n  bind 127.0.0.1:{tcp_port}\n"
        f"  server up1 127.0.0.1:{up.port} check inter 200ms\n"
        f"  server down1 127.0.0.1:{down} check inter 200ms\n"
        f"  server off1 127.0.0.1:{down} disabled\n"
        f"frontend web_fe\n  mode http\n  bind 127.0.0.1:{http_port}\n"
        "  http-request use-service prometheus-exporter if { path /metrics }\n"
        "  default_backend web_be\n"
        f"backend web_be\n  mode http\n  server w1 127.0.0.1:{web.port}\n"
    )


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


Shape = dict[str, tuple[str, frozenset[str], frozenset[tuple[str, str]]]]


def shape(text: str) -> Shape:
    """Per family: its type, its label names, and its `state`/`code` label values per proxy."""
    out: Shape = {}
    for fam in text_string_to_metric_families(text):
        names: set[str] = set()
        values: set[tuple[str, str]] = set()
        for s in fam.samples:
            names |= set(s.labels) - {"netns"}
            for key in ("state", "code"):
                if key in s.labels:
                    values.add((s.labels.get("server", s.labels.get("proxy", "")), s.labels[key]))
        out[fam.name] = (fam.type, frozenset(names), frozenset(values))
    return out


def sample(text: str, name: str, **labels: str) -> float:
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"{name}{labels} missing")


def test_promex_families_labels_and_states_as_haproxy(lab: Lab, tmp_path: Path) -> None:
    up = lab.sink(None, "127.0.0.1", reply=b"hello\n")
    web = lab.sink(None, "127.0.0.1", reply=HTTP_OK)
    down = free_port()
    pages = {}
    for name in ("haproxy", "nsproxy"):
        sock = str(tmp_path / f"{name}.sock")
        tcp_port, http_port = free_port(), free_port()
        text = config(sock, tcp_port, http_port, up, web, down)
        exporter = free_port()
        if name == "haproxy":
            lab.haproxy(text, sock)
        else:
            text = text.replace("global\n", f"global\n  prometheus-exporter 127.0.0.1:{exporter}\n")
            lab.proxy(text)

        def checked(sock: str = sock) -> bool:
            return ",down1,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN," in cli(sock, "show stat").decode()

        wait_until(checked, 10, "down1 checked DOWN")
        for _ in range(3):
            assert get(http_port, "/") == (200, "ok")
        status, page = get(http_port, "/metrics")
        assert status == 200
        pages[name] = page
        if name == "nsproxy":
            status, direct = get(exporter, "/metrics")
            assert status == 200
            assert shape(direct) == shape(page)
    theirs, ours = shape(pages["haproxy"]), shape(pages["nsproxy"])
    assert len(theirs) > 170
    missing = {k: v for k, v in theirs.items() if ours.get(k) != v}
    assert missing == {}
    assert all(name.startswith("nsproxy_netns_") for name in set(ours) - set(theirs))
    assert "nsproxy_netns_connections" in ours
    for page in pages.values():
        one = {"proxy": "tcp_li"}
        assert sample(page, "haproxy_server_status", server="down1", state="DOWN", **one) == 1
        assert sample(page, "haproxy_server_status", server="off1", state="MAINT", **one) == 1
        assert sample(page, "haproxy_server_status", server="up1", state="UP", **one) == 1
        assert sample(page, "haproxy_server_check_status", server="up1", state="L4OK", **one) == 1
        assert sample(page, "haproxy_backend_status", state="UP", **one) == 1
        assert sample(page, "haproxy_frontend_status", proxy="web_fe", state="UP") == 1
        assert sample(page, "haproxy_process_max_session_rate") >= 1
        assert sample(page, "haproxy_process_max_connection_rate") >= 1
        web_be = {"proxy": "web_be", "code": "2xx"}
        assert sample(page, "haproxy_backend_http_responses_total", **web_be) == 3
        assert sample(page, "haproxy_frontend_http_requests_total", proxy="web_fe") >= 3
        # the scrape itself, counted before the exposition is written
        assert sample(page, "haproxy_frontend_intercepted_requests_total", proxy="web_fe") == 1
