"""Single-process mode: one process runs the listeners, the event loop and the runtime API."""

from __future__ import annotations

import argparse

from nsproxy.config.model import Config
from nsproxy.ops import lifecycle, log, privileges


def run(config: Config, args: argparse.Namespace) -> int:
    """Starts the proxy described by `config` in this process; returns the exit status."""
    rt = lifecycle.built_runtime(config)
    if rt is None:
        return 1
    loop = rt.loop
    inherited = lifecycle.inherited_sockets(rt, args)
    failed = not rt.open_listeners(inherited)
    failed = not rt.open_peers() or failed
    for sock in inherited.values():
        sock.close()
    ops_ok, ops = lifecycle.open_ops(rt)
    if failed or not ops_ok:
        log.alert("[nsproxy.main()] Some protocols failed to start their listeners! Exiting.")
        rt.close()
        return 1
    if lifecycle.wants_daemon(config, args):
        lifecycle.daemonize()
    pidfile = lifecycle.pidfile_path(config, args)
    if pidfile:
        lifecycle.write_pidfile(pidfile)
    lifecycle.notify_connect()
    try:
        privileges.drop(config, rt)
    except OSError as exc:
        log.alert(f"[nsproxy.main()] {exc.strerror}")
        rt.close()
        return 1
    rt.install_signals()
    rt.stick.old_processes = len(args.finish) + len(args.terminate)  # they teach their tables
    rt.start()
    for part in ops:
        part.start()
    lifecycle.take_over(args)
    lifecycle.sd_notify(lifecycle.ready_state(args))
    try:
        loop.run_until_complete(rt.wait_stopped())
    finally:
        rt.close()
        loop.close()
        if pidfile:
            lifecycle.remove_pidfile(pidfile)
    return 0


__all__ = ["run"]
