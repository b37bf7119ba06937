"""The runtime API's command table and dispatcher: HAProxy's CLI words, levels and messages."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nsproxy.ops import log
from nsproxy.ops.fd_transfer import send_listeners

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

USER, OPERATOR, ADMIN = 1, 2, 3
LEVEL_NAMES = {"user": USER, "operator": OPERATOR, "admin": ADMIN}
PERMISSION_DENIED = "Permission denied\n"
PAYLOAD = "payload"  # Session.state: the `<<` payload of the command being run (stats socket)


class CliError(Exception):
    """A command that failed; its message is what the client reads."""


@dataclass(slots=True)
class Session:
    """One runtime API connection: its level, prompt mode, and the socket (for `_getsocks`)."""

    rt: Runtime
    level: int
    expose_fd: bool = False
    sock: socket.socket | None = None
    prompt: bool = False
    end: bool = False
    state: dict[str, object] = field(default_factory=dict)

    def need(self, level: int) -> None:
        if self.level < level:
            raise CliError(PERMISSION_DENIED)


Handler = Callable[[Session, list[str]], str]


@dataclass(frozen=True, slots=True)
class Command:
    """A command: its leading words, its usage line for `help`, and its handler."""

    words: tuple[str, ...]
    usage: str
    handler: Handler


class CommandSet:
    """The commands one module declares; a table holds them only if its builder lists the set."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def command(self, *words: str, usage: str = "", help: str = "") -> Callable[[Handler], Handler]:
        """Declares a command (the handler checks its own level, as HAProxy does)."""

        def deco(fn: Handler) -> Handler:
            line = f"{usage or ' '.join(words):<40}: {help}" if help else ""
            self.commands.append(Command(words, line, fn))
            return fn

        return deco


Fallback = Callable[[Session, str, list[str]], str]


def split_commands(line: str) -> list[str]:
    """Splits one input line on unescaped ';'."""
    out, cur, i = [], [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur.append(line[i : i + 2])
            i += 2
            continue
        if ch == ";":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def split_words(text: str) -> list[str]:
    """Words separated by spaces or tabs; a backslash makes the next character literal."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            in_word = True
            i += 2
            continue
        if ch in " \t":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        else:
            cur.append(ch)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(cur))
    return words


_ALWAYS = (
    f"  {'help [<command>]':<40}: list matching or all commands\n"
    f"  {'prompt':<40}: toggle interactive mode with prompt\n"
    f"  {'quit':<40}: disconnect\n"
)


class CommandTable:
    """The commands one process answers, from the sets it lists, and their dispatcher.

    `prompt` and `quit` are the dispatcher's own. A command no set declares goes to
    `fallback` when there is one (the master forwards it to its workers); otherwise `help`
    lists the commands and anything else gets HAProxy's "Unknown command" help.
    """

    def __init__(self, sets: Iterable[CommandSet] = (), fallback: Fallback | None = None) -> None:
        self.commands: list[Command] = []
        self.fallback = fallback
        for cs in sets:
            for c in cs.commands:
                self.add(c)

    def add(self, cmd: Command) -> None:
        if any(c.words == cmd.words for c in self.commands):
            raise RuntimeError(f"runtime API command '{' '.join(cmd.words)}' declared twice")
        self.commands.append(cmd)

    def find(self, args: list[str]) -> Command | None:
        """The command with the longest list of leading words matching `args`."""
        best: Command | None = None
        for c in self.commands:
            n = len(c.words)
            if tuple(args[:n]) == c.words and (best is None or n > len(best.words)):
                best = c
        return best

    def usage_message(self, args: list[str], is_help: bool) -> str:
        """HAProxy's help text: the commands matching the first words of `args`, or all."""
        visible = [c for c in self.commands if c.usage]
        length = 0
        for c in visible:
            n = 0
            while n < len(c.words) and n < len(args) and c.words[n] == args[n]:
                n += 1
            length = max(length, n)
        if is_help:
            head = "The following commands are valid at this level:\n"
        elif length == 0:
            head = "Unknown command. Please enter one of the following commands only:\n"
        else:
            head = "Unknown command, but maybe one of the following ones is a better match:\n"
        shown = [c for c in visible if c.words[:length] == tuple(args[:length])]
        body = "".join(f"  {c.usage}\n" for c in sorted(shown, key=lambda c: c.usage))
        return head + body + _ALWAYS

    def execute(self, session: Session, text: str) -> str:
        """Runs one command; returns what the client reads before the blank line ending it."""
        args = split_words(text)
        if not args:
            return ""
        if args[0] == "prompt":
            session.prompt = not session.prompt
            return ""
        if args[0] in ("quit", "exit"):
            session.end = True
            return ""
        cmd = self.find(args)
        try:
            if cmd is not None:
                return cmd.handler(session, args)
            if self.fallback is not None:
                return self.fallback(session, text, args)
            if args[0] == "help":
                return self.usage_message(args[1:], True)
            return self.usage_message(args, False)
        except CliError as exc:
            return str(exc)

    def run_line(self, session: Session, line: str) -> str:
        """Runs the `;`-separated commands of one input line; each answer ends with a blank line."""
        out = []
        for text in split_commands(line):
            if session.end:
                break
            answer = self.execute(session, text)
            if session.end and not answer:
                break
            out.append(answer + "\n")
        return "".join(out)


# -- session commands ------------------------------------------------------------------------
SESSION = CommandSet()


@SESSION.command("show", "cli", "level", help="display the level of the current CLI session")
def _show_level(session: Session, args: list[str]) -> str:
    name = next(n for n, v in LEVEL_NAMES.items() if v == session.level)
    return name + "\n"


def _lower(level: int) -> Handler:
    def handler(session: Session, args: list[str]) -> str:
        session.need(level)
        session.level = level
        return ""

    return handler


SESSION.command("operator", help="lower the level of the current CLI session to operator")(
    _lower(OPERATOR)
)
SESSION.command("user", help="lower the level of the current CLI session to user")(_lower(USER))


@SESSION.command("_getsocks")
def _getsocks(session: Session, args: list[str]) -> str:
    """Hands the listening sockets to a new process (HAProxy's `expose-fd listeners`)."""
    session.end = True
    if session.expose_fd and session.sock is not None:
        try:
            send_listeners(session.rt, session.sock)
        except OSError as exc:
            log.warning(f"Failed to transfer sockets: {exc.strerror}")
    return ""
