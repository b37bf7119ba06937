"""One runtime API connection without I/O: bytes in, one command run at a time, answer bytes
out, HAProxy's rules (`;` or a newline ends a command, `prompt`, `quit`).

The stats socket (asyncio) and the master's CLI (selectors) drive it; it bounds what a client
can make nsproxy hold: one line of input (MAX_LINE) and OUTPUT_CAP of unread answers."""

from __future__ import annotations

import collections

from nsproxy.ops.runtime_api import CommandTable, Session, split_commands

MAX_LINE = 65536
MAX_PAYLOAD = 1 << 20  # `cmd <<` then lines up to an empty one: a certificate, map entries
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
        self.pending: collections.deque[tuple[str, str | None]] = collections.deque()
        self.eof = False
        self.closing = False
        self.ran_any = False

    def feed(self, data: bytes) -> bool:
        """Takes bytes read from the client (b"": end of input); False if a line is too long."""
        if not data:
            self.eof = True
            return True
        self.inbuf += data
        if self._line_end() is None and self._payload_start() is not None:
            return len(self.inbuf) <= MAX_PAYLOAD
        return b"\n" in self.inbuf or len(self.inbuf) <= MAX_LINE

    def room(self) -> bool:
        return len(self.outbuf) <= OUTPUT_CAP

    def has_line(self) -> bool:
        if self.closing:
            return False
        return self._line_end() is not None or (self.eof and bool(self.inbuf))

    def _payload_start(self) -> int | None:
        """Where the payload begins when the first line ends with `<<` (else None)."""
        nl = self.inbuf.find(b"\n")
        if nl >= 0 and self.inbuf[:nl].rstrip(b"\r").endswith(b"<<"):
            return nl + 1
        return None

    def _line_end(self) -> int | None:
        """The end of the next complete command line, its payload included (None: not yet)."""
        nl = self.inbuf.find(b"\n")
        if nl < 0:
            return None
        start = self._payload_start()
        if start is None:
            return nl + 1
        if self.inbuf[start : start + 1] == b"\n":
            return start + 1
        end = self.inbuf.find(b"\n\n", start - 1)
        return None if end < 0 else end + 2

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
            command, payload = self.pending.popleft()
            self.session.payload = payload
            answer = self.table.execute(self.session, command)
            self.session.payload = None
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

    def _next_line(self) -> list[tuple[str, str | None]] | None:
        """The commands of the next complete line (or of the rest of the input at its end).

        A line ending with `<<` carries a payload, the lines up to an empty one, for its last
        command (HAProxy's `set ssl cert NAME <<`, `add map NAME <<`).
        """
        if self.closing:
            return None
        end = self._line_end()
        if end is not None:
            nl = self.inbuf.find(b"\n")
            line = self.inbuf[:nl].decode("utf-8", "surrogateescape").rstrip("\r")
            payload = None
            if line.endswith("<<"):
                line = line[:-2].rstrip()
                payload = self.inbuf[nl + 1 : end - 1].decode("utf-8", "surrogateescape")
            del self.inbuf[:end]
            commands = split_commands(line)
            out: list[tuple[str, str | None]] = [(c, None) for c in commands]
            if payload is not None and out:
                out[-1] = (out[-1][0], payload)
            return out
        if self.eof and self.inbuf:
            line = self.inbuf.decode("utf-8", "surrogateescape")
            self.inbuf.clear()
            return [(c, None) for c in split_commands(line)[:-1]]  # the last has no terminator
        return None


__all__ = ["BARE_EMPTY", "MAX_LINE", "OUTPUT_CAP", "PROMPT_TEXT", "CliStream"]
