"""Process lifecycle shared by single-process and master-worker runs.

Daemonizing, the pidfile (written atomically), systemd's sd_notify, the old process's
listening sockets (-x, `expose-fd listeners`), the signals to old processes (-sf/-st) and
the ops listeners (stats sockets, metrics endpoint).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys

from nsproxy.config.model import Config
from nsproxy.netns import NetnsError
from nsproxy.ops import log, metrics, stats_page
from nsproxy.ops.fd_transfer import adopt
from nsproxy.ops.metrics import MetricsExporter
from nsproxy.ops.stats_socket import StatsSockets
from nsproxy.runtime.listener import Listener
from nsproxy.runtime.process import Runtime

OpsPart = StatsSockets | MetricsExporter


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed, asyncio's otherwise."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()


def built_runtime(config: Config) -> Runtime | None:
    """A Runtime built from `config` on a new current event loop; None after the alert."""
    loop = new_loop()
    asyncio.set_event_loop(loop)
    rt = Runtime(config, loop)
    rt.services["prometheus-exporter"] = metrics.exposition
    try:
        rt.build()
    except NetnsError as exc:
        log.alert(f"config : {exc.strerror}")
        loop.close()
        return None
    stats_page.install(rt)
    return rt


def wants_daemon(config: Config, args: argparse.Namespace) -> bool:
    """-D or `daemon`, unless -db or -d keep the process in the foreground."""
    return bool((args.daemon or config.global_.daemon) and not (args.foreground or args.debug))


def daemonize() -> None:
    """Detaches from the terminal: double fork, new session, stdio on /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def pidfile_path(config: Config, args: argparse.Namespace) -> str | None:
    """-p, else the `pidfile` of the global section."""
    return str(args.pidfile or config.global_.pidfile or "") or None


def write_pidfile(path: str) -> None:
    """Writes this process's pid: a temporary file renamed over `path`, never half-written."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def remove_pidfile(path: str) -> None:
    """Removes `path` if it still names this process (after a reload it names the new one)."""
    with contextlib.suppress(OSError, ValueError), open(path) as f:
        mine = int(f.read().split()[0]) == os.getpid()
        if mine:
            os.unlink(path)


def inherited_sockets(rt: Runtime, args: argparse.Namespace) -> dict[Listener, socket.socket]:
    """The old process's listening sockets, fetched over its stats socket (-x, HAProxy's).

    With -sf/-st and no -x, a UNIX `stats socket ... expose-fd listeners` of the new
    configuration is used if it exists.
    """
    path = args.sockpair
    if path is None and (args.finish or args.terminate):
        for sc in rt.config.global_.stats_sockets:
            if sc.expose_fd and sc.addr.family == socket.AF_UNIX and os.path.exists(sc.addr.host):
                path = sc.addr.host
                break
    if path is None:
        return {}
    return adopt(rt, path)


def open_ops(rt: Runtime) -> tuple[bool, list[OpsPart]]:
    """Opens the runtime API sockets and the metrics endpoint; False if one cannot bind."""
    ok = True
    stats = StatsSockets(rt)
    for sock, exc in stats.open():
        ok = False
        log.alert(
            f"Starting frontend GLOBAL: cannot bind socket ({exc.strerror}) for [{sock.cfg.addr}]"
        )
    rt.on_stop.append(stats.close)
    parts: list[OpsPart] = [stats]
    addr = rt.config.global_.prometheus_exporter
    if addr is not None:
        exporter = MetricsExporter(rt, addr)
        try:
            exporter.open()
        except OSError as exc:
            ok = False
            log.alert(
                f"Starting prometheus-exporter: cannot bind socket ({exc.strerror}) for [{addr}]"
            )
        rt.on_stop.append(exporter.close)
        parts.append(exporter)
    return ok, parts


def signal_process(pid: int, sig: signal.Signals) -> None:
    """Signals an old process; one already gone is not an error."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        log.warning(f"cannot signal old process {pid}: {exc.strerror}")


def take_over(args: argparse.Namespace) -> None:
    """Tells the old processes of -sf (finish) and -st (terminate) that this one is ready."""
    for pid in args.finish:
        signal_process(pid, signal.SIGUSR1)
    for pid in args.terminate:
        signal_process(pid, signal.SIGTERM)


def ready_state(args: argparse.Namespace) -> str:
    """sd_notify's READY message; a reload run by systemd's ExecReload names the new main pid."""
    return f"MAINPID={os.getpid()}\nREADY=1" if args.finish or args.terminate else "READY=1"


_notify: socket.socket | None = None


def notify_connect() -> None:
    """Connects to NOTIFY_SOCKET while its path is reachable (before chroot and setuid)."""
    global _notify
    path = os.environ.get("NOTIFY_SOCKET")
    if not path or _notify is not None:
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect("\0" + path[1:] if path.startswith("@") else path)
    except OSError:
        sock.close()
        return
    _notify = sock


def sd_notify(state: str) -> None:
    """Sends `state` to systemd (READY=1, RELOADING=1, ...) when NOTIFY_SOCKET is set."""
    if _notify is not None:
        with contextlib.suppress(OSError):
            _notify.send(state.encode())
            return
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(state.encode(), path)
    except OSError as exc:
        print(f"sd_notify failed: {exc}", file=sys.stderr)


__all__ = [
    "built_runtime",
    "daemonize",
    "inherited_sockets",
    "new_loop",
    "notify_connect",
    "open_ops",
    "pidfile_path",
    "ready_state",
    "remove_pidfile",
    "sd_notify",
    "signal_process",
    "take_over",
    "wants_daemon",
    "write_pidfile",
]
