"""The runtime API of a worker or a single process: the command sets it answers, listed."""

from __future__ import annotations

from nsproxy.ops import (
    frontends_cli,
    maps_cli,
    metrics,
    process_cli,
    servers_cli,
    ssl_cli,
    stats,
    table_cli,
    tenants_cli,
)
from nsproxy.ops.runtime_api import SESSION, CommandSet, CommandTable, Session

COMMAND_SETS: tuple[CommandSet, ...] = (
    SESSION,  # show cli level, operator, user, _getsocks
    stats.COMMANDS,  # show info/stat/servers state/sess/netns, server state and weight
    metrics.COMMANDS,  # _metrics, for the master's exporter
    tenants_cli.COMMANDS,  # add/del netns, bind, server
    maps_cli.COMMANDS,  # show/get/add/set/del/clear/prepare/commit map|acl
    table_cli.COMMANDS,  # show/clear/set table
    process_cli.COMMANDS,  # show version/env/errors, set timeout cli, set maxconn global, ...
    frontends_cli.COMMANDS,  # show backend, enable/disable/shutdown frontend, set maxconn fe
    servers_cli.COMMANDS,  # show servers conn, shutdown sessions server, agent, get var
    ssl_cli.COMMANDS,  # show/set/commit/abort/new/del ssl cert, add/show ssl crt-list
)


def build_table() -> CommandTable:
    """A fresh table holding every command set listed above."""
    return CommandTable(COMMAND_SETS)


TABLE = build_table()


def execute(session: Session, text: str) -> str:
    """Runs one command of the process's runtime API; returns the client's answer."""
    return TABLE.execute(session, text)


__all__ = ["COMMAND_SETS", "TABLE", "build_table", "execute"]
