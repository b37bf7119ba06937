"""The local HAProxy 2.6 as a reference: run it on loopback and ask it what it computes."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from lab.netlab import free_port

HAPROXY = shutil.which("haproxy")
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")

HTTP_DEFAULTS = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 2s
"""


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the context lasts (bound, never
    listening, so no other process can take it meanwhile)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def check_config(body: str, workdir: Path) -> list[str]:
    """The alert/warning lines `haproxy -c` prints for a configuration (prefix removed)."""
    assert HAPROXY is not None
    cfg = workdir / "check.cfg"
    cfg.write_text(body)
    out = subprocess.run(
        [HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30
    )
    lines = []
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith("[ALERT]") or line.startswith("[WARNING]"):
            text = line.split(" : ", 1)[1] if " : " in line else line
            lines.append(text.removeprefix("config : "))
    return lines


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Returns once 127.0.0.1:port accepts; raises if HAProxy exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"haproxy exited with {proc.returncode}: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"haproxy did not listen on {port} in {timeout}s") from None
        # Wait for the next connect attempt on the process itself, not a fixed sleep.
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.02)


@contextmanager
def running(
    frontend_body: str,
    extra: str = "",
    mode_defaults: str = HTTP_DEFAULTS,
    cfg_path: Path | None = None,
    bind_options: str = "",
) -> Iterator[int]:
    """Runs HAProxy with one frontend on a free loopback port; yields the port."""
    assert HAPROXY is not None
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = cfg_path or Path(tmp) / "ref.cfg"
        cfg.write_text(
            f"global\n  stats timeout 5s\n{mode_defaults}\nfrontend fe\n"
            f"  bind 127.0.0.1:{port}{bind_options}\n{frontend_body}\n{extra}\n"
        )
        proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_listening(port, proc)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, 9)
                proc.wait(timeout=10)


class Client:
    """A keep-alive HTTP client to the reference."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, path: str, value: str) -> str:
        for attempt in (1, 2):
            try:
                self.conn.putrequest("GET", path)
                self.conn.putheader("x-in", value.encode("latin-1"))
                self.conn.endheaders()
                resp = self.conn.getresponse()
                body = resp.read()
                return body.decode("latin-1")
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()
