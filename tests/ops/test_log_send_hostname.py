"""`log-send-hostname [<name>]`: the syslog header carries the host name, as HAProxy 2.6's."""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from lab.netlab import Lab, connect, free_port
from sample.haproxy_ref import HAPROXY, wait_listening


def _config(udp: int, port: int, extra: str, fmt: str) -> str:
    return (
        f"global\n  log 127.0.0.1:{udp} {fmt} local1 info\n{extra}\n"
        "defaults\n  log global\n  mode tcp\n  option tcplog\n  retries 0\n"
        "  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"
        f"listen l\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:1\n"
    )


def _header(lab: Lab, program: str, extra: str, fmt: str) -> str:
    """The syslog header of the first log line, its time stamp and pid masked."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(10)
        port = free_port()
        text = _config(udp.getsockname()[1], port, extra, fmt)
        with tempfile.TemporaryDirectory() as tmp:
            proc = None
            if program == "nsproxy":
                lab.proxy(text)
            else:
                assert HAPROXY is not None
                cfg = Path(tmp) / "h.cfg"
                cfg.write_text(text)
                proc = subprocess.Popen(
                    [HAPROXY, "-db", "-f", str(cfg)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                wait_listening(port, proc)
            try:
                connect(None, ("127.0.0.1", port)).close()
                line = udp.recv(65536).decode()
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait(10)
    head = line.split(" 127.0.0.1:", 1)[0]
    head = re.sub(r"\d{4}-\d\d-\d\dT[0-9:.]+[+-]\d\d:\d\d", "TIME", head)
    head = re.sub(r"[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d", "TIME", head)
    return re.sub(r"(?<=[\[ ])\d+\b", "PID", head)


@pytest.mark.parametrize("fmt", ["", "format rfc5424"])
@pytest.mark.parametrize("extra", ["", "  log-send-hostname", "  log-send-hostname router-1"])
def test_header(lab: Lab, extra: str, fmt: str) -> None:
    got = _header(lab, "nsproxy", extra, fmt)
    name = "router-1" if "router-1" in extra else socket.gethostname() if extra else None
    if fmt:
        assert got == f"<142>1 TIME {name or '-'} haproxy PID - -"
    else:
        assert got == f"<142>TIME {name + ' ' if name else ''}haproxy[PID]:"
    if HAPROXY is not None:
        assert got == _header(lab, "haproxy", extra, fmt)
