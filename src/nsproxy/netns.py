"""The namespace registry: the only code that enters other network namespaces."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/var/run/netns"
_NAME_MAX = 255


class NetnsError(OSError):
    """A namespace that cannot be opened or entered."""


def _libc_setns() -> Callable[[int, int], None]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    raw = libc.setns
    raw.argtypes = (ctypes.c_int, ctypes.c_int)
    raw.restype = ctypes.c_int

    def setns(fd: int, nstype: int) -> None:
        if raw(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return setns


_setns: Callable[[int, int], None] = getattr(os, "setns", None) or _libc_setns()


def name_bytes(name: str) -> bytes:
    """A namespace name as the file name's bytes: names are any bytes but '/' and NUL, and
    are carried in str with surrogateescape (as os.listdir gives them)."""
    return name.encode("utf-8", "surrogateescape")


def check_name(name: str) -> str | None:
    """Why `name` cannot be a namespace file name under /var/run/netns, or None if it can."""
    if not name:
        return "empty namespace name"
    if "/" in name or "\0" in name or name in (".", ".."):
        return f"invalid namespace name '{name}'"
    if len(name.encode("utf-8", "surrogateescape")) > _NAME_MAX:
        return f"namespace name '{name[:32]}...' is longer than {_NAME_MAX} bytes"
    return None


@dataclass(eq=False, slots=True)
class Namespace:
    """An open network namespace: its name, the fd that keeps it alive, its inode."""

    name: str
    fd: int
    inode: int
    conns: int = 0
    total_conns: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    errors: int = 0
    maxconn: int = 0


@dataclass(slots=True)
class NamespaceRegistry:
    """Name → open namespace. Opens each namespace once and creates sockets inside them."""

    run_dir: str = NETNS_RUN_DIR
    _by_name: dict[str, Namespace] = field(default_factory=dict)
    _by_bytes: dict[bytes, Namespace] = field(default_factory=dict)
    _retired: dict[str, Namespace] = field(default_factory=dict)
    _home_fd: int = -1
    _dir_fd: int = -1  # run_dir, opened before a chroot hides it

    def _open_at(self, name: str, flags: int) -> int:
        if self._dir_fd >= 0:
            return os.open(name, flags, dir_fd=self._dir_fd)
        return os.open(self.path(name), flags)

    def _stat(self, name: str) -> os.stat_result:
        if self._dir_fd >= 0:
            return os.stat(name, dir_fd=self._dir_fd)
        return os.stat(self.path(name))

    def path(self, name: str) -> str:
        return os.path.join(self.run_dir, name)

    def exists(self, name: str) -> bool:
        if check_name(name) is not None:
            return False
        try:
            self._stat(name)
        except OSError:
            return False
        return True

    def open(self, name: str) -> Namespace:
        """The namespace called `name`, opened now if it was not yet."""
        ns = self._by_name.get(name)
        if ns is not None:
            return ns
        why = check_name(name)
        if why is not None:
            raise NetnsError(errno.EINVAL, why)
        try:
            fd = self._open_at(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NetnsError(exc.errno, f"Cannot open namespace '{name}'.") from exc
        ns = self._retired.pop(name, None)
        if ns is None:
            ns = Namespace(name, fd, os.fstat(fd).st_ino)
        else:
            # the same name again: its counters go on where the deleted namespace left them
            ns.fd, ns.inode = fd, os.fstat(fd).st_ino
        self._by_name[name] = ns
        self._by_bytes[name_bytes(name)] = ns
        return ns

    def get(self, name: str) -> Namespace | None:
        return self._by_name.get(name)

    def state(self, ns: Namespace) -> str:
        """'present', 'deleted' (gone from the run directory) or 'replaced' (another inode)."""
        try:
            inode = self._stat(ns.name).st_ino
        except OSError:
            return "deleted"
        return "present" if inode == ns.inode else "replaced"

    def lookup(self, raw: bytes) -> Namespace | None:
        """The namespace whose name is exactly `raw` (a PROXY v2 NETNS TLV value), if open."""
        return self._by_bytes.get(raw)

    def __iter__(self) -> Iterator[Namespace]:
        """The open namespaces, then the closed ones whose counters are kept (`retire`)."""
        yield from self._by_name.values()
        yield from self._retired.values()

    def retire(self, name: str) -> None:
        """Closes NAME's fd but keeps its counters (listed, state 'deleted') until `forget`."""
        ns = self._by_name.get(name)
        self.close(name)
        if ns is not None:
            self._retired[name] = ns

    def forget(self, name: str) -> bool:
        """Drops the kept counters of a retired namespace; whether there were any."""
        return self._retired.pop(name, None) is not None

    def __len__(self) -> int:
        return len(self._by_name)

    def open_home(self) -> None:
        """Opens the namespace nsproxy started in, to come back to, and the run directory
        (early: before a chroot, so that `add netns` and `show netns` work inside it)."""
        if self._home_fd < 0:
            self._home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if self._dir_fd < 0:
            with contextlib.suppress(OSError):  # created later by `ip netns add`: paths then
                self._dir_fd = os.open(self.run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def socket_in(
        self, ns: Namespace | None, family: int, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        """A new socket created inside `ns` (None: the namespace nsproxy was started in).

        The calling thread enters `ns`, creates the socket and returns home before anything
        else can run on it; if it cannot return home the socket is closed and the call fails.
        """
        if ns is None:
            return socket.socket(family, type, proto)
        self.open_home()
        try:
            _setns(ns.fd, CLONE_NEWNET)
        except OSError as exc:
            raise NetnsError(
                exc.errno, f"Cannot enter namespace '{ns.name}': {exc.strerror}"
            ) from exc
        try:
            sock = socket.socket(family, type, proto)
        except BaseException:
            _setns(self._home_fd, CLONE_NEWNET)
            raise
        try:
            _setns(self._home_fd, CLONE_NEWNET)
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self, name: str | None = None) -> None:
        """Closes one namespace's fd (or every fd, with no name)."""
        names = [name] if name is not None else list(self._by_name)
        for n in names:
            ns = self._by_name.pop(n, None)
            if ns is not None:
                self._by_bytes.pop(name_bytes(n), None)
                os.close(ns.fd)
                ns.fd = -1
        if name is None:
            self._retired.clear()
        if name is None and self._home_fd >= 0:
            os.close(self._home_fd)
            self._home_fd = -1
        if name is None and self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1
