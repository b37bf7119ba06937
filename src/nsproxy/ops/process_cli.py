"""Runtime API commands about the process: show version/env/errors, set maxconn global,
clear counters; answers and levels as HAProxy 2.6's."""

from __future__ import annotations

import dataclasses
import os
import time

from nsproxy.ops import identity
from nsproxy.ops.cli_args import atoi
from nsproxy.ops.runtime_api import ADMIN, OPERATOR, CliError, CommandSet, Session
from nsproxy.runtime.objects import Counters
from nsproxy.sample.logformat import accept_date

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands


@COMMANDS.command("show", "version", help="show version of the current process")
def _show_version(session: Session, args: list[str]) -> str:
    return identity.VERSION + "\n"


@COMMANDS.command(
    "show", "env", usage="show env [var]", help="dump environment variables known to the process"
)
def _show_env(session: Session, args: list[str]) -> str:
    session.need(OPERATOR)
    if len(args) > 2:
        value = os.environ.get(args[2])
        if value is None:
            raise CliError("Variable not found\n")
        return f"{args[2]}={value}\n"
    return "".join(f"{k}={v}\n" for k, v in os.environ.items())


@COMMANDS.command(
    "show",
    "errors",
    usage="show errors [<px>] [request|response]",
    help="report last request and/or response errors for each proxy",
)
def _show_errors(session: Session, args: list[str]) -> str:
    """nsproxy captures no HTTP message errors (no HTTP mode): the count is 0, as HAProxy's
    in TCP mode."""
    session.need(OPERATOR)
    return f"Total events captured on [{accept_date(time.time())}] : 0\n"


@COMMANDS.command(
    "set",
    "maxconn",
    "global",
    usage="set maxconn global <value>",
    help="change the per-process maxconn setting",
)
def _set_maxconn_global(session: Session, args: list[str]) -> str:
    session.need(ADMIN)
    if len(args) < 4:
        raise CliError("Expects an integer value.\n")
    rt = session.rt
    value = atoi(args[3])
    hard = rt.config.global_.maxconn
    if value > hard:
        raise CliError("Value out of range.\n")
    rt.maxconn = value or hard
    return ""


_MAXIMA: tuple[str, ...] = (
    "sess_rate_max",
    "conn_rate_max",
    "req_rate_max",
    "qtime_max",
    "ctime_max",
)
_MAXIMA += ("rtime_max", "ttime_max")
_KEPT = ("cur_conns", "down_since", "down_time")  # state, not counters


def _clear(c: Counters, everything: bool) -> None:
    fresh = Counters()
    names = [f.name for f in dataclasses.fields(c)] if everything else list(_MAXIMA)
    for name in names:
        if name not in _KEPT:
            setattr(c, name, getattr(fresh, name))
    c.max_conns = c.cur_conns


@COMMANDS.command(
    "clear",
    "counters",
    usage="clear counters [all]",
    help="clear max statistics counters (or all counters)",
)
def _clear_counters(session: Session, args: list[str]) -> str:
    everything = len(args) > 2 and args[2] == "all"
    session.need(ADMIN if everything else OPERATOR)
    rt = session.rt
    objects: list[Counters] = [rt.stats]
    objects += [fe.stats for fe in rt.frontends.values()]
    for be in rt.backends.values():
        objects.append(be.stats)
        objects += [srv.stats for srv in be.servers]
    for c in objects:
        _clear(c, everything)
    if everything:
        for ns in rt.registry:
            ns.total_conns = ns.bytes_in = ns.bytes_out = ns.errors = 0
    return ""


__all__ = ["COMMANDS"]
