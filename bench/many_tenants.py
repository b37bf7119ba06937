"""Many tenants: one nsproxy vs one HAProxy vs one HAProxy per namespace (run as root).

For N namespaces, each with lo up, a listener on 127.0.0.1:80 and its own server
127.0.0.1:8775 inside it, this measures startup (until the last tenant's listener accepts),
RSS, fds, and the latency one tenant sees while the others idle. One-HAProxy-per-namespace is
measured for 10 namespaces and extrapolated linearly to N. Every namespace it makes is
deleted on exit.

    python bench/many_tenants.py [--sizes 100,1000] [--haproxy /usr/sbin/haproxy]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = f"nspb-{os.getpid()}-"
PORT, SRV_PORT = 80, 8775
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
DEFAULTS = """global
  maxconn 8192
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
"""


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)


def in_netns(name: str, fn: Callable[[], object]) -> object:
    """Runs `fn` on a short-lived thread inside namespace `name`; returns its result."""
    box: list[object] = []

    def work() -> None:
        try:
            _setns(f"/var/run/netns/{name}")
            box.append(fn())
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), 0x8913, req))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH14x", b"lo", flags | 1))  # IFF_UP


def make_namespaces(names: list[str]) -> None:
    batch = "".join(f"netns add {n}\n" for n in names)
    subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True, timeout=300)

    def all_up() -> None:
        for n in names:
            _setns(f"/var/run/netns/{n}")
            _lo_up()

    in_netns(names[0], all_up)


def delete_namespaces(names: list[str]) -> None:
    batch = "".join(f"netns del {n}\n" for n in names if os.path.exists(f"/var/run/netns/{n}"))
    if batch:
        subprocess.run(["ip", "-force", "-batch", "-"], input=batch, text=True, timeout=300)


def static_config(names: list[str]) -> str:
    parts = [DEFAULTS]
    for i, n in enumerate(names):
        parts.append(
            f"listen t{i}\n  bind 127.0.0.1:{PORT} namespace {n}\n"
            f"  server md 127.0.0.1:{SRV_PORT} namespace {n}\n"
        )
    return "".join(parts)


def pattern_config(glob: str) -> str:
    return (
        DEFAULTS
        + f"namespace_list\n  namespace-pattern {glob} template tmpl\n"
        + f"listen tmpl\n  bind 127.0.0.1:{PORT}\n  server md 127.0.0.1:{SRV_PORT} namespace *\n"
    )


class EchoServer:
    """The server of one tenant: echoes each connection inside the namespace."""

    def __init__(self, ns: str) -> None:
        def make() -> socket.socket:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", SRV_PORT))
            s.listen(128)
            return s

        sock = in_netns(ns, make)
        assert isinstance(sock, socket.socket)
        self.sock = sock
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c, contextlib.suppress(OSError):
                while data := c.recv(4096):
                    c.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def wait_listening(ns: str, port: int, deadline: float) -> bool:
    def poll() -> bool:
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return True
            time.sleep(0.002)
        return False

    return bool(in_netns(ns, poll))


def latency_us(ns: str, port: int, n: int = 300) -> float:
    """Median µs of connect + 64-byte echo + close, from inside namespace `ns`."""

    def run() -> float:
        msg = b"x" * 64
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6

    return float(in_netns(ns, run))  # type: ignore[arg-type]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Result:
    label: str
    startup: float
    rss_kb: int
    fds: int
    latency_add_us: float | None
    note: str = ""


@contextlib.contextmanager
def process(
    cmd: list[str], cfg_text: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], float, str]]:
    """Starts `cmd -f CFG`; yields it with its start time and config path; kills it after."""
    with tempfile.TemporaryDirectory(prefix="nspb-") as d:
        cfg = os.path.join(d, "cfg")
        Path(cfg).write_text(cfg_text)
        t0 = time.monotonic()
        with open(os.path.join(d, "err"), "wb") as err:
            proc = subprocess.Popen(
                [*cmd, "-f", cfg],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, **(env or {})},
            )
        try:
            yield proc, t0, cfg
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def measure_one(
    label: str, cmd: list[str], cfg_text: str, names: list[str], direct: float
) -> Result:
    with process(cmd, cfg_text) as (proc, t0, cfg):
        if not wait_listening(names[-1], PORT, t0 + 120):
            err = Path(cfg).with_name("err").read_text()[-2000:]
            raise RuntimeError(f"{label}: last listener never came up\n{err}")
        startup = time.monotonic() - t0
        time.sleep(0.3)
        rss, nfd = rss_kb(proc.pid), fds(proc.pid)
        lat = latency_us(names[0], PORT) - direct
    return Result(label, startup, rss, nfd, lat)


def measure_per_ns(haproxy: str, names: list[str], total: int) -> Result:
    """One HAProxy per namespace for `names`, extrapolated linearly to `total` namespaces."""
    k = len(names)
    with contextlib.ExitStack() as stack:
        t0 = time.monotonic()
        procs = [
            stack.enter_context(process([haproxy, "-db"], static_config([n])))[0] for n in names
        ]
        for n in names:
            if not wait_listening(n, PORT, t0 + 60):
                raise RuntimeError(f"haproxy in {n} never came up")
        startup = time.monotonic() - t0
        time.sleep(0.3)
        rss = sum(rss_kb(p.pid) for p in procs)
        nfd = sum(fds(p.pid) for p in procs)
    f = total / k
    return Result(
        f"HAProxy x{total} (1/ns)",
        startup * f,
        int(rss * f),
        int(nfd * f),
        None,
        f"measured {k} processes, scaled x{f:g}",
    )


def table(n: int, results: list[Result]) -> str:
    ref = next((r for r in results if r.label == "HAProxy 1 process"), None)
    lines = [
        f"\n== {n} namespaces ==",
        f"{'':26} {'startup s':>10} {'RSS MB':>8} {'fds':>7} {'fd/ns':>6} {'+lat us':>8}"
        f" {'RSS/HAProxy':>11}  note",
    ]
    for r in results:
        ratio = f"{r.rss_kb / ref.rss_kb:.2f}x" if ref else "-"
        lat = f"{r.latency_add_us:.0f}" if r.latency_add_us is not None else "-"
        lines.append(
            f"{r.label:26} {r.startup:10.3f} {r.rss_kb / 1024:8.1f} {r.fds:7d} "
            f"{r.fds / n:6.2f} {lat:>8} {ratio:>11}  {r.note}"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--haproxy", default="/usr/sbin/haproxy")
    ap.add_argument("--per-ns-sample", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nsproxy = [sys.executable, "-m", "nsproxy", "-db"]
    env_path = str(ROOT / "src")
    os.environ["PYTHONPATH"] = env_path + os.pathsep + os.environ.get("PYTHONPATH", "")
    for n in (int(x) for x in args.sizes.split(",")):
        names = [f"{PREFIX}{n}-{i}" for i in range(n)]
        try:
            make_namespaces(names)
            server = EchoServer(names[0])
            direct = latency_us(names[0], SRV_PORT)
            results = [
                measure_one(
                    "nsproxy (static config)", nsproxy, static_config(names), names, direct
                ),
                measure_one(
                    "nsproxy (namespace-pattern)",
                    nsproxy,
                    pattern_config(f"{PREFIX}{n}-*"),
                    names,
                    direct,
                ),
            ]
            if os.path.exists(args.haproxy):
                hap = [args.haproxy, "-db"]
                results.append(
                    measure_one("HAProxy 1 process", hap, static_config(names), names, direct)
                )
                sample = names[: min(args.per_ns_sample, n)]
                results.append(measure_per_ns(args.haproxy, sample, n))
            server.close()
            print(table(n, results))
            print(f"(direct connect+echo in the tenant: {direct:.0f} us median)")
            sys.stdout.flush()
        finally:
            delete_namespaces(names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
