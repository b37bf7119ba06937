"""Moves bytes one way between two non-blocking sockets, with half-close and back-pressure."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Protocol


class Owner(Protocol):
    """What a relay half reports to: its stream."""

    loop: asyncio.AbstractEventLoop

    def half_done(self, half: Half) -> None: ...

    def half_error(self, half: Half, on_read: bool) -> None: ...

    def activity(self, half: Half) -> None: ...


class Half:
    """One direction of a relay: reads `src`, writes `dst`; a FIN on `src` becomes shutdown(dst).

    Reads go through one buffer shared by every relay of the process (callbacks never run
    concurrently); only bytes the peer could not take at once are copied out.
    """

    __slots__ = (
        "dst",
        "dstfd",
        "eof",
        "nbytes",
        "owner",
        "pending",
        "reading",
        "shut",
        "src",
        "srcfd",
    )

    def __init__(
        self, owner: Owner, src: socket.socket, dst: socket.socket, pending: bytes
    ) -> None:
        self.owner = owner
        self.src = src
        self.dst = dst
        self.srcfd = src.fileno()
        self.dstfd = dst.fileno()
        self.pending = pending
        self.nbytes = 0
        self.eof = False
        self.shut = False
        self.reading = False

    def start(self) -> None:
        if self.pending:
            self.owner.loop.add_writer(self.dstfd, self._on_writable)
        else:
            self.reading = True
            self.owner.loop.add_reader(self.srcfd, self._on_readable)

    def stop(self) -> None:
        loop = self.owner.loop
        if self.reading:
            loop.remove_reader(self.srcfd)
            self.reading = False
        if self.pending:
            loop.remove_writer(self.dstfd)
            self.pending = b""

    def _on_readable(self) -> None:
        try:
            n = self.src.recv_into(BUFFER)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.owner.half_error(self, True)
            return
        if n == 0:
            self.owner.loop.remove_reader(self.srcfd)
            self.reading = False
            self.eof = True
            self._shutdown()
            return
        self.nbytes += n
        self.owner.activity(self)
        try:
            sent = self.dst.send(VIEW[:n])
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.owner.half_error(self, False)
            return
        if sent < n:
            self.pending = bytes(VIEW[sent:n])
            self.owner.loop.remove_reader(self.srcfd)
            self.reading = False
            self.owner.loop.add_writer(self.dstfd, self._on_writable)

    def _on_writable(self) -> None:
        try:
            sent = self.dst.send(self.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.owner.half_error(self, False)
            return
        self.pending = self.pending[sent:]
        if self.pending:
            return
        self.owner.activity(self)
        self.owner.loop.remove_writer(self.dstfd)
        if self.eof:
            self._shutdown()
        else:
            self.reading = True
            self.owner.loop.add_reader(self.srcfd, self._on_readable)

    def _shutdown(self) -> None:
        if self.pending:
            return
        with contextlib.suppress(OSError):
            self.dst.shutdown(socket.SHUT_WR)
        self.shut = True
        self.owner.half_done(self)


BUFFER = bytearray(65536)
VIEW = memoryview(BUFFER)


def set_buffer_size(size: int) -> None:
    """Sizes the shared read buffer (tune.bufsize, at least 16 KiB)."""
    global BUFFER, VIEW
    BUFFER = bytearray(max(size, 16384))
    VIEW = memoryview(BUFFER)
