"""Moves bytes one way between two non-blocking sockets (Half) or two transports, one of them
TLS at least (TlsHalf), with half-close and back-pressure."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nsproxy.runtime.poller import Poller
    from nsproxy.runtime.xprt_tls import RawTransport, TlsTransport

    Transport = TlsTransport | RawTransport

_SPLICE_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
_RETRY = (BlockingIOError, InterruptedError)
_READS_PER_WAKEUP = 4  # a full buffer likely means more is waiting: saves event-loop turns


class Owner(Protocol):
    """What a relay half reports to: its mux."""

    poller: Poller

    def half_done(self, half: AnyHalf) -> None: ...

    def half_error(self, half: AnyHalf, on_read: bool) -> None: ...

    def activity(self, half: AnyHalf) -> None: ...


class PipePool:
    """Pipes for splice(2), reused across connections; at most `limit` in use (`maxpipes`)."""

    __slots__ = ("free", "limit", "size", "used")

    def __init__(self, limit: int, size: int) -> None:
        self.free: list[tuple[int, int]] = []
        self.limit = limit
        self.size = size
        self.used = 0

    def get(self) -> tuple[int, int] | None:
        if self.free:
            self.used += 1
            return self.free.pop()
        if self.used >= self.limit:
            return None
        try:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            self.size = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, self.size)
        except OSError:
            self.size = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
        self.used += 1
        return r, w

    def put(self, pipe: tuple[int, int], empty: bool) -> None:
        """Takes a pipe back; one still holding bytes is closed instead of reused."""
        self.used -= 1
        if empty and len(self.free) < self.limit:
            self.free.append(pipe)
        else:
            os.close(pipe[0])
            os.close(pipe[1])

    def close(self) -> None:
        for r, w in self.free:
            os.close(r)
            os.close(w)
        self.free.clear()


class Half:
    """One direction of a relay: reads `src`, writes `dst`; a FIN on `src` becomes shutdown(dst).

    Reads go through one buffer shared by every relay of the process (callbacks never run
    concurrently); only bytes the peer could not take at once are copied out. With `splice`,
    the first read that fills that buffer takes a pipe from the pool and later bytes move
    socket -> pipe -> socket inside the kernel; bytes left in the pipe are the pending bytes.
    """

    __slots__ = (
        "dst",
        "dstfd",
        "eof",
        "inpipe",
        "nbytes",
        "owner",
        "peer",
        "pending",
        "pipe",
        "reading",
        "shut",
        "splice",
        "src",
        "srcfd",
    )

    def __init__(
        self,
        owner: Owner,
        src: socket.socket,
        dst: socket.socket,
        pending: bytes,
        splice: bool = False,
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
        self.splice = splice
        self.pipe: tuple[int, int] | None = None
        self.inpipe = 0
        self.peer: AnyHalf | None = None

    writing = False

    @staticmethod
    def link(a: AnyHalf, b: AnyHalf) -> None:
        """Makes `a` and `b` the two directions of one stream."""
        a.peer, b.peer = b, a

    def start(self) -> None:
        if self.pending:
            self.owner.poller.set_writer(self.dstfd, self._on_writable)
        else:
            self.reading = True
            self.owner.poller.set_reader(self.srcfd, self._on_readable)

    def stop(self) -> None:
        """Drops the callbacks; the owner then forgets both fds in its poller and closes them."""
        self.peer = None
        poller = self.owner.poller
        if self.reading:
            poller.clear_reader(self.srcfd)
            self.reading = False
        if self.pending or self.inpipe:
            poller.clear_writer(self.dstfd)
            self.pending = b""
        if self.pipe is not None:
            PIPES.put(self.pipe, not self.inpipe)
            self.pipe = None
            self.inpipe = 0

    def _on_readable(self, _ev: int = 0) -> None:
        if self.pipe is not None:
            self._splice_in()
            return
        for _ in range(_READS_PER_WAKEUP):
            try:
                n = self.src.recv_into(BUFFER)
            except _RETRY:
                return
            except OSError:
                self.owner.half_error(self, True)
                return
            if n == 0:
                self._at_eof()
                return
            self.nbytes += n
            self.owner.activity(self)
            try:
                sent = self.dst.send(VIEW[:n])
            except _RETRY:
                sent = 0
            except OSError:
                self.owner.half_error(self, False)
                return
            if sent < n:
                self.pending = bytes(VIEW[sent:n])
                self._wait_writable()
            if n < len(BUFFER) or sent < n:
                return
            if self.splice:
                self.pipe = PIPES.get()
                self.splice = self.pipe is not None
                return

    def _splice_in(self) -> None:
        assert self.pipe is not None
        try:
            n = os.splice(self.srcfd, self.pipe[1], PIPES.size, flags=_SPLICE_FLAGS)
        except _RETRY:
            return
        except OSError:
            self.owner.half_error(self, True)
            return
        if n == 0:
            self._at_eof()
            return
        self.nbytes += n
        self.inpipe = n
        self.owner.activity(self)
        if not self._splice_out() and self.pipe is not None:
            self._wait_writable()

    def _splice_out(self) -> bool:
        """Moves pipe bytes to `dst`; True once the pipe is empty (False: some remain, or error)."""
        assert self.pipe is not None
        try:
            while self.inpipe:
                self.inpipe -= os.splice(self.pipe[0], self.dstfd, self.inpipe, flags=_SPLICE_FLAGS)
        except _RETRY:
            return False
        except OSError:
            self.owner.half_error(self, False)
            return False
        return True

    def _wait_writable(self) -> None:
        poller = self.owner.poller
        poller.clear_reader(self.srcfd)
        self.reading = False
        poller.set_writer(self.dstfd, self._on_writable)

    def _on_writable(self, _ev: int = 0) -> None:
        if self.inpipe:
            if not self._splice_out():
                return
        else:
            try:
                sent = self.dst.send(self.pending)
            except _RETRY:
                return
            except OSError:
                self.owner.half_error(self, False)
                return
            self.pending = self.pending[sent:]
            if self.pending:
                return
        self.owner.activity(self)
        poller = self.owner.poller
        if self.eof:
            poller.clear_writer(self.dstfd)
            self._shutdown()
        else:
            self.reading = True
            poller.set_reader(self.srcfd, self._on_readable)
            poller.clear_writer(self.dstfd, sync=True)

    def _at_eof(self) -> None:
        # EOF stays readable: narrow the epoll mask now unless the stream is about to close
        peer = self.peer
        self.owner.poller.clear_reader(self.srcfd, sync=peer is not None and not peer.shut)
        self.reading = False
        self.eof = True
        self._shutdown()

    def _shutdown(self) -> None:
        if self.pending or self.inpipe:
            return
        if self.peer is None or not self.peer.shut:
            # (when both ways are done the owner closes at once, and close sends the FIN)
            with contextlib.suppress(OSError):
                self.dst.shutdown(socket.SHUT_WR)
        self.shut = True
        if self.pipe is not None:
            PIPES.put(self.pipe, True)
            self.pipe = None
        self.owner.half_done(self)


class TlsHalf:
    """One direction of a relay where a side is TLS: reads and writes go through transports.

    The three rules of a transport: after a send, ciphertext may wait inside the transport
    (`want_write`): wait for the socket to be writable and `flush()` before reading more;
    after a read, plaintext may wait inside OpenSSL (`pending()`) where epoll cannot see it:
    read again without waiting; and the owner closes through the transport. No splice.
    """

    __slots__ = (
        "dst",
        "dstfd",
        "eof",
        "nbytes",
        "owner",
        "peer",
        "pending",
        "reading",
        "shut",
        "src",
        "srcfd",
        "writing",
    )

    splice = False
    inpipe = 0

    def __init__(self, owner: Owner, src: Transport, dst: Transport, pending: bytes) -> None:
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
        self.writing = False
        self.peer: AnyHalf | None = None

    def start(self) -> None:
        if self.pending:
            self._wait_writable()
        else:
            self._resume_reading()

    def stop(self) -> None:
        self.peer = None
        poller = self.owner.poller
        if self.reading:
            poller.clear_reader(self.srcfd)
            self.reading = False
        if self.writing:
            poller.clear_writer(self.dstfd)
            self.writing = False
        self.pending = b""

    def _resume_reading(self) -> None:
        self.reading = True
        self.owner.poller.set_reader(self.srcfd, self._on_readable)
        if self.src.pending():  # plaintext epoll will not announce
            self.owner.poller.loop.call_soon(self._again)

    def _again(self) -> None:
        if self.reading:
            self._on_readable()

    def _on_readable(self, _ev: int = 0) -> None:
        src, dst = self.src, self.dst
        for _ in range(_READS_PER_WAKEUP):
            try:
                n = src.recv_into(BUFFER)
            except _RETRY:
                self._answer_peer()
                return
            except OSError:
                self.owner.half_error(self, True)
                return
            if n == 0:
                self._at_eof()
                return
            self.nbytes += n
            self.owner.activity(self)
            try:
                sent = dst.send(VIEW[:n])
            except _RETRY:
                sent = 0
            except OSError:
                self.owner.half_error(self, False)
                return
            if sent < n or dst.want_write:
                self.pending = bytes(VIEW[sent:n])
                self._wait_writable()
                return
        self._answer_peer()
        if src.pending():
            self.owner.poller.loop.call_soon(self._again)

    def _answer_peer(self) -> None:
        """A read may have made the source's TLS layer write (a KeyUpdate answer): the other
        direction, which writes to that socket, flushes it."""
        peer = self.peer
        if self.src.want_write and isinstance(peer, TlsHalf) and not peer.writing and not peer.shut:
            peer._wait_writable()

    def _wait_writable(self) -> None:
        poller = self.owner.poller
        if self.reading:
            poller.clear_reader(self.srcfd)
            self.reading = False
        self.writing = True
        poller.set_writer(self.dstfd, self._on_writable)

    def _on_writable(self, _ev: int = 0) -> None:
        dst = self.dst
        try:
            if dst.want_write and not dst.flush():
                return
            if self.pending:
                try:
                    sent = dst.send(self.pending)
                except _RETRY:
                    return
                self.pending = self.pending[sent:]
                if self.pending or dst.want_write:
                    return
        except OSError:
            self.owner.half_error(self, False)
            return
        self.owner.activity(self)
        self.writing = False
        poller = self.owner.poller
        poller.clear_writer(self.dstfd, sync=True)
        if self.eof:
            self._shutdown()
        else:
            self._resume_reading()

    def _at_eof(self) -> None:
        peer = self.peer
        self.owner.poller.clear_reader(self.srcfd, sync=peer is not None and not peer.shut)
        self.reading = False
        self.eof = True
        self._shutdown()

    def _shutdown(self) -> None:
        if self.pending or self.dst.want_write:
            if not self.writing:
                self._wait_writable()
            return
        self.dst.shutdown()  # close_notify, then FIN
        self.shut = True
        self.owner.half_done(self)


AnyHalf = Half | TlsHalf

BUFFER = bytearray(65536)
VIEW = memoryview(BUFFER)
PIPES = PipePool(0, 1 << 18)


def set_buffer_size(size: int) -> None:
    """Sizes the shared read buffer (tune.bufsize, at least 16 KiB)."""
    global BUFFER, VIEW
    BUFFER = bytearray(max(size, 16384))
    VIEW = memoryview(BUFFER)


def set_pipes(limit: int, size: int = 1 << 18) -> None:
    """Sets how many splice pipes may be in use at once and their kernel buffer size."""
    global PIPES
    PIPES.close()
    PIPES = PipePool(limit, size)
