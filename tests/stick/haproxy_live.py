"""A local HAProxy 2.6 started for a test: its stats socket, loopback only, stopped by PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from lab.netlab import unix_listening

HAPROXY = shutil.which("haproxy")


def need_haproxy() -> str:
    if HAPROXY is None:
        if os.environ.get("CI"):
            pytest.fail("haproxy is not installed")
        pytest.skip("haproxy is not installed")
    return HAPROXY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: object, timeout: float = 5.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()  # type: ignore[operator]
        if v:
            return v
        time.sleep(0.01)
    raise TimeoutError(f"timed out waiting for {what}")


class Haproxy:
    """HAProxy running `config` (the string `{SOCK}` is replaced by its stats socket path)."""

    def __init__(self, config: str, extra_args: tuple[str, ...] = ()) -> None:
        exe = need_haproxy()
        self.dir = Path(tempfile.mkdtemp(prefix="nsproxy-stick-"))
        self.sock = str(self.dir / "stats.sock")
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(config.replace("{SOCK}", self.sock))
        self.proc = subprocess.Popen(
            [exe, "-db", "-f", str(cfg), *extra_args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for(
                lambda: unix_listening(self.sock, self.proc.pid) or self.proc.poll() is not None,
                what="haproxy's stats socket",
            )
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode() if self.proc.stderr else "")
        except BaseException:
            self.close()
            raise

    def cli(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")
