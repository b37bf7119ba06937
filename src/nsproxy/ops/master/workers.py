"""Worker processes of master-worker mode: their configuration, their run, fork and queries."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import socket
from collections.abc import Callable

from nsproxy.addresses import SockAddr
from nsproxy.config.model import Config, StatsSocketCfg
from nsproxy.ops import lifecycle, log, privileges
from nsproxy.ops.identity import VERSION
from nsproxy.runtime.process import listener_key

PR_SET_PDEATHSIG = 1
QUERY_TIMEOUT = 2.0


@dataclasses.dataclass(slots=True)
class Worker:
    """One forked worker process as the master sees it."""

    pid: int
    num: int  # relative number in its generation, from 1
    gen: int
    cli_path: str
    ready_fd: int
    started: float
    reloads: int
    ready: bool = False
    old: bool = False


def run_worker(config: Config, inherited: dict[str, socket.socket], ready_fd: int) -> int:
    """Runs one worker on the master's listening sockets; returns its exit status."""
    rt = lifecycle.built_runtime(config)
    if rt is None:
        return 1
    loop = rt.loop
    rt.fds_exported = True  # the sockets are the master's: never unlink a UNIX listener
    try:
        for li in rt.listeners:
            li.open(inherited.pop(listener_key(li), None))
        ok, ops = lifecycle.open_ops(rt)
        if not ok or not rt.open_peers():
            return 1
        privileges.drop(config, rt)
    except OSError as exc:
        log.alert(f"[nsproxy.main()] {exc.strerror}")
        rt.close()
        return 1
    master = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != master:  # the master died before the death signal was armed
        return 1
    rt.install_signals()
    rt.start()
    for part in ops:
        part.start()

    def ready() -> None:  # once running: uvloop only sees signals while its loop runs
        os.write(ready_fd, b"R")
        os.close(ready_fd)

    loop.call_soon(ready)
    try:
        loop.run_until_complete(rt.wait_stopped())
    finally:
        rt.close()
        loop.close()
    return 0


def worker_config(config: Config, count: int, cli_path: str) -> Config:
    """The worker's view: a private admin socket instead of the `stats socket`s and its share
    of the global `maxconn`; the master serves the metrics endpoint."""
    g = config.global_
    private = StatsSocketCfg(SockAddr(socket.AF_UNIX, cli_path, 0), mode=0o600, level="admin")
    return dataclasses.replace(
        config,
        global_=dataclasses.replace(
            g,
            stats_sockets=(private,),
            maxconn=-(-g.maxconn // count),
            prometheus_exporter=None,
            daemon=False,
            pidfile=None,
        ),
    )


def fork_worker(
    config: Config, socks: dict[str, socket.socket], in_child: Callable[[], None]
) -> tuple[int, int]:
    """Forks a worker running `config` on `socks`; returns its pid and the read end of the
    pipe it writes to once ready. `in_child` drops what the child must not keep."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            os.close(r)
            in_child()
            code = run_worker(config, socks, w)
        except BaseException as exc:  # nothing may escape a forked child
            with contextlib.suppress(Exception):
                log.alert(f"worker failed: {exc!r}")
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def query(path: str, text: str) -> str | None:
    """One command on a worker's private runtime API socket; None if it does not answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(QUERY_TIMEOUT)
            s.connect(path)
            s.sendall(text.encode("utf-8", "surrogateescape") + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError:
        return None
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def uptime(sec: float) -> str:
    """`show proc`'s uptime: 0d00h01m05s."""
    s = int(sec)
    return f"{s // 86400}d{s % 86400 // 3600:02d}h{s % 3600 // 60:02d}m{s % 60:02d}s"


def proc_line(w: Worker, reloads: int, now: float) -> str:
    """A worker's line in `show proc`."""
    return f"{w.pid:<15} {'worker':<15} {reloads:<15} {uptime(now - w.started):<15} {VERSION}\n"


__all__ = [
    "QUERY_TIMEOUT",
    "Worker",
    "fork_worker",
    "proc_line",
    "query",
    "run_worker",
    "uptime",
    "worker_config",
]
