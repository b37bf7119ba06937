"""user/group/chroot: leave root after binding, keeping only the capabilities still used."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from lab.netlab import Lab, Proxy, cli, connect, free_port, recv_all, tcp_defaults

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


def test_runtime_api_namespaces_work_inside_a_chroot(lab: Lab, tmp_path: Path) -> None:
    """The run directory is opened before the chroot: `show netns` sees live namespaces as
    present and `add netns` opens one created after the start."""
    first = lab.netns("first")
    jail = tmp_path / "jail"
    jail.mkdir()
    sock = str(tmp_path / "admin.sock")
    lab.proxy(
        f"global\n  chroot {jail}\n  stats socket {sock} level admin\n"
        + DEFAULTS
        + f"listen l\n  bind 127.0.0.1:80 namespace {first}\n  server s 127.0.0.1:1\n"
    )
    lines = cli(sock, "show netns").decode().splitlines()[1:]
    rows = {r.split()[0]: r.split() for r in lines if r}
    assert rows[first][-1] == "present"
    late = lab.netns("late")
    sink = lab.sink(late, "127.0.0.1", 7000, reply=b"late\n")
    assert cli(sock, f"add netns {late}") == b"New namespace registered.\n\n"
    assert cli(sock, f"add bind l 127.0.0.1:80 namespace {late}") == b"New bind registered.\n\n"
    line = f"add server l/late 127.0.0.1:{sink.port} namespace {late} enabled"
    assert cli(sock, line) == b"New server registered.\n\n"
    assert cli(sock, "set server l/s state maint") == b"\n"
    assert echo_through(late, 80, b"") == b"late\n"


def test_namespace_pattern_with_chroot_is_refused_by_check(tmp_path: Path) -> None:
    cfg = tmp_path / "p.cfg"
    cfg.write_text(
        f"global\n  chroot {tmp_path}\nnamespace_list\n  namespace-pattern t-* template tpl\n"
        + DEFAULTS
        + "frontend tpl\n  bind 127.0.0.1:80\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)], capture_output=True, text=True
    )
    assert res.returncode == 1
    assert f"[{cfg}:4] : 'namespace-pattern' cannot be used with 'chroot'" in res.stderr
