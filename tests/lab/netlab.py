"""Builds throw-away namespaces with unique per-run names and always removes them."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

CLONE_NEWNET = 0x40000000
_counter = itertools.count()
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
T = TypeVar("T")


def wait_until(pred: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Polls `pred` until it returns a true value, which is returned; raises TimeoutError
    naming `what` (and the last value seen) when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(0.01)


def tcp_defaults(client: str = "5s", server: str = "5s", tcplog: bool = True) -> str:
    """The head most test configurations share: `defaults` in TCP mode with short timeouts,
    and with `tcplog` HAProxy's tcplog lines on stdout."""
    head = "\nglobal\n  log stdout format raw local0" if tcplog else ""
    logs = "  log global\n  option tcplog\n" if tcplog else ""
    return (
        f"{head}\ndefaults\n  mode tcp\n{logs}  timeout connect 2s\n"
        f"  timeout client {client}\n  timeout server {server}\n"
    )


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):
        os.setns(fd, CLONE_NEWNET)
    elif _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def socket_in(
    ns: str | None, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM
) -> socket.socket:
    """A socket created inside namespace `ns` (None: the test's own namespace).

    A short-lived thread enters the namespace so the test thread never moves.
    """
    if ns is None:
        return socket.socket(family, type)
    box: list[object] = []

    def work() -> None:
        try:
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            box.append(socket.socket(family, type))
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    assert isinstance(result, socket.socket)
    return result


def netns_inode_of_socket(sock: socket.socket) -> int:
    """The inode of the network namespace a socket lives in (SIOCGSKNS)."""
    import fcntl

    SIOCGSKNS = 0x894C
    nsfd = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
    try:
        return os.fstat(nsfd).st_ino
    finally:
        os.close(nsfd)


def free_port(ns: str | None = None, host: str = "127.0.0.1") -> int:
    s = socket_in(ns, socket.AF_INET6 if ":" in host else socket.AF_INET)
    with s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=30)


@dataclass
class Conn:
    """What an in-namespace server saw of one connection."""

    peer: tuple[str, int]
    local: tuple[str, int]
    data: bytearray = field(default_factory=bytearray)
    closed: threading.Event = field(default_factory=threading.Event)


def accept_threads(
    sock: socket.socket, handle: Callable[[socket.socket], object]
) -> threading.Thread:
    """Serves the listening `sock`: each accepted connection goes to `handle` on a thread of
    its own until the socket is shut. Returns the accept thread (for `stop_listener`)."""

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    return acceptor


def stop_listener(sock: socket.socket, acceptor: threading.Thread | None) -> None:
    """Stops a listening socket served by an accept thread: shutdown (the blocked accept
    returns), the thread joined, then close. Closing first would let a thread about to call
    accept() use the fd number after the kernel gave it to a newer socket, and steal that
    socket's connections (seen once: a test's server answered by another test's origin)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    if acceptor is not None and acceptor is not threading.current_thread():
        acceptor.join(5)
    sock.close()


class Sink:
    """A TCP server in a namespace: records what each connection sent and who sent it.

    `reply` is sent once at accept (b"" = nothing); `echo` sends back everything received.
    """

    def __init__(
        self,
        ns: str | None,
        host: str,
        port: int,
        *,
        reply: bytes = b"",
        echo: bool = False,
        family: int | None = None,
        transparent_ok: bool = False,
    ) -> None:
        fam = family or (socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock = socket_in(ns, fam)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(512)
        self.ns = ns
        self.port = int(self.sock.getsockname()[1])
        self.host = host
        self.reply = reply
        self.echo = echo
        self.conns: list[Conn] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            conn = Conn(peer[:2], c.getsockname()[:2])
            with self._lock:
                self.conns.append(conn)
            threading.Thread(target=self._handle, args=(c, conn), daemon=True).start()

    def _handle(self, c: socket.socket, conn: Conn) -> None:
        with c:
            try:
                if self.reply:
                    c.sendall(self.reply)
                while True:
                    data = c.recv(262144)
                    if not data:
                        break
                    conn.data += data
                    if self.echo:
                        c.sendall(data)
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            finally:
                conn.closed.set()

    def wait_conns(self, n: int, timeout: float = 10.0) -> list[Conn]:
        """The connections seen, once there are at least `n`; raises TimeoutError otherwise."""

        def enough() -> list[Conn] | None:
            with self._lock:
                return list(self.conns) if len(self.conns) >= n else None

        return wait_until(enough, timeout, f"{n} connection(s) to {self.host}:{self.port}")

    def close(self) -> None:
        self._stop = True
        stop_listener(self.sock, self._thread)


class Proxy:
    """An `nsproxy -db -f CFG` process, started and waited for with sd_notify READY=1."""

    def __init__(
        self,
        config: str,
        *,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        command: tuple[str, ...] | None = None,
        ready_timeout: float = 15.0,
    ) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="nsp-test-")
        self.cfg = os.path.join(self.dir.name, "nsproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(config)
        self.notify_path = os.path.join(self.dir.name, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(ready_timeout)
        full_env = dict(os.environ)
        full_env["NOTIFY_SOCKET"] = self.notify_path
        full_env.update(env or {})
        cmd = command or (sys.executable, "-m", "nsproxy")
        self.log_path = os.path.join(self.dir.name, "out.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [*cmd, "-db", "-f", self.cfg, *extra_args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
        try:
            while True:
                msg = self.notify.recv(4096)
                if b"READY=1" in msg:
                    break
        except TimeoutError:
            out = self.output()
            self.stop()
            raise RuntimeError(f"nsproxy did not become ready:\n{out}") from None

    def output(self) -> str:
        self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_output(self, needle: str, timeout: float = 10.0) -> str:
        """The output once it contains `needle`; raises TimeoutError (with the output) if not."""
        return self.wait_count(needle, 1, timeout)

    def wait_count(self, needle: str, n: int, timeout: float = 10.0) -> str:
        """The output once `needle` appears at least `n` times; raises TimeoutError if not."""

        def enough() -> str | None:
            out = self.output()
            return out if out.count(needle) >= n else None

        try:
            return wait_until(enough, timeout, f"{n} x {needle!r}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; nsproxy's output:\n{self.output()}") from None

    def log_lines(self) -> list[str]:
        return [ln for ln in self.output().splitlines() if ln and not ln.startswith("[")]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.notify.close()
        self._log.close()
        self.dir.cleanup()
        return int(self.proc.returncode)


def unix_listening(path: str, pid: int) -> bool:
    """A UNIX stream socket at `path` listens (bound is not enough), read from process `pid`'s
    /proc/PID/net/unix (its namespace's) without connecting: a connection would count in
    HAProxy's CumConns. HAProxy binds a temporary name (`PATH.PID.tmp`) and renames it;
    /proc keeps the name bound."""
    if not os.path.exists(path):
        return False
    try:
        f = open(f"/proc/{pid}/net/unix")  # noqa: SIM115 - closed below
    except OSError:  # the process is gone
        return False
    with f:
        next(f)  # the column names
        for line in f:
            fields = line.split()
            if len(fields) < 8 or not int(fields[3], 16) & 0x10000:  # __SO_ACCEPTCON
                continue
            if fields[7] == path or fields[7].startswith(path + "."):
                return True
    return False


class Lab:
    """Namespaces named `nsp-<pid>-<n>-<name>`, removed by close() whatever happened."""

    def __init__(self) -> None:
        self.prefix = f"nsp-{os.getpid()}-{next(_counter)}-"
        self.namespaces: list[str] = []
        self._closers: list[Callable[[], object]] = []

    def netns(self, name: str) -> str:
        full = self.prefix + name
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def ip(self, ns: str, *args: str) -> None:
        sh("ip", "-n", ns, *args)

    def veth(self, ns_a: str, addr_a: str, ns_b: str, addr_b: str) -> None:
        """A veth pair between two namespaces with the given CIDR addresses."""
        n = len(self._closers)
        a, b = f"nspa{os.getpid() % 10000}{n}", f"nspb{os.getpid() % 10000}{n}"
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        sh("ip", "link", "set", a, "netns", ns_a)
        sh("ip", "link", "set", b, "netns", ns_b)
        self.ip(ns_a, "addr", "add", addr_a, "dev", a)
        self.ip(ns_b, "addr", "add", addr_b, "dev", b)
        self.ip(ns_a, "link", "set", a, "up")
        self.ip(ns_b, "link", "set", b, "up")
        self._closers.append(lambda: None)

    def iface(self, ns: str, name: str, *addrs: str) -> None:
        """An interface carrying `addrs` inside `ns` (one end of a veth pair kept in `ns`)."""
        self.ip(ns, "link", "add", name, "type", "veth", "peer", "name", name + "p")
        for addr in addrs:
            self.ip(ns, "addr", "add", addr, "dev", name)
        self.ip(ns, "link", "set", name, "up")
        self.ip(ns, "link", "set", name + "p", "up")

    def transparent_return(self, ns: str, subnet: str, *, tproxy: bool = False) -> None:
        """Delivers replies for `subnet` to transparent sockets in `ns` (see docs/transparent.md).

        Default: a `local` route for the subnet. tproxy=True: the TPROXY recipe instead (nft
        `socket transparent` marks them, `ip rule fwmark 1` sends them to a `local` table 100).
        """
        fam = "-6" if ":" in subnet else "-4"
        if not tproxy:
            sh("ip", "-n", ns, fam, "route", "add", "local", subnet, "dev", "lo")
            return
        rules = (
            "table inet nsp_tproxy {\n chain divert {\n"
            "  type filter hook prerouting priority mangle; policy accept;\n"
            "  meta l4proto tcp socket transparent 1 meta mark set 1 accept\n }\n}\n"
        )
        subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-f", "-"],
            input=rules,
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        sh("ip", "-n", ns, fam, "rule", "add", "fwmark", "1", "lookup", "100")
        everything = "::/0" if fam == "-6" else "0.0.0.0/0"
        sh("ip", "-n", ns, fam, "route", "add", "local", everything, "dev", "lo", "table", "100")

    def defer(self, closer: Callable[[], object]) -> None:
        """Runs `closer` when the lab closes (before the namespaces go)."""
        self._closers.append(closer)

    def sink(self, ns: str | None, host: str, port: int = 0, **kw: object) -> Sink:
        s = Sink(ns, host, port, **kw)  # type: ignore[arg-type]
        self._closers.append(s.close)
        return s

    def proxy(self, config: str, **kw: object) -> Proxy:
        p = Proxy(config, **kw)  # type: ignore[arg-type]
        self._closers.append(p.stop)
        return p

    def haproxy(self, config: str, stats_socket: str) -> subprocess.Popen[bytes]:
        """Debian's HAProxy 2.6 (`haproxy -db -f CFG`), ready once `stats_socket` exists.

        For differential tests: the same configuration and runtime API commands as nsproxy.
        """
        exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
        with tempfile.NamedTemporaryFile("w", suffix=".cfg", prefix="hap-", delete=False) as f:
            f.write(config)
            path = f.name
        proc = subprocess.Popen([exe, "-db", "-f", path], stderr=subprocess.PIPE)

        def stop() -> None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(OSError):
                os.unlink(path)

        self._closers.append(stop)
        # the socket file appears at bind(2); listen(2) comes with the other listeners
        wait_until(
            lambda: unix_listening(stats_socket, proc.pid) or proc.poll() is not None,
            10,
            "HAProxy's start",
        )
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"haproxy exited: {err}")
        return proc

    def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    lb = Lab()
    try:
        yield lb
    finally:
        lb.close()


def connect(
    ns: str | None,
    addr: tuple[str, int],
    timeout: float = 5.0,
    source: tuple[str, int] | None = None,
) -> socket.socket:
    s = socket_in(ns, socket.AF_INET6 if ":" in addr[0] else socket.AF_INET)
    s.settimeout(timeout)
    if source is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(source)
    s.connect(addr)
    return s


def cli(addr: str | tuple[str, int], text: str, timeout: float = 5.0) -> bytes:
    """One line to a stats socket (UNIX path or TCP address); the answer until it closes.

    Non-UTF-8 bytes travel in `text` as surrogate escapes (as os.listdir gives names)."""
    family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(text.encode("utf-8", "surrogateescape") + b"\n")
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
    return bytes(out)


def recv_all(s: socket.socket, timeout: float = 10.0) -> bytes:
    s.settimeout(timeout)
    out = bytearray()
    while True:
        data = s.recv(262144)
        if not data:
            return bytes(out)
        out += data


def timeout_proxy(lab: Lab, timeouts: str, server: str) -> tuple[Proxy, int]:
    """A `listen t` proxy with tcplog, no retries and the given timeout lines, on a free port."""
    lport = free_port()
    proxy = lab.proxy(
        "global\n  log stdout format raw local0\n"
        "defaults\n  mode tcp\n  log global\n  option tcplog\n  retries 0\n"
        f"{timeouts}\nlisten t\n  bind 127.0.0.1:{lport}\n  server s {server}\n"
    )
    return proxy, lport


def log_fields(proxy: Proxy, marker: str = " t t/s ") -> list[str]:
    """The fields of the first tcplog line containing `marker` (waits for it)."""
    out = proxy.wait_output(marker)
    return next(ln for ln in out.splitlines() if marker in ln).split()


def echo_through(port: int, payload: bytes, ns: str | None = None) -> bytes:
    """Sends `payload` through 127.0.0.1:`port` to an echo server, reading back concurrently."""
    received = bytearray()
    with connect(ns, ("127.0.0.1", port), timeout=30) as c:
        reader = threading.Thread(target=lambda: received.extend(recv_all(c, timeout=30)))
        reader.start()
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        reader.join(60)
    return bytes(received)
