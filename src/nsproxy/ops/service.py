"""Process lifecycle: daemon, pidfile, event loop, listeners, old process hand-over, signals."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from nsproxy.config.model import Config
from nsproxy.netns import NetnsError
from nsproxy.ops import log
from nsproxy.runtime.process import Runtime


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()


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
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    rt = Runtime(config, loop)
    try:
        rt.build()
    except NetnsError as exc:
        log.alert(f"config : {exc.strerror}")
        return 1
    failed = False
    for li in rt.listeners:
        try:
            li.open()
        except OSError as exc:
            failed = True
            kind = "listen" if li.frontend.cfg.is_backend else "frontend"
            log.alert(
                f"Binding [{li.bind.where}] for {kind} {li.frontend.name}: "
                f"cannot bind socket ({exc.strerror}) for [{li.addr}]"
            )
    if failed:
        log.alert("[nsproxy.main()] Some protocols failed to start their listeners! Exiting.")
        rt.close()
        return 1
    daemon = (args.daemon or config.global_.daemon) and not (args.foreground or args.debug)
    if daemon:
        _daemonize()
    pidfile = args.pidfile or config.global_.pidfile
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    rt.install_signals()
    rt.start()
    for pid in args.finish:
        _signal(pid, signal.SIGUSR1)
    for pid in args.terminate:
        _signal(pid, signal.SIGTERM)
    _sd_notify("READY=1")
    try:
        loop.run_until_complete(rt.wait_stopped())
    finally:
        rt.close()
        loop.close()
        if pidfile:
            with contextlib.suppress(OSError):
                os.unlink(pidfile)
    return 0


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        log.warning(f"cannot signal old process {pid}: {exc.strerror}")


def _sd_notify(state: str) -> None:
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
