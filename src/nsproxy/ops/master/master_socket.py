"""The master CLI (`-S <addr>[,mode,<octal>]`) as HAProxy 2.6 has it: the master's own
commands, `@master` / `@N` / `@!PID` prefixes, `master> ` and `<pid>> ` prompts."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from nsproxy.addresses import AddressError, SockAddr, parse_bind
from nsproxy.config.model import StatsSocketCfg
from nsproxy.ops.cli_stream import BARE_EMPTY, PROMPT_TEXT
from nsproxy.ops.identity import VERSION
from nsproxy.ops.master.cli import MasterCli
from nsproxy.ops.master.workers import Worker
from nsproxy.ops.runtime_api import (
    ADMIN,
    LEVEL_NAMES,
    SESSION,
    CliError,
    CommandSet,
    CommandTable,
    Session,
)

if TYPE_CHECKING:
    from nsproxy.ops.master.process import Master
    from nsproxy.runtime.process import Runtime

TARGET = "target"  # Session.state key: the worker PID unprefixed commands go to (master: none)
MASTER_PROMPT = "master> "


class MasterCliError(ValueError):
    """A `-S` argument that cannot be used."""


def parse_master_bind(text: str) -> StatsSocketCfg:
    """`-S <addr>[,mode,<octal>][,level,<level>]`: a UNIX path or `ipv4@`/`ipv6@` address."""
    addr_text, *opts = text.split(",")
    try:
        addr = (
            parse_bind(addr_text)[0]
            if "@" in addr_text or not addr_text.startswith("/")
            else SockAddr(socket.AF_UNIX, addr_text, 0)
        )
    except AddressError as exc:
        raise MasterCliError(f"-S : {exc}") from None
    mode: int | None = None
    level = "admin"
    while opts:
        word = opts.pop(0)
        if word == "mode" and opts:
            try:
                mode = int(opts.pop(0), 8)
            except ValueError:
                raise MasterCliError("-S : 'mode' expects an octal value") from None
        elif word == "level" and opts:
            level = opts.pop(0)
            if level not in LEVEL_NAMES:
                raise MasterCliError(f"-S : unknown level '{level}'")
        else:
            raise MasterCliError(f"-S : unknown keyword '{word}'")
    return StatsSocketCfg(addr, mode=mode, level=level)


class MasterSocketCli(MasterCli):
    """The `-S` sockets: commands without a prefix are the master's."""

    def __init__(self, master: Master, binds: tuple[StatsSocketCfg, ...]) -> None:
        super().__init__(master)
        self.binds = binds
        own = CommandSet()
        for prefix, what in (
            ("@!<pid>", "the <pid> process"),
            ("@<relative pid>", "the <relative pid> process"),
            ("@master", "the master process"),
        ):  # listed by `help`; never matched (the prefixes are routed before the table)
            own.command("\0" + prefix, usage=prefix, help=f"send a command to {what}")(_never)
        own.command("reload", help="reload haproxy")(self._reload_master)
        own.command("show", "proc", help="show processes status")(self._show_proc)
        own.command("show", "version", help="show version of the current process")(_version)
        own.command("show", "cli", "sockets", help="dump list of cli sockets")(self._sockets)
        session = CommandSet()
        session.commands = [c for c in SESSION.commands if c.words != ("set", "timeout")]
        self.table = CommandTable((session, own), fallback=self._master_fallback)
        self.master_table = CommandTable((session, own))

    def socket_cfgs(self, rt: Runtime) -> tuple[StatsSocketCfg, ...]:
        return self.binds

    def setup(self, session: Session) -> None:
        session.state[PROMPT_TEXT] = MASTER_PROMPT
        session.state[BARE_EMPTY] = True

    # -- commands ---------------------------------------------------------------------------
    def _reload_master(self, session: Session, args: list[str]) -> str:
        """As HAProxy 2.6: the reload starts and the connection closes without an answer."""
        session.need(ADMIN)
        session.end = True
        self.master.reload()
        return ""

    def _sockets(self, session: Session, args: list[str]) -> str:
        lines = ["# socket lvl processes\n"]
        for s in self.sockets:
            a = s.cfg.addr
            where = a.host if a.family == socket.AF_UNIX else f"{a.host}:{a.port}"
            lines.append(f"{where} {s.cfg.level} master\n")
        return "".join(lines)

    def _master_fallback(self, session: Session, text: str, words: list[str]) -> str:
        """`@` prefixes, and commands sent while a worker is the session's target."""
        first = words[0] if words else ""
        if first.startswith("@"):
            rest = text.lstrip()[len(first) :].lstrip()
            return self._prefixed(session, first, rest)
        target = session.state.get(TARGET)
        if isinstance(target, int):
            return self._to_pid(session, target, text, first)
        if first == "help":
            return self.master_table.usage_message(words[1:], True)
        return self.master_table.usage_message(words, False)

    def _prefixed(self, session: Session, prefix: str, rest: str) -> str:
        name = prefix[1:]
        if name == "master":
            if not rest:
                session.state.pop(TARGET, None)
                session.state[PROMPT_TEXT] = MASTER_PROMPT
                return ""
            return self.master_table.execute(session, rest)
        worker = self._find(name)
        if worker is None:
            return f"Can't find the target PID matching the prefix '{prefix}'"
        if not rest:
            session.state[TARGET] = worker.pid
            session.state[PROMPT_TEXT] = f"{worker.pid}> "
            return ""
        return self._to_pid(session, worker.pid, rest, prefix)

    def _find(self, name: str) -> Worker | None:
        if name.startswith("!") and name[1:].isascii() and name[1:].isdigit():
            return self.master.workers.get(int(name[1:]))
        if name.isascii() and name.isdigit():
            return next((w for w in self.master.current() if w.num == int(name)), None)
        return None

    def _to_pid(self, session: Session, pid: int, text: str, prefix: str) -> str:
        worker = self.master.workers.get(pid)
        if worker is None:
            raise CliError(f"Can't find the target PID matching the prefix '{prefix}'")
        answers = self._ask(session, [worker], text)
        return answers[0] if answers else ""


def _never(session: Session, args: list[str]) -> str:
    return ""


def _version(session: Session, args: list[str]) -> str:
    return VERSION + "\n"


__all__ = ["MasterCliError", "MasterSocketCli", "parse_master_bind"]
