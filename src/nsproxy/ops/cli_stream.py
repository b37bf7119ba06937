"""One runtime API connection without I/O: bytes in, one command run at a time, answer bytes
out, HAProxy's rules (`;` or a newline ends a command, `prompt`, `quit`).

The stats socket (asyncio) and the master's CLI (selectors) drive it; it bounds what a client
can make nsproxy hold: one line of input (MAX_LINE) and OUTPUT_CAP of unread answers."""

from __future__ import annotations

import collections

from nsproxy.ops.runtime_api import CommandTable, Session, split_commands

MAX_LINE = 65536
# Answers held for one client before it must read them: past this, its commands wait and its
# input is not read (HAProxy's CLI stops as its output buffer fills).
OUTPUT_CAP = 65536
PROMPT_TEXT = "prompt_text"  # Session.state key: the prompt when not "> " (the master CLI's)
BARE_EMPTY = "bare_empty"  # Session.state key: an empty answer gets no blank line (master CLI)


class CliStream:
    """The protocol state of one client: input buffer, pending commands, output buffer."""

    def __init__(self, table: CommandTable, session: Session) -> None:
        self.table = table
        self.session = session
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.pending: collections.deque[str] = collections.deque()
        self.eof = False
        self.closing = False
        self.ran_any = False

    def feed(self, data: bytes) -> bool:
        """Takes bytes read from the client (b"": end of input); False if a line is too long."""
        if not data:
            self.eof = True
            return True
        self.inbuf += data
        return b"\n" in self.inbuf or len(self.inbuf) <= MAX_LINE

    def room(self) -> bool:
        return len(self.outbuf) <= OUTPUT_CAP

    def has_line(self) -> bool:
        return not self.closing and (b"\n" in self.inbuf or (self.eof and bool(self.inbuf)))

    def runnable(self) -> bool:
        """A command can run now: one is waiting and the client has room for its answer."""
        return (bool(self.pending) or self.has_line()) and self.room()

    def wants_input(self) -> bool:
        """Reading more is useful: nothing waits to run, the answers have room, input is open."""
        return not (self.pending or self.eof or self.closing or self.has_line()) and self.room()

    def finished(self) -> bool:
        """Nothing more will be said: the connection can close once the output is sent."""
        return self.closing and not self.pending

    def sent(self, n: int) -> None:
        del self.outbuf[:n]

    def step(self) -> bool:
        """Runs at most one command; True when one ran (the client is active).

        As HAProxy 2.6: `;` and a newline both end a command, an empty one gets the
        "Unknown command" help, every answer ends with a blank line and, in prompt mode, a
        `> `; `quit` closes at once. Without prompt the connection closes once the commands
        already received are done; at the end of input an unterminated command is dropped.
        """
        if not self.pending and self.room():
            commands = self._next_line()
            if commands is not None:
                self.pending.extend(commands)
        ran = False
        if self.pending and self.room():
            ran = True
            self.ran_any = True
            answer = self.table.execute(self.session, self.pending.popleft())
            if self.session.end:
                self.pending.clear()
                self.closing = True
            else:
                if answer or not self.session.state.get(BARE_EMPTY):
                    self.outbuf += answer.encode("utf-8", "surrogateescape") + b"\n"
                if self.session.prompt:
                    self.outbuf += str(self.session.state.get(PROMPT_TEXT, "> ")).encode()
        idle = not self.pending and not self.has_line()
        if idle and (self.eof or (self.ran_any and not self.session.prompt)):
            self.closing = True
        return ran

    def _next_line(self) -> list[str] | None:
        """The commands of the next complete line (or of the rest of the input at its end)."""
        if self.closing:
            return None
        nl = self.inbuf.find(b"\n")
        if nl >= 0:
            line = self.inbuf[:nl].decode("utf-8", "surrogateescape").rstrip("\r")
            del self.inbuf[: nl + 1]
            return split_commands(line)
        if self.eof and self.inbuf:
            line = self.inbuf.decode("utf-8", "surrogateescape")
            self.inbuf.clear()
            return split_commands(line)[:-1]  # the last one has no terminator
        return None


__all__ = ["BARE_EMPTY", "MAX_LINE", "OUTPUT_CAP", "PROMPT_TEXT", "CliStream"]
