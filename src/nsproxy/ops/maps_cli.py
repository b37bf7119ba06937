"""Runtime API commands on maps and ACL files: show/get/add/set/del/clear/prepare/commit."""

from __future__ import annotations

from nsproxy.ops.runtime_api import OPERATOR, CommandSet, Handler, Session
from nsproxy.sample.maps import MAP_COMMANDS, map_command

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands

_READ_ONLY = ("show", "get")


def _handler(verb: str) -> Handler:
    def handler(session: Session, args: list[str]) -> str:
        if verb not in _READ_ONLY:
            session.need(OPERATOR)
        refs = session.rt.config.global_.pattern_refs
        if refs is None:
            return "Unknown map identifier. Please use #<id> or <file>.\n"
        return map_command(refs, args, session.payload)

    return handler


for _words, _help in MAP_COMMANDS:
    COMMANDS.command(
        *_words, usage=_help.split(" : ", 1)[0].rstrip(), help=_help.split(" : ", 1)[-1]
    )(_handler(_words[0]))

__all__ = ["COMMANDS"]
