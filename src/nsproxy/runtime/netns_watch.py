"""Follows /var/run/netns with inotify: pattern mode, and logs for namespaces removed under us."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import errno
import fnmatch
import os
import struct
from typing import TYPE_CHECKING

from nsproxy.config.model import BindCfg, NamespacePattern
from nsproxy.netns import check_name
from nsproxy.ops import log
from nsproxy.runtime import dynamic
from nsproxy.runtime.bind_wait import BindWait, needs_scope

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")
# `ip netns add` creates the file, then bind-mounts the namespace on it: no inotify event
# marks the mount, so a new file is re-checked a bounded number of times.
_MOUNT_RETRIES = 100
_MOUNT_DELAY = 0.01


def _inotify_fd(path: str, mask: int) -> int:
    """A non-blocking inotify fd watching the entries of directory `path`."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.inotify_init1.argtypes = (ctypes.c_int,)
    libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
    fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"inotify_init1: {os.strerror(err)}")
    if int(libc.inotify_add_watch(fd, os.fsencode(path), mask)) < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")
    return fd


class NetnsWatch:
    """Keeps one set of template listeners per namespace whose name matches a pattern."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.dir = rt.registry.run_dir
        self.patterns = rt.config.namespace_patterns
        self.fd = -1
        self.active: dict[str, int] = {}
        self.waits: dict[str, BindWait] = {}
        self._nsfs_dev = os.stat("/proc/self/ns/net").st_dev

    def matching(self, name: str) -> list[NamespacePattern]:
        """The patterns namespace `name` matches."""
        return [p for p in self.patterns if fnmatch.fnmatchcase(name, p.glob)]

    def matches(self, name: str) -> list[str]:
        """The template frontends to instantiate in namespace `name`."""
        return [p.template for p in self.matching(name)]

    def start(self) -> None:
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF
        self.fd = _inotify_fd(self.dir, mask)
        self.rt.loop.add_reader(self.fd, self._on_events)
        self._rescan()

    def stop(self) -> None:
        for wait in list(self.waits.values()):
            wait.close()
        self.waits.clear()
        if self.fd >= 0:
            self.rt.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1

    def _rescan(self) -> None:
        """Brings the listeners in line with the directory (at start and after an overflow)."""
        present = set(os.listdir(self.dir))
        for name in list(self.active):
            if name not in present:
                self.release(name)
        for name in sorted(present):
            self.appeared(name)

    def _on_events(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        off = 0
        while off + _EVENT.size <= len(data):
            _wd, mask, _cookie, size = _EVENT.unpack_from(data, off)
            raw = data[off + _EVENT.size : off + _EVENT.size + size]
            off += _EVENT.size + size
            name = raw.rstrip(b"\0").decode("utf-8", "surrogateescape")
            if mask & IN_Q_OVERFLOW:
                self._rescan()
            elif mask & IN_DELETE_SELF:
                for gone in list(self.active):
                    self.release(gone)
            elif mask & (IN_DELETE | IN_MOVED_FROM):
                self._removed_unmanaged(name)
                self.release(name)
            elif mask & (IN_CREATE | IN_MOVED_TO):
                self.appeared(name)

    def _removed_unmanaged(self, name: str) -> None:
        """A configured namespace left /var/run/netns: its fd keeps it alive, say so once."""
        ns = self.rt.registry.get(name)
        if ns is None or name in self.active:
            return
        log.warning(
            f"Namespace '{name}' was removed from {self.dir}; nsproxy keeps using it (its open "
            f"fd keeps it alive) with {ns.conns} connection(s) until a reload or 'del netns'."
        )

    def _inode(self, name: str) -> int | None:
        """The namespace inode mounted at NAME, or None while it is not (yet) a namespace."""
        try:
            st = os.stat(os.path.join(self.dir, name))
        except OSError:
            return None
        return st.st_ino if st.st_dev == self._nsfs_dev else None

    def appeared(self, name: str, tries: int = _MOUNT_RETRIES) -> None:
        """Opens the templates' binds in namespace NAME once it is mounted (or re-created)."""
        if self.fd < 0 or self.rt.stopping or check_name(name) or not self.matches(name):
            return
        inode = self._inode(name)
        if inode is None:
            if tries > 0 and os.path.exists(os.path.join(self.dir, name)):
                self.rt.loop.call_later(_MOUNT_DELAY, self.appeared, name, tries - 1)
            return
        if self.active.get(name) == inode:
            return
        if name in self.active:
            self.release(name)
        try:
            ns = self.rt.registry.open(name)
            if ns.inode != inode:
                # the registry held a namespace by this name from before: re-open it
                dynamic.del_netns(self.rt, name, keep_counters=True)
                ns = self.rt.registry.open(name)
            limits = [p.maxconn for p in self.matching(name) if p.maxconn]
            ns.maxconn = min(limits, default=0)
            pending: list[tuple[str, BindCfg]] = []
            for template in self.matches(name):
                for bind in self.rt.frontends[template].cfg.binds:
                    for addr in bind.addrs:
                        one = dataclasses.replace(bind, addrs=(addr,))
                        if needs_scope(one) or not self._bind(name, template, one):
                            pending.append((template, one))
            if pending:
                wait = BindWait(self.rt, ns, pending, self._waited)
                wait.start()
                self.waits[name] = wait
        except (OSError, dynamic.DynamicError) as exc:
            log.alert(f"namespace-pattern: cannot serve namespace '{name}': {exc}")
            self.active[name] = -1
            self.release(name)
            return
        self.active[name] = ns.inode
        log.notice(f"Namespace '{name}' added: listening for {', '.join(self.matches(name))}.")

    def _bind(self, name: str, template: str, bind: BindCfg) -> bool:
        """Opens one address of a template bind in NAME; False while the address is missing."""
        try:
            dynamic.add_bind(self.rt, template, "", name, template=bind)
        except dynamic.DynamicError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return False
            raise
        return True

    def _waited(self, wait: BindWait) -> None:
        if self.waits.get(wait.ns.name) is wait:
            del self.waits[wait.ns.name]

    def release(self, name: str) -> None:
        """Closes NAME's listeners and its fd; its established connections finish on their own.

        Its counters stay listed (`show netns`, metrics) until `del netns NAME` or until a
        namespace of the same name comes back and carries them on.
        """
        wait = self.waits.pop(name, None)
        if wait is not None:
            wait.close()
        if self.active.pop(name, None) is None or self.rt.registry.get(name) is None:
            return
        try:
            dynamic.del_netns(self.rt, name, keep_counters=True)
        except dynamic.DynamicError as exc:
            log.warning(f"namespace-pattern: namespace '{name}' kept: {exc}")
            return
        log.notice(f"Namespace '{name}' removed.")
