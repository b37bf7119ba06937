"""The master CLI (`-W -S <socket>`), side by side with HAProxy 2.6's: the master's commands,
`@master`/`@N`/`@!PID` prefixes, the `master> ` and `<pid>> ` prompts, `reload`."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from lab.netlab import Lab, free_port, tcp_defaults, wait_until


def _config(port: int, up: int) -> str:
    return (
        tcp_defaults(tcplog=False)
        + f"\nlisten li\n  bind 127.0.0.1:{port}\n  server s1 127.0.0.1:{up}\n"
    )


@contextlib.contextmanager
def _haproxy(config: str, tmp_path: Path, sock: str) -> Iterator[None]:
    cfg = tmp_path / "h.cfg"
    cfg.write_text(config)
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    proc = subprocess.Popen(
        [exe, "-W", "-db", "-S", sock, "-f", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(sock), 10, "HAProxy's master CLI")
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cli(sock: str, text: str) -> bytes:
    """One command, then end of input (as `echo ... | socat`); the answer until close."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(text.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
    return bytes(out)


def _answers(sock: str) -> bool:
    try:
        return b"# workers" in cli(sock, "show proc")
    except OSError:
        return False


def _workers(sock: str) -> list[int]:
    text = cli(sock, "show proc").decode()
    body = text.split("# workers\n", 1)[1].split("#", 1)[0]
    return [int(line.split()[0]) for line in body.splitlines() if line.strip()]


def _session(sock: str, lines: list[str]) -> list[bytes]:
    """One prompt-mode session: what the master sent after each line (up to its prompt)."""
    out = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock)
        for line in lines:
            s.sendall(line.encode() + b"\n")
            got = b""
            while not re.search(rb"(master|\d+)> $", got):
                data = s.recv(65536)
                if not data:
                    break
                got += data
            out.append(got)
    return out


def _observe(sock: str) -> dict[str, object]:
    pid = os.getpid()
    workers = _workers(sock)
    assert len(workers) == 1
    w = workers[0]
    info = cli(sock, "@1 show info").decode()
    seen: dict[str, object] = {
        "help": cli(sock, "help").decode(),
        "show proc": re.sub(  # numbers as N, the master's line without its version
            r"\d+|(?<=s) +\S+$",
            "N",
            cli(sock, "show proc").decode().split("# workers")[0],
            flags=re.M,
        ),
        "@master show proc": b"# workers" in cli(sock, "@master show proc"),
        "@1 show info": (re.search(r"^Name: (\S+)$", info, re.M) or [None, None])[1],
        "@1 pid": f"Pid: {w}\n" in info,
        "@!pid": f"Pid: {w}\n" in cli(sock, f"@!{w} show info").decode(),
        "@!99999": cli(sock, "@!99999 show info"),
        "@5": cli(sock, "@5 show info"),
        "@master": cli(sock, "@master"),
        "show cli level": cli(sock, "show cli level"),
        "@1 show cli level": cli(sock, "@1 show cli level"),
        "show info": cli(sock, "show info").decode().split("\n", 1)[0],
        "prompt": [
            x.replace(str(w).encode(), b"W")
            for x in _session(sock, ["prompt", "@1", "@master", "@1", "show cli level", "@master"])
        ],
    }
    assert pid not in workers
    # reload: no answer, the connection closes; a new worker replaces the old one
    assert cli(sock, "reload") == b""

    def replaced() -> bool:
        try:  # HAProxy re-executes itself: its socket refuses connections for a moment
            now = _workers(sock)
        except OSError:
            return False
        return bool(now) and w not in now

    wait_until(replaced, 15, "the reload's worker")
    seen["reloads"] = re.search(r"master\s+(\S+)", cli(sock, "show proc").decode()) is not None
    return seen


def test_master_cli_as_haproxy(lab: Lab, tmp_path: Path) -> None:
    sink = lab.sink(None, "127.0.0.1")
    hsock, nsock = str(tmp_path / "h-master.sock"), str(tmp_path / "n-master.sock")
    with _haproxy(_config(free_port(), sink.port), tmp_path, hsock):
        theirs = _observe(hsock)
    lab.proxy(_config(free_port(), sink.port), extra_args=("-W", "-S", nsock))
    ours = _observe(nsock)
    assert ours == theirs
    assert ours["prompt"] == [
        b"master> ",
        b"W> ",
        b"master> ",
        b"W> ",
        b"admin\n\nW> ",
        b"master> ",
    ]
    assert ours["@!99999"] == b"Can't find the target PID matching the prefix '@!99999'\n"


def test_master_cli_needs_master_worker_mode(lab: Lab, tmp_path: Path) -> None:
    sock = str(tmp_path / "m.sock")
    proxy = lab.proxy(_config(free_port(), free_port()), extra_args=("-S", sock))
    out = proxy.output()
    assert (
        "config : a master CLI socket was defined, but master-worker mode (-W) is not enabled."
        in out
    )
    assert not os.path.exists(sock)
