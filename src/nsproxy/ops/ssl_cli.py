"""Runtime API certificate commands (`show/set/commit/abort/new/del ssl cert`, `add/show ssl
crt-list`) on the process's certificate store: new handshakes use a committed certificate."""

from __future__ import annotations

from nsproxy.ops.runtime_api import ADMIN, OPERATOR, CommandSet, Handler, Session
from nsproxy.runtime import tls_wire
from nsproxy.tls import certapi

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands

_COMMANDS = (
    (("show", "ssl", "cert"), OPERATOR, "show ssl cert [<certfile>]",
     "display the SSL certificates used in memory, or the details of a file"),
    (("set", "ssl", "cert"), ADMIN, "set ssl cert <certfile> <payload>",
     "replace a certificate file"),
    (("commit", "ssl", "cert"), ADMIN, "commit ssl cert <certfile>", "commit a certificate file"),
    (("abort", "ssl", "cert"), ADMIN, "abort ssl cert <certfile>",
     "abort a transaction for a certificate file"),
    (("new", "ssl", "cert"), ADMIN, "new ssl cert <certfile>",
     "create a new certificate file to be used in a crt-list or a directory"),
    (("del", "ssl", "cert"), ADMIN, "del ssl cert <certfile>", "delete an unused certificate file"),
    (("add", "ssl", "crt-list"), ADMIN, "add ssl crt-list <list> <cert> [opts]*",
     "add to crt-list file <list> a line <cert> or a payload"),
    (("show", "ssl", "crt-list"), OPERATOR, "show ssl crt-list [-n] [<list>]",
     "show the list of crt-lists or the content of a crt-list file <list>"),
)  # fmt: skip


def _handler(level: int) -> Handler:
    def handler(session: Session, args: list[str]) -> str:
        payload = session.payload
        session.need(level)
        api = tls_wire.state(session.rt).api
        answer = certapi.dispatch(api, args, payload if isinstance(payload, str) else None)
        return answer or ""

    return handler


for _words, _level, _usage, _help in _COMMANDS:
    COMMANDS.command(*_words, usage=_usage, help=_help)(_handler(_level))

__all__ = ["COMMANDS"]
