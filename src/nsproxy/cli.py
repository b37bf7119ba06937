"""The `nsproxy` command line, with HAProxy's flags; picks single-process or master-worker mode."""

from __future__ import annotations

import argparse
import sys

from nsproxy.config.load import load
from nsproxy.config.model import Config
from nsproxy.netns import NetnsError
from nsproxy.ops import identity, log, master, service


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nsproxy",
        description="Network-namespace-aware TCP proxy reading HAProxy configuration files.",
        allow_abbrev=False,
    )
    p.add_argument("-f", dest="files", action="append", default=[], metavar="CFGFILE")
    p.add_argument("-c", dest="check", action="store_true", help="check the configuration")
    p.add_argument("-db", dest="foreground", action="store_true", help="foreground, no daemon")
    p.add_argument("-d", dest="debug", action="store_true", help="foreground, debug")
    p.add_argument("-D", dest="daemon", action="store_true", help="daemon mode")
    p.add_argument("-W", "-Ws", dest="master_worker", action="store_true", help="master-worker")
    p.add_argument("-p", dest="pidfile", metavar="PIDFILE")
    p.add_argument("-q", dest="quiet", action="store_true")
    p.add_argument("-V", dest="verbose", action="store_true")
    p.add_argument("-v", dest="version", action="store_true")
    p.add_argument("-vv", dest="version_full", action="store_true")
    p.add_argument("-sf", dest="finish", nargs="+", type=int, default=[], metavar="PID")
    p.add_argument("-st", dest="terminate", nargs="+", type=int, default=[], metavar="PID")
    p.add_argument("-x", dest="sockpair", metavar="UNIX_SOCKET")
    p.add_argument("-L", dest="localpeer")
    p.add_argument("-S", dest="master_cli", action="append", default=[], metavar="BIND")
    return p


NO_LISTENER = "Configuration file has no error but will not start (no listener) => exit(2)."


def _listeners(config: Config) -> int:
    """What HAProxy counts as listeners: enabled binds, stats sockets, local peers (and
    nsproxy's own: namespace patterns and the Prometheus exporter)."""
    g = config.global_
    binds = sum(len(b.addrs) for px in config.frontends if not px.disabled for b in px.binds)
    peers = sum(1 for p in g.peers if p.local is not None and not p.disabled)
    own = len(config.namespace_patterns) + (g.prometheus_exporter is not None)
    return binds + len(g.stats_sockets) + peers + own


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.version or args.version_full:
        sys.stdout.write(identity.build_lines() if args.version_full else identity.version_lines())
        return 0
    if not args.files:
        _parser().print_usage(sys.stderr)
        log.alert("No configuration file specified (use -f).")
        return 1
    config = load(args.files, args.quiet, args.localpeer)
    if config is None:
        return 1
    if args.check:
        listeners = _listeners(config)
        if not args.quiet:
            if log.console_counts.get("WARNING"):
                print("Warnings were found.")
            if listeners:
                print("Configuration file is valid")
            else:
                print(NO_LISTENER)
        return 0 if listeners else 2
    if args.master_cli and not master.is_master_worker(config, args):
        log.warning(
            "config : a master CLI socket was defined, but master-worker mode (-W) is not enabled."
        )
    run = master.run_master if master.is_master_worker(config, args) else service.run
    try:
        return run(config, args)
    except NetnsError as exc:
        log.alert(f"config : {exc.strerror}")
        return 1


__all__ = ["main"]
