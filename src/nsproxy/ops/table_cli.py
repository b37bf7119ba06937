"""Runtime API commands `show table`, `clear table` and `set table` on the process's tables."""

from __future__ import annotations

from nsproxy.ops.runtime_api import OPERATOR, CommandSet, Handler, Session
from nsproxy.stick.cli import COMMANDS as TABLE_COMMANDS
from nsproxy.stick.cli import table_command

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands


def _handler(action: str) -> Handler:
    """Every level may run these; below operator, HAProxy 2.6 shows only the table headers
    and refuses per-key requests (the text function applies that)."""

    def handler(session: Session, args: list[str]) -> str:
        rt = session.rt
        return table_command(
            action,
            args[2:],
            list(rt.tables.values()),
            rt.stick.now_ms(),
            oper=session.level >= OPERATOR,
        )

    return handler


for _words, _usage, _help in TABLE_COMMANDS:
    COMMANDS.command(*_words, usage=_usage, help=_help)(_handler(_words[0]))

__all__ = ["COMMANDS"]
