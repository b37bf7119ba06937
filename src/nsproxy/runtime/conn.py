"""One end of a stream: socket, addresses, namespace, and what a PROXY header said."""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

from nsproxy.netns import Namespace
from nsproxy.runtime.xprt_tls import RawTransport, TlsTransport

if TYPE_CHECKING:
    from nsproxy.tls.contexts import SessionCache
    from nsproxy.tls.fetches import HandshakeFacts

Addr = tuple[str, int] | tuple[str, int, int, int] | str | bytes | None


class Connection:
    """A client or server connection.

    For a client connection `src` is the peer and `dst` the local address it reached (both
    replaced by a PROXY header's); for a server connection `dst` is the address connected to
    and `src` the local address, read once before close for the logs. `tls` is the TLS
    transport once a handshake started on the socket (None: the socket is the transport);
    `facts` what the finished handshake established; `sessions` the server's session cache
    (a server connection keeps its session there when it closes).
    """

    __slots__ = (
        "authority",
        "dst",
        "facts",
        "fd",
        "hs_ms",
        "netns",
        "private",
        "proxied",
        "sessions",
        "sock",
        "src",
        "tls",
        "unique_id",
    )

    def __init__(self, sock: socket.socket, src: Addr, dst: Addr, netns: Namespace | None) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.src = src
        self.dst = dst
        self.netns = netns
        self.proxied = False
        # a server connection that carries one client's PROXY header: that client's alone
        # (never pooled for others, the header never sent again), as HAProxy's private ones
        self.private = False
        self.authority: bytes | None = None
        self.unique_id: bytes | None = None
        self.tls: TlsTransport | None = None
        self.facts: HandshakeFacts | None = None
        self.sessions: SessionCache | None = None
        self.hs_ms = 0  # the TLS handshake's end, in ms after the accept (%Th)

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

    def transport(self) -> TlsTransport | RawTransport:
        """What reads and writes go through: the TLS transport, else the socket wrapped."""
        tls = self.tls
        return tls if tls is not None else RawTransport(self.sock)

    def close(self) -> None:
        """Closes the socket, through the TLS transport when there is one (it keeps the
        session resumable; a server connection's session is kept for the next connection)."""
        tls = self.tls
        if tls is None:
            self.sock.close()
            return
        if self.sessions is not None and tls.done:
            self.sessions.keep(tls.obj)
        tls.close()
