"""One epoll set for the relayed sockets, watched by the event loop through a single handle."""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable

# Level-triggered. A socket is added once (EPOLL_CTL_ADD) when someone first waits on it and
# leaves the set by itself when it is closed. Interest is widened at once (one MOD) but
# narrowed lazily: a callback that is cleared costs nothing until the kernel reports the
# unwanted event, and only then is the mask synced (MOD, or DEL when nothing is wanted, since
# a mask of 0 would still report ERR/HUP on every poll). A reader that clears itself while
# it reads waits for the next report too: its read usually drained the socket, and a
# keep-alive client then costs no epoll_ctl per request. Callers that know the event will
# come (EOF stays readable) narrow at once with sync=True.

IN = select.EPOLLIN
OUT = select.EPOLLOUT
ERR = select.EPOLLERR | select.EPOLLHUP
_RD = IN | ERR
_WR = OUT | ERR

Callback = Callable[[int], None]


class _Fd:
    __slots__ = ("alive", "fd", "reader", "reg", "writer")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.reader: Callback | None = None
        self.writer: Callback | None = None
        self.reg = 0  # the mask the kernel has; 0: not in the epoll set
        self.alive = True


class Poller:
    """Per-fd reader/writer callbacks called with the epoll event mask."""

    __slots__ = ("dispatching", "ep", "fds", "loop", "stale")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ep = select.epoll()
        self.fds: dict[int, _Fd] = {}
        self.stale: set[int] = set()
        self.dispatching = False
        loop.add_reader(self.ep.fileno(), self._dispatch)

    def set_reader(self, fd: int, cb: Callback) -> None:
        e = self.fds.get(fd)
        if e is None:
            e = self.fds[fd] = _Fd(fd)
        e.reader = cb
        if not e.reg & IN:
            self._sync(e)

    def set_writer(self, fd: int, cb: Callback) -> None:
        e = self.fds.get(fd)
        if e is None:
            e = self.fds[fd] = _Fd(fd)
        e.writer = cb
        if not e.reg & OUT:
            self._sync(e)

    def clear_reader(self, fd: int, sync: bool = False) -> None:
        e = self.fds.get(fd)
        if e is not None:
            e.reader = None
            if sync:
                self._sync(e)

    def clear_writer(self, fd: int, sync: bool = False) -> None:
        e = self.fds.get(fd)
        if e is not None:
            e.writer = None
            if sync:
                self._sync(e)

    def forget(self, fd: int, unregister: bool = False) -> None:
        """Drops `fd`'s callbacks; call it before closing the fd (unregister: it stays open)."""
        e = self.fds.pop(fd, None)
        if e is None:
            return
        e.alive = False
        e.reader = e.writer = None
        if unregister and e.reg:
            self.ep.unregister(fd)
        if self.dispatching:
            self.stale.add(fd)  # its number may be reused before this batch's events are done

    def close(self) -> None:
        self.loop.remove_reader(self.ep.fileno())
        self.ep.close()
        self.fds.clear()

    def _sync(self, e: _Fd) -> None:
        want = (IN if e.reader is not None else 0) | (OUT if e.writer is not None else 0)
        if want == e.reg:
            return
        if not want:
            self.ep.unregister(e.fd)
        elif e.reg:
            self.ep.modify(e.fd, want)
        else:
            self.ep.register(e.fd, want)
        e.reg = want

    def _dispatch(self) -> None:
        fds, stale = self.fds, self.stale
        self.dispatching = True
        try:
            for fd, ev in self.ep.poll(0):
                if stale and fd in stale:
                    continue
                e = fds.get(fd)
                if e is None:
                    continue
                try:
                    rd0 = e.reader
                    if rd0 is not None and ev & _RD:
                        rd0(ev)
                    wr = e.writer
                    if wr is not None and ev & _WR and e.alive:
                        wr(ev)
                    if e.alive:
                        rd, wr = e.reader, e.writer
                        if (
                            (ev & IN and rd is None and rd0 is None)
                            or (ev & OUT and wr is None)
                            or (ev & ERR and rd is None and wr is None)
                        ):
                            self._sync(e)
                except Exception as exc:  # one stream's bug must not stop the others
                    self.loop.call_exception_handler(
                        {"message": "poller callback failed", "exception": exc}
                    )
        finally:
            self.dispatching = False
            stale.clear()


_CURRENT: Poller | None = None


def get(loop: asyncio.AbstractEventLoop) -> Poller:
    """The poller of `loop` (one per process: the runtime runs one loop)."""
    global _CURRENT
    p = _CURRENT
    if p is None or p.loop is not loop:
        p = _CURRENT = Poller(loop)
    return p
