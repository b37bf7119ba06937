"""One end of a stream: socket, addresses, namespace, and what a PROXY header said."""

from __future__ import annotations

import contextlib
import socket

from nsproxy.netns import Namespace

Addr = tuple[str, int] | tuple[str, int, int, int] | str | bytes | None


class Connection:
    """A client or server connection.

    For a client connection `src` is the peer and `dst` the local address it reached (both
    replaced by a PROXY header's); for a server connection `dst` is the address connected to
    and `src` the local address, read once before close for the logs. The transport is the raw
    socket; a TLS transport will sit in front of it here.
    """

    __slots__ = ("authority", "dst", "fd", "netns", "proxied", "sock", "src", "unique_id")

    def __init__(self, sock: socket.socket, src: Addr, dst: Addr, netns: Namespace | None) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.src = src
        self.dst = dst
        self.netns = netns
        self.proxied = False
        self.authority: bytes | None = None
        self.unique_id: bytes | None = None

    def local_addr(self) -> Addr:
        """The client connection's destination: the PROXY header's, else the socket's own."""
        if self.dst is None:
            try:
                self.dst = self.sock.getsockname()
            except OSError:
                self.dst = None
        return self.dst

    def read_local(self) -> None:
        """Keeps a server connection's local address (`%bi`/`%bp`) before the socket closes."""
        with contextlib.suppress(OSError):
            self.src = self.sock.getsockname()
