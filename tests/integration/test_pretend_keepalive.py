"""`option http-pretend-keepalive`: the server gets the request as under http-keep-alive,
whatever the connection mode; nsproxy and HAProxy 2.6 send it the same bytes."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab.netlab import Lab, free_port
from sample.haproxy_ref import HAPROXY, wait_listening
from sample.http_ref import HttpRef, Recorder


def _config(port: int, sport: int, backend: str) -> str:
    return (
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n"
        f"  timeout connect 2s\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n"
        f"backend be\n{backend}\n  server s1 127.0.0.1:{sport}\n"
    )


@contextmanager
def _running(lab: Lab, program: str, backend: str) -> Iterator[HttpRef]:
    port, sport = free_port(), free_port()
    rec = Recorder(sport)
    text = _config(port, sport, backend)
    try:
        if program == "nsproxy":
            lab.proxy(text)
            yield HttpRef(port, rec)
            return
        assert HAPROXY is not None
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "pk.cfg"
            cfg.write_text(text)
            proc = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                wait_listening(port, proc)
                yield HttpRef(port, rec)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
    finally:
        rec.close()


MODES = [
    "  option http-server-close",
    "  option http-server-close\n  option http-pretend-keepalive",
    "  option httpclose\n  option http-pretend-keepalive",
    "  option http-pretend-keepalive",
]
REQUESTS = [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"GET / HTTP/1.0\r\nHost: a\r\n\r\n"]


def _server_sees(lab: Lab, program: str, backend: str, raw: bytes) -> bytes | None:
    with _running(lab, program, backend) as ref:
        _, seen = ref.exchange(raw)
    return seen


@pytest.mark.parametrize("backend", MODES)
@pytest.mark.parametrize("raw", REQUESTS)
def test_server_side_request_as_haproxy(lab: Lab, backend: str, raw: bytes) -> None:
    got = _server_sees(lab, "nsproxy", backend, raw)
    if "pretend" in backend:
        # no `close` for HTTP/1.1, an explicit keep-alive for HTTP/1.0
        want = raw[:-2] + (b"" if b"1.1" in raw else b"connection: keep-alive\r\n") + b"\r\n"
        assert got is not None and got.lower() == want.lower()
    if HAPROXY is not None:
        assert got == _server_sees(lab, "haproxy", backend, raw)
