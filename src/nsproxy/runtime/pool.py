"""Idle server connections shared between client connections (`http-reuse`).

A server connection whose exchange ended with both sides willing to go on stays with its
client connection for that client's next request; when the client goes, the connection
moves here, keyed by server and namespace, for any client the backend's `http-reuse` allows:
`safe` (HAProxy's default) only for a client's second and later requests, `aggressive` and
`always` for first requests too, `never` not at all. An idle connection that the server
closes or writes to is dropped at once.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING

from nsproxy.proto.h1.reader import ResponseReader
from nsproxy.runtime import poller
from nsproxy.runtime.conn import Connection

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Server
    from nsproxy.runtime.poller import Poller

Key = tuple["Server", object]  # the server, the namespace its connection lives in
MAX_IDLE_PER_SERVER = 64


def may_share(reuse: str, first_request: bool) -> bool:
    """Whether a request may take a connection another client left (`http-reuse`)."""
    if reuse == "never":
        return False
    return not first_request or reuse in ("aggressive", "always")


class IdlePool:
    """Idle server connections with the reader that parses their next response."""

    __slots__ = ("conns", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.conns: dict[Key, collections.deque[tuple[Connection, ResponseReader]]] = {}

    @property
    def poller(self) -> Poller:
        return poller.get(self.loop)

    def put(self, srv: Server, conn: Connection, reader: ResponseReader) -> None:
        """Keeps `conn` for another client (or closes it when the server has enough, or is
        deleted)."""
        queue = self.conns.setdefault((srv, conn.netns), collections.deque())
        if len(queue) >= MAX_IDLE_PER_SERVER or srv.deleted:
            self._close(conn)
            return
        queue.append((conn, reader))

        def spoke(_ev: int = 0) -> None:  # closed or wrote while idle: not reusable
            if (conn, reader) in queue:
                queue.remove((conn, reader))
            self._close(conn)

        self.poller.set_reader(conn.fd, spoke)

    def take(self, srv: Server, netns: object) -> tuple[Connection, ResponseReader] | None:
        queue = self.conns.get((srv, netns))
        if not queue:
            return None
        conn, reader = queue.pop()
        self.poller.clear_reader(conn.fd)
        return conn, reader

    def drop(self, srv: Server) -> None:
        """Closes the idle connections kept for `srv` (maintenance, `del server`, a new address)."""
        for key in [k for k in self.conns if k[0] is srv]:
            for conn, _ in self.conns.pop(key):
                self._close(conn)

    def _close(self, conn: Connection) -> None:
        self.poller.forget(conn.fd)
        conn.close()

    def close(self) -> None:
        for queue in self.conns.values():
            for conn, _ in queue:
                self._close(conn)
        self.conns.clear()
