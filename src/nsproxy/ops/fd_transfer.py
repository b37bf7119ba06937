"""Listening sockets handed from an old process to a new one (HAProxy's `_getsocks` and -x).

Wire format, as HAProxy 2.6: the old process sends the socket count as a native int, then
batches of at most 253 fds (SCM_RIGHTS), each fd described in the data by
<ns_len:u8><ns_name><if_len:u8><if_name><4 zero bytes>; after each full batch it waits for a
4-byte acknowledgement.
"""

from __future__ import annotations

import array
import contextlib
import ipaddress
import socket
import struct
from typing import TYPE_CHECKING

from nsproxy.netns import name_bytes
from nsproxy.ops import log

if TYPE_CHECKING:
    from nsproxy.runtime.listener import Listener
    from nsproxy.runtime.process import Runtime

MAX_SEND_FD = 253
_INT = struct.Struct("=i")


def _record(li: Listener) -> bytes:
    ns = name_bytes(li.netns.name if li.netns is not None else "")[:255]
    ifname = (li.bind.interface or "").encode()[:255]
    return bytes([len(ns)]) + ns + bytes([len(ifname)]) + ifname + b"\0\0\0\0"


def send_listeners(rt: Runtime, sock: socket.socket) -> None:
    """Sends every open listener of `rt` on the connected UNIX socket `sock`."""
    listeners = [li for li in rt.listeners if li.sock is not None]
    if not listeners:
        return
    sock.settimeout(1.0)
    try:
        sock.sendall(_INT.pack(len(listeners)))
        for start in range(0, len(listeners), MAX_SEND_FD):
            batch = listeners[start : start + MAX_SEND_FD]
            data = b"".join(_record(li) for li in batch)
            fds = [li.sock.fileno() for li in batch if li.sock is not None]
            socket.send_fds(sock, [data], fds)
            if len(batch) == MAX_SEND_FD:
                sock.recv(_INT.size)
        rt.fds_exported = True
    finally:
        sock.setblocking(False)


def fetch_listeners(path: str, timeout: float = 5.0) -> list[tuple[str, str, socket.socket]]:
    """Asks the process behind the stats socket `path` for its listening sockets.

    Returns (namespace name, interface name, socket) for each; raises OSError on failure.
    """
    out: list[tuple[str, str, socket.socket]] = []
    fds: list[int] = []
    data = bytearray()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"_getsocks\n")
        head = bytearray()
        while len(head) < _INT.size:
            chunk = s.recv(_INT.size - len(head))
            if not chunk:
                raise OSError("the old process sent no socket (is 'expose-fd listeners' set?)")
            head += chunk
        (count,) = _INT.unpack(head)
        try:
            while len(fds) < count:
                msg, anc, _flags, _addr = s.recvmsg(
                    65536, socket.CMSG_SPACE(MAX_SEND_FD * 4), socket.MSG_CMSG_CLOEXEC
                )
                got = 0
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        arr = array.array("i")
                        arr.frombytes(payload[: len(payload) - len(payload) % arr.itemsize])
                        fds.extend(arr)
                        got += len(arr)
                if not msg and not got:
                    raise OSError(f"the old process sent {len(fds)} of {count} sockets")
                data += msg
                if got and len(fds) % MAX_SEND_FD == 0:
                    s.sendall(_INT.pack(0))
        except BaseException:
            for fd in fds:
                with contextlib.suppress(OSError):
                    socket.close(fd)
            raise
    pos = 0
    for fd in fds:
        ns, pos = _field(data, pos)
        ifname, pos = _field(data, pos)
        pos += 4
        out.append((ns, ifname, socket.socket(fileno=fd)))
    return out


def _field(data: bytearray, pos: int) -> tuple[str, int]:
    n = data[pos] if pos < len(data) else 0
    return bytes(data[pos + 1 : pos + 1 + n]).decode("utf-8", "surrogateescape"), pos + 1 + n


def addr_key(family: int, addr: object) -> tuple[object, ...] | None:
    """What identifies a bound address across processes: (path,) or (host, port)."""
    if family == socket.AF_UNIX:
        return (addr.decode() if isinstance(addr, bytes) else str(addr),)
    if not isinstance(addr, tuple) or len(addr) < 2:
        return None
    try:
        host = str(ipaddress.ip_address(str(addr[0]).split("%")[0]))
    except ValueError:
        return None
    return (host, int(addr[1]))


def adopt(rt: Runtime, path: str) -> dict[Listener, socket.socket]:
    """The sockets of the old process that match this configuration's listeners.

    A socket matches a listener with the same namespace, family and bound address; sockets
    that match nothing are closed (the old process closes its own copy when it stops).
    """
    try:
        got = fetch_listeners(path)
    except OSError as exc:
        log.warning(f"Failed to get the sockets from the old process! ({exc})")
        return {}
    wanted: dict[tuple[object, ...], Listener] = {}
    for lst in rt.listeners:
        key = addr_key(lst.addr.family, lst.addr.sockaddr())
        if key is not None:
            wanted[(lst.netns.name if lst.netns else "", lst.addr.family, *key)] = lst
    adopted: dict[Listener, socket.socket] = {}
    for ns, _ifname, sock in got:
        li: Listener | None = None
        try:
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            key = addr_key(sock.family, sock.getsockname())
            if listening and sock.type == socket.SOCK_STREAM and key is not None:
                li = wanted.pop((ns, sock.family, *key), None)
        except OSError:
            li = None
        if li is None:
            sock.close()
        else:
            adopted[li] = sock
    return adopted
