"""Runtime API commands on proxies: show backend, enable/disable/shutdown frontend and
set maxconn frontend, with HAProxy 2.6's answers and levels."""

from __future__ import annotations

from nsproxy.ops import log
from nsproxy.ops.cli_args import atoi
from nsproxy.ops.runtime_api import ADMIN, CliError, CommandSet, Session
from nsproxy.runtime.objects import Frontend

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands


def _frontend(session: Session, args: list[str], pos: int = 2) -> Frontend:
    """The frontend named by args[pos], for an admin session."""
    session.need(ADMIN)
    if len(args) <= pos:
        raise CliError("A frontend name is expected.\n")
    fe = session.rt.frontends.get(args[pos])
    if fe is None:
        raise CliError("No such frontend.\n")
    return fe


def _shut(fe: Frontend) -> bool:
    return all(li.sock is None for li in fe.listeners)


@COMMANDS.command("show", "backend", help="list backends in the current running config")
def _show_backend(session: Session, args: list[str]) -> str:
    rt = session.rt
    return "# name\n" + "".join(f"{px.name}\n" for px in rt.config.proxies if px.is_backend)


@COMMANDS.command(
    "disable",
    "frontend",
    usage="disable frontend <frontend>",
    help="temporarily disable specific frontend",
)
def _disable_frontend(session: Session, args: list[str]) -> str:
    fe = _frontend(session, args)
    if _shut(fe):
        raise CliError("Frontend was previously shut down, cannot disable.\n")
    if fe.disabled:
        raise CliError("All sockets are already disabled.\n")
    fe.disabled = True
    rt = session.rt
    rt.paused_for_limit[:] = [li for li in rt.paused_for_limit if li.frontend is not fe]
    for li in fe.listeners:
        li.pause()
    return ""


@COMMANDS.command(
    "enable", "frontend", usage="enable frontend <frontend>", help="re-enable specific frontend"
)
def _enable_frontend(session: Session, args: list[str]) -> str:
    fe = _frontend(session, args)
    if _shut(fe):
        raise CliError("Frontend was previously shut down, cannot enable.\n")
    if not fe.disabled:
        raise CliError("All sockets are already enabled.\n")
    fe.disabled = False
    if not session.rt.stopping:
        for li in fe.listeners:
            li.resume()
    return ""


@COMMANDS.command(
    "shutdown",
    "frontend",
    usage="shutdown frontend <frontend>",
    help="stop a specific frontend",
)
def _shutdown_frontend(session: Session, args: list[str]) -> str:
    fe = _frontend(session, args)
    if _shut(fe):
        raise CliError("Frontend was already shut down.\n")
    rt = session.rt
    rt.paused_for_limit[:] = [li for li in rt.paused_for_limit if li.frontend is not fe]
    for li in fe.listeners:
        li.close()
    be = fe.backend.stats.total_conns if fe.backend is not None else 0
    msg = f"Proxy {fe.name} stopped (cumulated conns: FE: {fe.stats.total_conns}, BE: {be})."
    log.warning(msg)
    fe.logger.emit(log.LOG_WARNING, msg)
    return ""


@COMMANDS.command(
    "set",
    "maxconn",
    "frontend",
    usage="set maxconn frontend <frontend> <value>",
    help="change a frontend's maxconn setting",
)
def _set_maxconn_frontend(session: Session, args: list[str]) -> str:
    fe = _frontend(session, args, 3)
    if len(args) < 5:
        raise CliError("Integer value expected.\n")
    value = atoi(args[4])
    fe.maxconn = value if value > 0 else 1 << 62
    rt = session.rt
    waiting = [li for li in rt.paused_for_limit if li.frontend is fe]
    if waiting and not rt.full(fe) and not fe.disabled:
        rt.paused_for_limit[:] = [li for li in rt.paused_for_limit if li.frontend is not fe]
        for li in waiting:
            li.resume()
    return ""


__all__ = ["COMMANDS"]
