"""One HTTP configuration run by nsproxy or by HAProxy 2.6 on loopback, in front of a
recording backend: the same exchange against either program."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.netlab import Lab, free_port

from .haproxy_ref import HAPROXY, wait_listening
from .http_ref import DEFAULT_RESPONSE, HttpRef, Recorder

PROGRAMS = ("nsproxy", "haproxy")


@contextmanager
def running(
    lab: Lab,
    program: str,
    config: Callable[[int, int], str],
    response: bytes = DEFAULT_RESPONSE,
) -> Iterator[HttpRef]:
    """`program` on `config(port, server_port)`; the server records and answers `response`."""
    port, sport = free_port(), free_port()
    rec = Recorder(sport, response)
    text = config(port, sport)
    try:
        if program == "nsproxy":
            lab.proxy(text)
            yield HttpRef(port, rec)
            return
        assert HAPROXY is not None
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "pair.cfg"
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
