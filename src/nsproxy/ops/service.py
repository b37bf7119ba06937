"""Process lifecycle: daemon, pidfile, event loop, listeners, old process hand-over, signals."""

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
from nsproxy.ops import log, privileges
from nsproxy.ops.metrics import MetricsExporter
from nsproxy.ops.stats_socket import StatsSockets
from nsproxy.runtime.listener import Listener
from nsproxy.runtime.process import Runtime


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()


def _built_runtime(config: Config) -> Runtime | None:
    """A Runtime built from `config` on a new current event loop; None after the alert."""
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    rt = Runtime(config, loop)
    try:
        rt.build()
    except NetnsError as exc:
        log.alert(f"config : {exc.strerror}")
        loop.close()
        return None
    return rt


def _daemonize() -> None:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def run(config: Config, args: argparse.Namespace) -> int:
    """Starts the proxy described by `config`; returns the exit status."""
    from nsproxy.ops import master

    if master.is_master_worker(config, args):
        return master.run_master(config, args)
    rt = _built_runtime(config)
    if rt is None:
        return 1
    loop = rt.loop
    inherited = _inherited_sockets(rt, args)
    failed = not rt.open_listeners(inherited)
    for sock in inherited.values():
        sock.close()
    ops_ok, ops = _open_ops(rt)
    failed = failed or not ops_ok
    if failed:
        log.alert("[nsproxy.main()] Some protocols failed to start their listeners! Exiting.")
        rt.close()
        return 1
    daemon = (args.daemon or config.global_.daemon) and not (args.foreground or args.debug)
    if daemon:
        _daemonize()
    pidfile = args.pidfile or config.global_.pidfile
    if pidfile:
        tmp = f"{pidfile}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, pidfile)
    _notify_connect()
    try:
        privileges.drop(config, rt)
    except OSError as exc:
        log.alert(f"[nsproxy.main()] {exc.strerror}")
        rt.close()
        return 1
    rt.install_signals()
    rt.start()
    for part in ops:
        part.start()
    for pid in args.finish:
        _signal(pid, signal.SIGUSR1)
    for pid in args.terminate:
        _signal(pid, signal.SIGTERM)
    # A reload run by systemd's ExecReload tells it which process is now the main one.
    _sd_notify(f"MAINPID={os.getpid()}\nREADY=1" if args.finish or args.terminate else "READY=1")
    try:
        loop.run_until_complete(rt.wait_stopped())
    finally:
        rt.close()
        loop.close()
        if pidfile:
            with contextlib.suppress(OSError, ValueError), open(pidfile) as f:
                mine = int(f.read().split()[0]) == os.getpid()
            with contextlib.suppress(OSError):
                if mine:  # after a reload the file names the new process
                    os.unlink(pidfile)
    return 0


def _inherited_sockets(rt: Runtime, args: argparse.Namespace) -> dict[Listener, socket.socket]:
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
    from nsproxy.ops.fd_transfer import adopt

    return adopt(rt, path)


def _open_ops(rt: Runtime) -> tuple[bool, list[StatsSockets | MetricsExporter]]:
    """Opens the runtime API sockets and the metrics endpoint; False if one cannot bind."""
    ok = True
    stats = StatsSockets(rt)
    for sock, exc in stats.open():
        ok = False
        log.alert(
            f"Starting frontend GLOBAL: cannot bind socket ({exc.strerror}) for [{sock.cfg.addr}]"
        )
    rt.on_stop.append(stats.close)
    parts: list[StatsSockets | MetricsExporter] = [stats]
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


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        log.warning(f"cannot signal old process {pid}: {exc.strerror}")


_notify: socket.socket | None = None


def _notify_connect() -> None:
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


def _sd_notify(state: str) -> None:
    if _notify is not None:
        with contextlib.suppress(OSError):
            _notify.send(state.encode())
            return
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    import socket

    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(state.encode(), path)
    except OSError as exc:
        print(f"sd_notify failed: {exc}", file=sys.stderr)
