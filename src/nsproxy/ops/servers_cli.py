"""Runtime API commands on servers that need no state change logic: show servers conn,
shutdown sessions server, enable/disable agent, and get var, as HAProxy 2.6 answers them."""

from __future__ import annotations

from nsproxy.ops.runtime_api import ADMIN, OPERATOR, CliError, CommandSet, Session
from nsproxy.ops.stats import find_server

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands
PURGE_DELAY_MS = 5000  # HAProxy's default pool-purge-delay


@COMMANDS.command(
    "show",
    "servers",
    "conn",
    usage="show servers conn [<backend>]",
    help="dump server connections status (all or for a single backend)",
)
def _show_servers_conn(session: Session, args: list[str]) -> str:
    """Connections per server; nsproxy keeps no idle connections (no HTTP reuse), so the
    idle columns are 0 with one thread per process."""
    rt = session.rt
    backends = list(rt.backends.values())
    if len(args) > 3:
        be = rt.backends.get(args[3])
        if be is None:
            raise CliError("Can't find backend.\n")
        backends = [be]
    lines = [
        "# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est "
        "unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[1]\n"
    ]
    for be in backends:
        for srv in be.servers:
            a = srv.cfg.addr
            lines.append(
                f"{be.name}/{srv.name} {be.cfg.id}/{srv.puid} {a.host or '0.0.0.0'} {a.port} - "
                f"{PURGE_DELAY_MS} {srv.cur_conns} {srv.stats.max_conns} {srv.stats.max_conns} "
                "0 0 -1 0 0\n"
            )
    return "".join(lines)


@COMMANDS.command(
    "shutdown",
    "sessions",
    "server",
    usage="shutdown sessions server <bk>/<srv>",
    help="kill sessions on a server",
)
def _shutdown_sessions(session: Session, args: list[str]) -> str:
    session.need(ADMIN)
    _, srv = find_server(session.rt, args[3] if len(args) > 3 else None)
    for stream in [s for s in session.rt.streams if s.server is srv]:
        stream.close()
    return ""


@COMMANDS.command("disable", "agent", help="disable agent checks")
def _disable_agent(session: Session, args: list[str]) -> str:
    session.need(ADMIN)
    find_server(session.rt, args[2] if len(args) > 2 else None)
    return ""  # nsproxy has no agent checks: nothing to disable


@COMMANDS.command("enable", "agent", help="enable agent checks")
def _enable_agent(session: Session, args: list[str]) -> str:
    session.need(ADMIN)
    find_server(session.rt, args[2] if len(args) > 2 else None)
    raise CliError("Agent was not configured on this server, cannot enable.\n")


@COMMANDS.command(
    "get", "var", usage="get var <name>", help="retrieve contents of a process-wide variable"
)
def _get_var(session: Session, args: list[str]) -> str:
    """nsproxy has no variables (`set-var` needs rules nsproxy does not have yet)."""
    session.need(OPERATOR)
    if len(args) < 3:
        raise CliError("Missing process-wide variable identifier.\n")
    raise CliError("Variable not found.\n")


__all__ = ["COMMANDS"]
