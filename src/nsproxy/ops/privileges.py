"""After binding: chroot, then leave root keeping only the capabilities the running proxy needs."""

from __future__ import annotations

import ctypes
import ctypes.util
import grp
import os
import pwd
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nsproxy.config.model import Config, SourceCfg
    from nsproxy.runtime.process import Runtime

CAP_SETPCAP = 8
CAP_NET_BIND_SERVICE = 10
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_SYS_ADMIN = 21
CAP_NAMES = {
    CAP_NET_BIND_SERVICE: "cap_net_bind_service",
    CAP_NET_ADMIN: "cap_net_admin",
    CAP_NET_RAW: "cap_net_raw",
    CAP_SYS_ADMIN: "cap_sys_admin",
}
_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_DROP = 24
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def _capset(caps: frozenset[int]) -> None:
    """Sets the permitted and effective sets of this thread to exactly `caps`."""
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    for cap in caps:
        bit = 1 << (cap % 32)
        data[cap // 32].effective |= bit
        data[cap // 32].permitted |= bit
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def _low_port(src: SourceCfg | None) -> bool:
    if src is None:
        return False
    if src.usesrc == "client":
        return True  # the client's own port, whatever it is
    ports = [src.addr.port]
    if src.port_range is not None:
        ports.append(src.port_range[0])
    if src.usesrc_addr is not None:
        ports.append(src.usesrc_addr.port)
    return any(0 < p < 1024 for p in ports)


def needed_caps(config: Config, rt: Runtime) -> frozenset[int]:
    """The capabilities the proxy still uses once every listener is bound."""
    caps: set[int] = set()
    namespaced_listener = any(li.netns is not None for li in rt.listeners)
    patterns = bool(getattr(config, "namespace_patterns", ()))
    for be in rt.backends.values():
        bsrc = be.cfg.source
        for srv in be.servers:
            src = srv.cfg.source or bsrc
            if srv.cfg.namespace is not None or (
                srv.cfg.use_client_netns and (namespaced_listener or len(rt.registry) > 0)
            ):
                caps.add(CAP_SYS_ADMIN)  # setns(2) for each server socket
            if src is not None and src.usesrc is not None:
                caps |= {CAP_NET_ADMIN, CAP_NET_RAW}  # IP_TRANSPARENT
            if src is not None and src.interface:
                caps.add(CAP_NET_RAW)  # SO_BINDTODEVICE on kernels before 5.7
            if _low_port(src):
                caps.add(CAP_NET_BIND_SERVICE)
    if patterns:  # listeners are made in namespaces that appear later
        caps.add(CAP_SYS_ADMIN)
        binds = [b for px in config.proxies for b in px.binds]
        if any(0 < a.port < 1024 for b in binds for a in b.addrs):
            caps.add(CAP_NET_BIND_SERVICE)
        if any(b.transparent for b in binds):
            caps |= {CAP_NET_ADMIN, CAP_NET_RAW}
    return frozenset(caps)


def _ids(config: Config) -> tuple[int | None, int | None]:
    g = config.global_
    uid, gid = g.uid, g.gid
    try:
        if g.user is not None:
            uid = pwd.getpwnam(g.user).pw_uid
        if g.group is not None:
            gid = grp.getgrnam(g.group).gr_gid
    except KeyError as exc:
        raise OSError(0, f"Cannot find user or group {exc.args[0]}") from None
    return uid, gid


def drop(config: Config, rt: Runtime) -> frozenset[int] | None:
    """Applies `chroot`, `group`/`gid` and `user`/`uid`; returns the capabilities kept.

    None means nothing changed identity (no uid/gid, or uid 0). Namespace fds and the
    home namespace fd are opened before the chroot, since /var/run/netns and /proc vanish.
    """
    g = config.global_
    uid, gid = _ids(config)
    if (uid or gid or g.chroot) and os.geteuid() != 0:
        raise OSError(1, "Cannot change user, group or root directory: not started as root")
    keep = needed_caps(config, rt)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    rt.registry.open_home()
    if g.chroot:
        try:
            os.chroot(g.chroot)
            os.chdir("/")
        except OSError as exc:
            raise OSError(exc.errno, f"Cannot chroot({g.chroot}): {exc.strerror}") from None
    if not uid and not gid:
        return None
    if uid:
        for cap in range(last_cap + 1):  # no later execve can win them back
            if cap not in keep:
                _prctl(_PR_CAPBSET_DROP, cap)
        if keep:
            _prctl(_PR_SET_KEEPCAPS, 1)
    try:
        if gid:
            os.setgroups([gid])
            os.setgid(gid)
        elif uid:
            os.setgroups([])
        if uid:
            os.setuid(uid)
    except OSError as exc:
        what = f"uid {uid}" if uid else f"gid {gid}"
        raise OSError(exc.errno, f"Cannot set {what}: {exc.strerror}") from None
    if keep and uid:
        _capset(keep)
        _prctl(_PR_SET_KEEPCAPS, 0)
    return keep
