"""The lines HAProxy 2.6 logs when an operator changes a server's admin state, and at stop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nsproxy.ops import log

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Backend, Server
    from nsproxy.runtime.process import Runtime

LOG_EMERG, LOG_ALERT, LOG_WARNING, LOG_NOTICE = 0, 1, 4, 5


@dataclass(frozen=True, slots=True)
class Before:
    """A server's admin state before an operator's command."""

    maint: bool
    drain: bool
    any_usable: bool  # whether its backend had a usable server


def before(be: Backend, srv: Server) -> Before:
    return Before(srv.admin_maint, srv.drain, any(s.usable() for s in be.servers))


def _counts(be: Backend) -> tuple[int, int, str]:
    act = sum(1 for s in be.servers if not s.backup and s.usable())
    bck = sum(1 for s in be.servers if s.backup and s.usable())
    return act, bck, " Running on backup." if bck and not act else ""


def _emit(be: Backend, level: int, msg: str) -> None:
    log.warning(msg)
    be.logger.emit(level, msg)


def admin_changed(be: Backend, srv: Server, was: Before) -> None:
    """Logs the change from `was` to the server's admin state now, as HAProxy words it."""
    who = f"{'Backup Server' if srv.backup else 'Server'} {be.name}/{srv.name}"
    act, bck, backup = _counts(be)
    left = (
        f"{act} active and {bck} backup servers left.{backup} "
        f"{srv.cur_conns} sessions active, 0 requeued, 0 remaining in queue."
    )
    online = (
        f"{act} active and {bck} backup servers online.{backup} "
        "0 sessions requeued, 0 total in queue."
    )
    if srv.admin_maint and not was.maint:
        if not srv.up:
            _emit(be, LOG_NOTICE, f"{who} was DOWN and now enters maintenance.")
        else:
            level = LOG_NOTICE if was.drain else LOG_ALERT
            _emit(be, level, f"{who} is going DOWN for maintenance. {left}")
    elif was.maint and not srv.admin_maint:
        state = f"{'UP' if srv.up else 'DOWN'}/{'DRAIN' if srv.drain else 'READY'}"
        _emit(be, LOG_NOTICE, f"{who} is {state} (leaving forced maintenance).")
        if srv.drain:
            _emit(be, LOG_NOTICE, f"{who} remains in forced drain mode.")
    elif srv.drain and not was.drain:
        _emit(be, LOG_NOTICE, f"{who} enters drain state. {online if srv.up else left}")
    elif was.drain and not srv.drain:
        _emit(be, LOG_NOTICE, f"{who} is {'UP' if srv.up else 'DOWN'} (leaving forced drain).")
    if was.any_usable and not act and not bck:
        kind = "proxy" if be.cfg.is_frontend else "backend"
        log.alert(f"{kind} '{be.name}' has no server available!")
        be.logger.emit(LOG_EMERG, f"{kind} {be.name} has no server available!")


def proxies_stopped(rt: Runtime) -> None:
    """`Proxy X stopped (cumulated conns: FE: n, BE: m).` for each proxy at a soft stop:
    those with a frontend first, then the backends, each in configuration order."""
    proxies = rt.config.proxies
    ordered = [p for p in proxies if p.name in rt.frontends]
    ordered += [p for p in proxies if p.name not in rt.frontends]
    for px in ordered:
        fe = rt.frontends.get(px.name)
        be = rt.backends.get(px.name)
        fe_conns = fe.stats.total_conns if fe is not None else 0
        be_conns = be.stats.total_conns if be is not None else 0
        msg = f"Proxy {px.name} stopped (cumulated conns: FE: {fe_conns}, BE: {be_conns})."
        log.warning(msg)
        logger = fe.logger if fe is not None else be.logger if be is not None else None
        if logger:
            logger.emit(LOG_WARNING, msg)
