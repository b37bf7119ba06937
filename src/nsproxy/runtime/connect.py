"""Server-side sockets: made in the right namespace, bound to the right source, PROXY header."""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

from nsproxy import proxy_protocol as pp
from nsproxy.config.model import SourceCfg
from nsproxy.netns import Namespace, NamespaceRegistry, name_bytes
from nsproxy.tls.fetches import pp2_ssl_tlv

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Server
    from nsproxy.runtime.conn import Addr
    from nsproxy.runtime.process import Runtime
    from nsproxy.runtime.stream import Stream

IP_TRANSPARENT = 19
IP_FREEBIND = 15
IPV6_TRANSPARENT = 75
IPV6_FREEBIND = 78
IP_BIND_ADDRESS_NO_PORT = 24


class SourceBindError(OSError):
    """The kernel refused the `source` bind; `foreign` when it was a usesrc (tproxy) address."""

    def __init__(self, err: int | None, reason: str, foreign: bool) -> None:
        super().__init__(err, reason)
        self.foreign = foreign


def open_socket(
    registry: NamespaceRegistry,
    srv: Server,
    family: int,
    netns: Namespace | None,
    client: Addr = None,
) -> socket.socket:
    """A non-blocking socket for `srv` inside `netns`, bound per its `source` settings.

    `client` is the client's address, for `usesrc client|clientip` (None for health checks).
    """
    # SOCK_NONBLOCK at creation: no ioctl(FIONBIO) per connection
    sock = registry.socket_in(netns, family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            src = srv.cfg.source or srv.backend.cfg.source
            if src is not None:
                bind_source(sock, family, src, client)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_source(sock: socket.socket, family: int, src: SourceCfg, client: Addr) -> None:
    """Applies `source ADDR [usesrc ...] [interface IF]` to an unconnected socket."""
    if src.interface:
        # As HAProxy: a device missing in this namespace or a lacking CAP_NET_RAW is ignored.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, src.interface.encode())
    host, port = src.addr.host, src.addr.port
    transparent = False
    if src.usesrc is not None:
        if src.usesrc in ("client", "clientip") and isinstance(client, tuple):
            host = str(client[0])
            port = int(client[1]) if src.usesrc == "client" else 0
            transparent = True
        elif src.usesrc == "addr" and src.usesrc_addr is not None:
            host, port = src.usesrc_addr.host, src.usesrc_addr.port
            transparent = True
    v6 = family == socket.AF_INET6
    if v6 and ":" not in host:
        host = "::ffff:" + host if host != "0.0.0.0" else "::"
    if not v6 and ":" in host:
        if host.startswith("::ffff:"):
            host = host[7:]
        else:
            raise SourceBindError(97, "source address family does not match the server's", True)
    if transparent:
        _make_transparent(sock, v6)
    # As HAProxy: SO_REUSEADDR (`usesrc client` may meet its own TIME_WAIT), and a foreign
    # bind takes the client's port or the kernel's, never one from the range.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port_range = None if transparent else src.port_range
    try:
        _bind(sock, host, port, port_range)
    except OSError as exc:
        raise SourceBindError(exc.errno, exc.strerror or str(exc), transparent) from None


def _bind(sock: socket.socket, host: str, port: int, port_range: tuple[int, int] | None) -> None:
    if port == 0 and port_range is None:
        if host in ("0.0.0.0", "::"):
            return
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    if port_range is not None and port == 0:
        lo, hi = port_range
        last: OSError | None = None
        for p in range(lo, hi + 1):
            try:
                sock.bind((host, p))
                return
            except OSError as exc:
                last = exc
        raise last or OSError(98, "no free port in source range")
    sock.bind((host, port))


def _make_transparent(sock: socket.socket, v6: bool) -> None:
    """IP(V6)_TRANSPARENT, else FREEBIND; if neither is allowed the foreign bind fails later."""
    options = (
        [(socket.IPPROTO_IPV6, IPV6_TRANSPARENT), (socket.IPPROTO_IPV6, IPV6_FREEBIND)]
        if v6
        else [(socket.IPPROTO_IP, IP_TRANSPARENT), (socket.IPPROTO_IP, IP_FREEBIND)]
    )
    for level, opt in options:
        try:
            sock.setsockopt(level, opt, 1)
            return
        except OSError:
            continue


def proxy_header(rt: Runtime, stream: Stream, srv: Server) -> bytes:
    """The PROXY header `srv` wants, for the addresses and namespace of `stream`."""
    cli = stream.cli
    src = cli.src if isinstance(cli.src, tuple) else None
    dst = cli.local_addr()
    dst = dst if isinstance(dst, tuple) else None
    if src is not None:
        src = (src[0], src[1])
    if dst is not None:
        dst = (dst[0], dst[1])
    if srv.cfg.send_proxy == 1:
        return pp.encode_v1(src, dst)
    opts = srv.cfg.pp2_options
    tlvs: list[pp.Tlv] = []
    if "authority" in opts and cli.authority:
        tlvs.append(pp.Tlv(pp.TlvType.AUTHORITY, cli.authority))
    if "unique-id" in opts:
        tlvs.append(pp.Tlv(pp.TlvType.UNIQUE_ID, (stream.unique_id or "").encode()))
    if "ssl" in opts:  # the client connection's real handshake (client 0: clear)
        tlvs.append(pp2_ssl_tlv(cli.facts, "cert-cn" in opts, "ssl-cipher" in opts))
    if cli.netns is not None:
        tlvs.append(pp.Tlv(pp.TlvType.NETNS, name_bytes(cli.netns.name)))
    return pp.encode_v2(src, dst, tlvs=tlvs, crc32c="crc32c" in opts)
