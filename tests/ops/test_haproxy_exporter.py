"""Debian's prometheus-haproxy-exporter scrapes nsproxy's stats socket as it scrapes HAProxy 2.6's:
the same configuration and traffic give nsproxy at least every series HAProxy gives."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from lab.netlab import Lab, Sink, cli, free_port, tcp_defaults, wait_until

HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def config(sock: str, tcp_port: int, http_port: int, up: Sink, web: Sink, down: int) -> str:
    """TCP and HTTP proxies, a checked server up and one down, a server without check."""
    return (
        f"global\n  stats socket {sock} level admin\n"
        + tcp_defaults(tcplog=False)
        + f"\nlisten tcp_li\n  bind 127.0.0.1:{tcp_port}\n"
        f"  server up1 127.0.0.1:{up.port} check inter 200ms\n"
        f"  server down1 127.0.0.1:{down} check inter 200ms\n"
        f"frontend web_fe\n  mode http\n  bind 127.0.0.1:{http_port}\n  default_backend web_be\n"
        f"backend web_be\n  mode http\n  server w1 127.0.0.1:{web.port}\n"
    )


def traffic(tcp_port: int, http_port: int) -> None:
    for _ in range(3):
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=5) as r:
            assert r.read() == b"ok"
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as c:
            c.sendall(b"x")
            c.shutdown(socket.SHUT_WR)
            while c.recv(4096):
                pass


def scrape(sock: str) -> str:
    """Runs the exporter on `sock` and returns one /metrics page (the exporter is stopped)."""
    exe = shutil.which("prometheus-haproxy-exporter")
    if exe is None:
        pytest.fail("prometheus-haproxy-exporter (Debian package) is needed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, f"--web.listen-address=127.0.0.1:{port}", f"--haproxy.scrape-uri=unix:{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def page() -> str | None:
            try:
                url = f"http://127.0.0.1:{port}/metrics"
                with urllib.request.urlopen(url, timeout=5) as r:
                    return str(r.read().decode())
            except OSError:
                return None

        return wait_until(page, 10, "the exporter's /metrics")
    finally:
        proc.terminate()
        proc.wait(10)


SAMPLE = re.compile(r"^(haproxy_[a-z_]+)(\{[^}]*\})? ", re.M)


def series(page: str) -> set[str]:
    """haproxy_* series (name and labels) other than the exporter's own and process ones."""
    out = set()
    for name, labels in SAMPLE.findall(page):
        if name.startswith(("haproxy_exporter_", "haproxy_process_")):
            continue
        if name == "haproxy_version_info":  # labels: each one's version and release date
            labels = ""
        out.add(name + labels)
    return out


def filled_columns(csv: str) -> dict[tuple[str, str], set[str]]:
    """For each `show stat` row (proxy, svname): the columns that have a value."""
    lines = [ln for ln in csv.splitlines() if ln]
    header = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        cells = line.split(",")
        out[(cells[0], cells[1])] = {c for c, v in zip(header, cells, strict=False) if v}
    return out


def value(page: str, name: str, labels: str) -> float:
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", page, re.M)
    assert m, f"{name}{labels} missing"
    return float(m.group(1))


def test_exporter_gets_every_series_from_nsproxy_it_gets_from_haproxy(
    lab: Lab, tmp_path: Path
) -> None:
    up = lab.sink(None, "127.0.0.1", reply=b"hello\n")
    web = lab.sink(None, "127.0.0.1", reply=HTTP_OK)
    down = free_port()
    pages = []
    filled: list[dict[tuple[str, str], set[str]]] = []
    for name in ("haproxy", "nsproxy"):
        sock = str(tmp_path / f"{name}.sock")
        tcp_port, http_port = free_port(), free_port()
        text = config(sock, tcp_port, http_port, up, web, down)
        if name == "haproxy":
            lab.haproxy(text, sock)
        else:
            lab.proxy(text)

        def checked(sock: str = sock) -> bool:
            return re.search(r"tcp_li,down1,.*,DOWN,", cli(sock, "show stat").decode()) is not None

        wait_until(checked, 10, "down1 checked DOWN")
        traffic(tcp_port, http_port)
        pages.append(scrape(sock))
        filled.append(filled_columns(cli(sock, "show stat").decode()))
    # `show stat` fills the same columns in each row (TCP and HTTP, checked or not)
    assert filled[1] == filled[0]
    theirs, ours = (series(p) for p in pages)
    assert len(theirs) > 100
    assert theirs - ours == set()
    assert len(ours) >= len(theirs)
    # the same meaning: counts of the same traffic
    for page in pages:
        assert value(page, "haproxy_up", "") == 1
        assert (
            value(page, "haproxy_backend_http_responses_total", '{backend="web_be",code="2xx"}')
            == 3
        )
        assert (
            value(page, "haproxy_server_check_failures_total", '{backend="tcp_li",server="down1"}')
            >= 1
        )
        assert (
            value(
                page, "haproxy_server_downtime_seconds_total", '{backend="tcp_li",server="down1"}'
            )
            >= 0
        )
        assert value(page, "haproxy_frontend_http_requests_total", '{frontend="web_fe"}') == 3
        assert value(page, "haproxy_server_sessions_total", '{backend="tcp_li",server="up1"}') == 3
