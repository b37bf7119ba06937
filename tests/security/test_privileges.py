"""user/group/chroot: leave root after binding, keeping only the capabilities still used."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from lab.netlab import Lab, Proxy, connect, free_port, recv_all, tcp_defaults

CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN = 12, 13, 21
DEFAULTS = tcp_defaults(tcplog=False)


def status(proxy: Proxy) -> dict[str, str]:
    with open(f"/proc/{proxy.proc.pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def caps(proxy: Proxy, field: str) -> set[int]:
    mask = int(status(proxy)[field], 16)
    return {bit for bit in range(64) if mask >> bit & 1}


def echo_through(ns: str | None, port: int, payload: bytes) -> bytes:
    with connect(ns, ("127.0.0.1", port)) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c)


def test_runs_as_nobody_in_a_chroot_and_still_opens_server_sockets_in_namespaces(
    lab: Lab, tmp_path: Path
) -> None:
    ns = lab.netns("priv")
    sink = lab.sink(ns, "127.0.0.1", 7800, echo=True)
    jail = tmp_path / "jail"
    jail.mkdir()
    proxy = lab.proxy(
        f"""
global
  user nobody
  group nogroup
  chroot {jail}
"""
        + DEFAULTS
        + f"""
listen l
  bind 127.0.0.1:80 namespace {ns}
  server s 127.0.0.1:7800 namespace {ns}
"""
    )
    st = status(proxy)
    assert st["Uid"].split() == ["65534"] * 4
    assert st["Gid"].split() == ["65534"] * 4
    assert st["Groups"].split() == ["65534"]
    assert caps(proxy, "CapEff") == {CAP_SYS_ADMIN}  # setns for server sockets, nothing else
    assert caps(proxy, "CapPrm") == {CAP_SYS_ADMIN}
    assert caps(proxy, "CapBnd") == {CAP_SYS_ADMIN}
    assert os.readlink(f"/proc/{proxy.proc.pid}/root") == str(jail)
    for i in range(3):  # a port below 1024 bound as root; new server sockets in the namespace
        assert echo_through(ns, 80, b"tenant %d" % i) == b"tenant %d" % i
    assert len(sink.wait_conns(3)) == 3


def test_capabilities_follow_the_features_in_use(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", echo=True)
    plain, transparent = free_port(), free_port()
    proxy = lab.proxy(
        "global\n  uid 65534\n  gid 65534\n"
        + DEFAULTS
        + f"""
listen l
  bind 127.0.0.1:{plain}
  server s 127.0.0.1:{sink.port}
"""
    )
    assert caps(proxy, "CapEff") == set()  # no namespace, no transparent source: nothing kept
    assert echo_through(None, plain, b"plain") == b"plain"
    proxy.stop()
    proxy = lab.proxy(
        "global\n  uid 65534\n  gid 65534\n"
        + DEFAULTS
        + f"""
listen l
  bind 127.0.0.1:{transparent}
  source 0.0.0.0 usesrc clientip
  server s 127.0.0.1:{sink.port}
"""
    )
    assert caps(proxy, "CapEff") == {CAP_NET_ADMIN, CAP_NET_RAW}
    assert echo_through(None, transparent, b"tproxy") == b"tproxy"
