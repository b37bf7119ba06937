"""Tenants that come and go at runtime: pattern mode and the dynamic.py changes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from lab.netlab import Lab, connect, netns_inode_of_socket, recv_all, sh, tcp_defaults
from nsproxy.config.parser import parse_files
from nsproxy.ops.stats import set_state
from nsproxy.runtime import dynamic
from nsproxy.runtime.process import Runtime

T = TypeVar("T")

DEFAULTS = tcp_defaults(tcplog=False)


def _echo_once(ns: str | None, addr: tuple[str, int], payload: bytes = b"ping") -> bytes:
    with connect(ns, addr, timeout=3) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c, timeout=3)


def _wait_served(ns: str, addr: tuple[str, int], attempts: int = 200) -> bytes:
    """Connects until the proxy listens in `ns` (bounded); returns what came back."""
    for _ in range(attempts):
        try:
            return _echo_once(ns, addr)
        except OSError:
            time.sleep(0.025)
    raise AssertionError(f"nothing listens on {addr} in {ns}")


def _maint(rt: Runtime, on: bool) -> None:
    """`disable server tb/web` / `enable server tb/web`."""
    be = rt.backends["tb"]
    srv = be.server("web")
    assert srv is not None
    set_state(rt, be, srv, "maint" if on else "ready")


def _netns_fds(pid: int) -> set[int]:
    """The inodes of the namespaces a process holds open fds to."""
    nsfs = os.stat("/proc/self/ns/net").st_dev
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if st.st_dev == nsfs:
            out.add(st.st_ino)
    return out


def _ns_inode(ns: str) -> int:
    return os.stat(f"/var/run/netns/{ns}").st_ino


class _Traffic:
    """Connections made one after another in a tenant until stopped; counts the failures."""

    def __init__(self, ns: str, addr: tuple[str, int]) -> None:
        self.ns, self.addr = ns, addr
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and self.ok + len(self.failed) < 100_000:
            try:
                reply = _echo_once(self.ns, self.addr, b"steady")
                if reply != b"steady":
                    self.failed.append(f"bad reply {reply!r}")
                else:
                    self.ok += 1
            except OSError as exc:
                self.failed.append(repr(exc))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_pattern_mode_follows_namespaces(lab: Lab) -> None:
    steady = lab.netns("steady")
    srv = lab.netns("srv")  # the echo server, out of reach of other runs on this machine
    echo = lab.sink(srv, "127.0.0.1", echo=True)
    pattern = lab.prefix + "t-*"
    proxy = lab.proxy(
        tcp_defaults()
        + f"""
namespace_list
  namespace-pattern {pattern} template t_tmpl
listen steady
  bind 127.0.0.1:80 namespace {steady}
  server s 127.0.0.1:{echo.port} namespace {srv}
listen t_tmpl
  bind 127.0.0.1:80
  server s 127.0.0.1:{echo.port} namespace {srv}
"""
    )
    pid = proxy.proc.pid
    # the template's own bind is not opened in the proxy's namespace
    with pytest.raises(OSError):
        _echo_once(None, ("127.0.0.1", 80))
    traffic = _Traffic(steady, ("127.0.0.1", 80))
    try:
        t1 = lab.netns("t-1")
        t2 = lab.netns("t-2")
        other = lab.netns("other")
        assert _wait_served(t1, ("127.0.0.1", 80)) == b"ping"
        assert _wait_served(t2, ("127.0.0.1", 80)) == b"ping"
        with pytest.raises(OSError):
            _echo_once(other, ("127.0.0.1", 80))
        assert _ns_inode(t1) in _netns_fds(pid)

        old_inode = _ns_inode(t1)
        sh("ip", "netns", "del", t1)
        proxy.wait_output(f"Namespace '{t1}' removed.")
        assert old_inode not in _netns_fds(pid)

        lab.netns("t-1")
        assert _ns_inode(t1) != old_inode
        assert _wait_served(t1, ("127.0.0.1", 80)) == b"ping"
        assert _ns_inode(t1) in _netns_fds(pid)
        assert _echo_once(t2, ("127.0.0.1", 80)) == b"ping"
    finally:
        traffic.stop()
    unusual = [ln for ln in proxy.output().splitlines() if " steady " in ln and " -- " not in ln]
    assert (traffic.failed, unusual) == ([], [])
    assert traffic.ok > 0


def test_pattern_without_template_is_a_config_error(lab: Lab) -> None:
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "p.cfg")
        with open(cfg, "w") as f:
            f.write(DEFAULTS + "namespace_list\n  namespace-pattern x-* template nope\n")
        config, state = parse_files([cfg])
    assert config is None
    assert any("template 'nope'" in e for e in state.errors)


class _InProcess:
    """A Runtime on its own event-loop thread; `call` runs a function on that loop."""

    def __init__(self, text: str) -> None:
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "nsproxy.cfg")
            with open(cfg, "w") as f:
                f.write(text)
            config, state = parse_files([cfg])
        assert config is not None, state.errors
        self.loop = asyncio.new_event_loop()
        self.rt = Runtime(config, self.loop)
        self.rt.build()
        self.rt.open_listeners()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.rt.start)

    def call(self, fn: Callable[..., T], *args: object, **kw: object) -> T:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args, **kw))
            except BaseException as exc:
                fut.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return fut.result(10)

    def close(self) -> None:
        self.call(self.rt.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def inproc(lab: Lab) -> Iterator[Callable[[str], _InProcess]]:
    made: list[_InProcess] = []

    def make(text: str) -> _InProcess:
        p = _InProcess(text)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_dynamic_netns_bind_and_server(lab: Lab, inproc: Callable[[str], _InProcess]) -> None:
    a = lab.netns("a")
    b = lab.netns("b")
    echo_a = lab.sink(a, "127.0.0.1", echo=True)
    echo_b = lab.sink(b, "127.0.0.1", reply=b"b-server\n")
    p = inproc(
        DEFAULTS
        + f"""
listen ta
  bind 127.0.0.1:80 namespace {a}
  server s 127.0.0.1:{echo_a.port} namespace {a}
listen tb
  bind 127.0.0.1:9 namespace {a}
"""
    )
    rt = p.rt
    # a long connection in tenant a that must survive every change to tenant b
    held = connect(a, ("127.0.0.1", 80))
    held.sendall(b"before ")

    ns = p.call(dynamic.add_netns, rt, b)
    assert ns.inode == _ns_inode(b)
    with pytest.raises(dynamic.DynamicError, match="already added"):
        p.call(dynamic.add_netns, rt, b)

    p.call(dynamic.add_bind, rt, "tb", "127.0.0.1:80", b)
    srv = p.call(dynamic.add_server, rt, "tb", "web", f"127.0.0.1:{echo_b.port}", b)
    assert srv.admin_maint  # HAProxy's `add server` creates servers in maintenance
    with connect(b, ("127.0.0.1", 80)) as c:
        assert recv_all(c) == b""  # no usable server yet: closed without data
    p.call(_maint, rt, False)
    with connect(b, ("127.0.0.1", 80)) as c:
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"b-server\n"

    with pytest.raises(dynamic.DynamicError, match="maintenance"):
        p.call(dynamic.del_server, rt, "tb", "web")
    with pytest.raises(dynamic.DynamicError, match="used by server tb/web"):
        p.call(dynamic.del_netns, rt, b)
    p.call(_maint, rt, True)
    p.call(dynamic.del_server, rt, "tb", "web")
    assert p.call(lambda: rt.backends["tb"].server("web")) is None

    assert p.call(dynamic.del_bind, rt, "tb", "127.0.0.1:80", b) == 1
    with pytest.raises(OSError):
        _echo_once(b, ("127.0.0.1", 80))
    p.call(dynamic.add_bind, rt, "tb", "127.0.0.1:80", b)
    inode = _ns_inode(b)
    assert inode in _netns_fds(os.getpid())
    assert p.call(dynamic.del_netns, rt, b) == 1
    assert inode not in _netns_fds(os.getpid())
    with pytest.raises(OSError):
        _echo_once(b, ("127.0.0.1", 80))

    held.sendall(b"after")
    held.shutdown(socket.SHUT_WR)
    assert recv_all(held) == b"before after"
    held.close()
    assert _echo_once(a, ("127.0.0.1", 80)) == b"ping"


def test_del_netns_lets_connections_finish(lab: Lab, inproc: Callable[[str], _InProcess]) -> None:
    a = lab.netns("a")
    echo = lab.sink(None, "127.0.0.1", echo=True)
    p = inproc(
        DEFAULTS
        + f"""
listen ta
  bind 127.0.0.1:80 namespace {a}
  server s 127.0.0.1:{echo.port}
"""
    )
    held = connect(a, ("127.0.0.1", 80))
    assert netns_inode_of_socket(held) == _ns_inode(a)
    held.sendall(b"one ")
    assert held.recv(10) == b"one "  # accepted and relayed before the namespace goes
    assert p.call(dynamic.del_netns, p.rt, a) == 1
    with pytest.raises(OSError):
        _echo_once(a, ("127.0.0.1", 80))
    held.sendall(b"two")
    held.shutdown(socket.SHUT_WR)
    assert recv_all(held) == b"two"
    held.close()


def test_runtime_api_commands(lab: Lab, inproc: Callable[[str], _InProcess]) -> None:
    from nsproxy.ops.commands import execute
    from nsproxy.ops.runtime_api import ADMIN, OPERATOR, Session

    a = lab.netns("a")
    b = lab.netns("b")
    echo_b = lab.sink(b, "127.0.0.1", reply=b"b-server\n")
    p = inproc(
        DEFAULTS
        + f"""
listen tb
  bind 127.0.0.1:9 namespace {a}
"""
    )
    admin = Session(p.rt, ADMIN)

    def cli(line: str, session: Session = admin) -> str:
        return p.call(execute, session, line)

    assert cli(f"add netns {b}", Session(p.rt, OPERATOR)) == "Permission denied\n"
    assert cli(f"add netns {b}") == "New namespace registered.\n"
    assert "already added" in cli(f"add netns {b}")
    assert cli(f"add bind tb 127.0.0.1:80 namespace {b}") == "New bind registered.\n"
    line = f"add server tb/web 127.0.0.1:{echo_b.port} namespace {b} enabled"
    assert cli(line) == "New server registered.\n"
    with connect(b, ("127.0.0.1", 80)) as c:
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"b-server\n"
    assert "maintenance" in cli("del server tb/web")
    p.call(_maint, p.rt, True)
    assert cli("del server tb/web") == "Server deleted."
    assert cli(f"del bind tb 127.0.0.1:80 namespace {b}") == "Bind deleted.\n"
    with pytest.raises(OSError):
        _echo_once(b, ("127.0.0.1", 80))
    assert cli(f"del netns {b}") == "Namespace deleted.\n"
    assert _ns_inode(b) not in _netns_fds(os.getpid())
    assert "No such namespace" in cli(f"del netns {b}")


@pytest.mark.soak
def test_pattern_churn_leaves_other_tenants_alone(lab: Lab) -> None:
    """A tenant namespace created and deleted 20 times; another tenant's traffic never fails.

    A soak (NSPROXY_SOAK=1). It is what showed the test-server race that `stop_listener`
    fixes (docs/DESIGN.md, "Test harness note")."""
    steady = lab.netns("steady")
    srv = lab.netns("srv")  # the echo server, out of reach of other runs on this machine
    echo = lab.sink(srv, "127.0.0.1", echo=True)
    proxy = lab.proxy(
        tcp_defaults()
        + f"""
namespace_list
  namespace-pattern {lab.prefix}t-* template t_tmpl
listen steady
  bind 127.0.0.1:80 namespace {steady}
  server s 127.0.0.1:{echo.port} namespace {srv}
listen t_tmpl
  bind 127.0.0.1:80
  server s 127.0.0.1:{echo.port} namespace {srv}
"""
    )
    traffic = _Traffic(steady, ("127.0.0.1", 80))
    try:
        for i in range(20):
            t1 = lab.netns("t-1")
            assert _wait_served(t1, ("127.0.0.1", 80)) == b"ping"
            sh("ip", "netns", "del", t1)
            lab.namespaces.remove(t1)
            proxy.wait_count(f"Namespace '{t1}' removed.", i + 1)
    finally:
        traffic.stop()
    unusual = [ln for ln in proxy.output().splitlines() if " steady " in ln and " -- " not in ln]
    assert (traffic.failed, unusual) == ([], [])
    assert traffic.ok > 0
