"""Side-by-side benchmark: the same loads through HAProxy and nsproxy, with ratios (root only)."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import json
import os
import re
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HAPROXY = "/usr/sbin/haproxy"
TICK = os.sysconf("SC_CLK_TCK")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
PORTS = {"iperf": (15201, 5201), "web": (18080, 8080), "idle": (19000, 9000)}
IDLE_CONNS = 5000


def sh(*args: str, check: bool = True) -> str:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=60).stdout


# -- process accounting --------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    """`pid` and its live descendants (worker processes count as the proxy)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
    return out


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of `pid` and its descendants."""
    user = system = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
    return user / TICK, system / TICK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


def rss_kib(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


# -- topology ------------------------------------------------------------------------------
@dataclass
class Topology:
    """A client namespace (listeners, load generators) and a server namespace (servers)."""

    prefix: str = field(default_factory=lambda: f"nspb-{os.getpid()}")
    tmp: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="nsp-bench-"))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def cli(self) -> str:
        return self.prefix + "-cli"

    @property
    def srv(self) -> str:
        return self.prefix + "-srv"

    def up(self) -> None:
        for ns in (self.cli, self.srv):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sysctls = ("net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1")
            for kv in sysctls:
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", kv)

    def spawn(self, ns: str | None, *cmd: str, log: str) -> subprocess.Popen[bytes]:
        argv = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
        with open(os.path.join(self.tmp, log), "ab") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes]) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def down(self) -> None:
        for p in list(self.procs):
            self.stop(p)
        for ns in (self.cli, self.srv):
            sh("ip", "netns", "del", ns, check=False)
        if not os.environ.get("NSP_BENCH_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def sockets_in(self, ns: str, n: int = 1) -> list[socket.socket]:
        """`n` TCP sockets created inside `ns` by a short-lived thread."""
        box: list[socket.socket] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                finally:
                    os.close(fd)
                box.extend(socket.socket() for _ in range(n))
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=work)
        t.start()
        t.join()
        if errors:
            raise errors[0]
        return box

    def listening(self, ns: str, port: int) -> bool:
        return f":{port} " in sh("ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}")

    def wait_listening(self, ns: str, port: int, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 15
        while not self.listening(ns, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                logs = sorted(Path(self.tmp).glob("*.log"), key=os.path.getmtime)
                tail = logs[-1].read_text(errors="replace")[-2000:] if logs else ""
                raise RuntimeError(f"{proc.args!r} did not listen on {port}:\n{tail}")
            time.sleep(0.05)


def start_servers(topo: Topology) -> None:
    topo.spawn(topo.srv, "iperf3", "-s", "-B", "127.0.0.1", "-p", "5201", log="iperf3.log")
    conf = os.path.join(topo.tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            f"""worker_processes 1;
daemon off;
pid {topo.tmp}/nginx.pid;
error_log {topo.tmp}/nginx-error.log;
worker_rlimit_nofile 20000;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:8080 backlog=4096;
    location / {{ return 200 "hello from nginx\\n"; }}
  }}
}}
"""
        )
    nginx = topo.spawn(
        topo.srv,
        "nginx",
        "-p",
        topo.tmp,
        "-e",
        f"{topo.tmp}/nginx-error.log",
        "-c",
        conf,
        log="nginx.log",
    )
    topo.wait_listening(topo.srv, 8080, nginx)


def proxy_config(topo: Topology, workers: int, splice: bool) -> str:
    opts = "  option splice-request\n  option splice-response\n" if splice else ""
    sections = "".join(
        f"""
listen {name}
  bind 127.0.0.1:{front} namespace {topo.cli}
  server s1 127.0.0.1:{back} namespace {topo.srv}
"""
        for name, (front, back) in PORTS.items()
    )
    return f"""global
  maxconn 7000
  nbthread {workers}

defaults
  mode tcp
{opts}  timeout connect 5s
  timeout client 60s
  timeout server 60s
  backlog 4096
{sections}"""


@contextlib.contextmanager
def running_proxy(
    topo: Topology, kind: str, cfg: str, fronts: tuple[int, ...] = ()
) -> Iterator[int]:
    path = os.path.join(topo.tmp, f"{kind}.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    if kind == "haproxy":
        cmd = [HAPROXY, "-db", "-f", path]
    elif kind == "floor":  # bench/floor_http.py: what a bare Python relay reaches
        cmd = [nsproxy_python(), str(REPO / "bench" / "floor_http.py"), path]
    else:
        cmd = [nsproxy_python(), "-m", "nsproxy", "-db", "-f", path]
    p = topo.spawn(None, *cmd, log=f"{kind}.log")
    try:
        for front in fronts or tuple(f for f, _ in PORTS.values()):
            topo.wait_listening(topo.cli, front, p)
        yield p.pid
    finally:
        topo.stop(p)


def nsproxy_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# -- loads ---------------------------------------------------------------------------------
Result = dict[str, float]


def iperf(topo: Topology, pid: int, streams: int, seconds: int) -> Result:
    cpu0 = cpu_seconds(pid)
    out = sh(
        "ip", "netns", "exec", topo.cli, "iperf3", "-c", "127.0.0.1", "-p", str(PORTS["iperf"][0]),
        "-t", str(seconds), "-P", str(streams), "-J",
    )  # fmt: skip
    cpu = cpu_seconds(pid) - cpu0
    end = json.loads(out)["end"]["sum_received"]
    gb = end["bytes"] / 1e9
    return {"gbit_s": end["bits_per_second"] / 1e9, "cpu_s_per_gb": cpu / gb if gb else 0.0}


_LAT_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(topo: Topology, pid: int, conns: int, seconds: int) -> Result:
    cpu0 = cpu_seconds(pid)
    out = sh(
        "ip", "netns", "exec", topo.cli, "wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency",
        "-H", "Connection: close", f"http://127.0.0.1:{PORTS['web'][0]}/",
    )  # fmt: skip
    cpu = cpu_seconds(pid) - cpu0
    reqs = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = sum(int(x) for x in errs.groups()) if errs else 0
    errors += int(non2xx.group(1)) if non2xx else 0
    return {
        "conn_s": reqs / seconds,
        "cpu_s_per_10k": cpu / (reqs / 10000) if reqs else 0.0,
        "p99_ms": float(p99.group(1)) * _LAT_UNITS[p99.group(2)] if p99 else 0.0,
        "errors": float(errors),
    }


def idle_rss(topo: Topology, pid: int, holder: Holder, n: int) -> Result:
    holder.drop()
    time.sleep(0.5)
    base = rss_kib(pid)
    clients: list[socket.socket] = []
    failed = 0
    try:
        for s in topo.sockets_in(topo.cli, n):
            s.setblocking(False)
            if s.connect_ex(("127.0.0.1", PORTS["idle"][0])) not in (0, 115):  # EINPROGRESS
                failed += 1
            clients.append(s)
        deadline = time.monotonic() + 20
        while holder.count() < n - failed and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        held = holder.count()
        rss = rss_kib(pid)
        return {
            "held": float(held),
            "rss_mib": rss / 1024,
            "rss_kib_per_conn": (rss - base) / max(held, 1),
        }
    finally:
        for s in clients:
            s.close()
        holder.drop()


class Holder:
    """Accepts connections inside the server namespace and keeps them open, silent."""

    def __init__(self, topo: Topology) -> None:
        self.sock = topo.sockets_in(topo.srv)[0]
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", PORTS["idle"][1]))
        self.sock.listen(8192)
        self.sock.settimeout(0.2)
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.held.append(c)

    def count(self) -> int:
        with self.lock:
            return len(self.held)

    def drop(self) -> None:
        with self.lock:
            for c in self.held:
                c.close()
            self.held.clear()

    def close(self) -> None:
        self.done = True
        self.thread.join(2)
        self.drop()
        self.sock.close()


def profilers(
    args: argparse.Namespace, kind: str, pid: int, title: str
) -> list[subprocess.Popen[bytes]]:
    """Samplers attached while a load runs: py-spy (collapsed stacks) and strace -c (counts)."""
    name = re.sub(r"\W+", "-", title).strip("-")
    spies = []
    spy = shutil.which("py-spy") or str(Path(nsproxy_python()).parent / "py-spy")
    if args.profile and kind == "nsproxy" and os.path.exists(spy):
        os.makedirs(args.profile, exist_ok=True)
        out = os.path.join(args.profile, f"{name}.txt")
        cmd = [spy, "record", "-p", str(pid), "-r", "250", "-f", "raw", "-o", out, "--nonblocking"]
        spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    perf_dir = getattr(args, "perf", None)
    if perf_dir and shutil.which("perf"):
        os.makedirs(perf_dir, exist_ok=True)
        out = os.path.join(perf_dir, f"{kind}-{name}.data")
        graph = ["--call-graph", "dwarf,16384"] if os.environ.get("NSP_PERF_DWARF") else ["-g"]
        cmd = ["perf", "record", "-q", *graph, "-F", "499", "-p", str(pid), "-o", out]
        spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if getattr(args, "sysrate", None) and shutil.which("perf"):  # counts, at full speed
        os.makedirs(args.sysrate, exist_ok=True)
        out = os.path.join(args.sysrate, f"{kind}-{name}.txt")
        events = ",".join(
            f"syscalls:sys_enter_{c}"
            for c in ("epoll_wait", "epoll_pwait", "recvfrom", "sendto", "write", "writev",
                      "read", "epoll_ctl", "getpid", "clock_gettime")
        )  # fmt: skip
        cmd = ["perf", "stat", "-e", events, "-p", str(pid), "-o", out]
        spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if args.syscalls and shutil.which("strace"):
        os.makedirs(args.syscalls, exist_ok=True)
        out = os.path.join(args.syscalls, f"{kind}-{name}.txt")
        cmd = ["strace", "-c", "-f", "-p", str(pid), "-o", out]
        spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(0.3)
    return spies


# -- report --------------------------------------------------------------------------------
@dataclass
class Row:
    label: str
    unit: str
    values: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        h, n = self.values.get("haproxy"), self.values.get("nsproxy")
        ratio = f"{n / h:6.2f}x" if h and n is not None else "    - "
        digits = 3 if "s/" in self.unit else 1

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:,.{digits}f}"

        line = f"| {self.label:<34} | {self.unit:<10} | {fmt(h):>10} | {fmt(n):>10} | {ratio} |"
        f = self.values.get("floor")  # bench/floor_http.py, when it ran
        if f is not None:
            line += f" floor {fmt(f)} ({f / h:.2f}x) |" if h else f" floor {fmt(f)} |"
        return line


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=1, help="nbthread for both proxies")
    ap.add_argument("--seconds", type=int, default=5, help="length of each timed load")
    ap.add_argument("--only", choices=("bulk", "conn", "idle"), action="append")
    ap.add_argument("--proxies", default="haproxy,nsproxy")
    ap.add_argument("--profile", metavar="DIR", help="py-spy record nsproxy into DIR (raw)")
    ap.add_argument("--syscalls", metavar="DIR", help="strace -c both proxies into DIR (slow)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/run.py needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("iperf3", "wrk", "nginx", HAPROXY):
        if shutil.which(tool) is None:
            print(
                f"missing {tool}: apt-get install iperf3 wrk nginx-light haproxy", file=sys.stderr
            )
            return 2
    kinds = args.proxies.split(",")
    parts = args.only or ["bulk", "conn", "idle"]
    rows: dict[str, Row] = {}

    def record(key: str, unit: str, kind: str, value: float) -> None:
        rows.setdefault(key, Row(key, unit)).values[kind] = value

    topo = Topology()
    started = time.monotonic()
    try:
        topo.up()
        start_servers(topo)
        holder = Holder(topo)
        secs = args.seconds
        steps: list[tuple[str, bool, Callable[[str, int], None]]] = []
        if "bulk" in parts:
            for splice in (False, True):
                tag = "splice" if splice else "no splice"

                def bulk(kind: str, pid: int, tag: str = tag) -> None:
                    for streams in (1, 8):
                        r = iperf(topo, pid, streams, secs)
                        record(f"bulk {streams} stream(s), {tag}", "Gbit/s", kind, r["gbit_s"])
                        record(
                            f"CPU {streams} stream(s), {tag}", "CPU s/GB", kind, r["cpu_s_per_gb"]
                        )

                steps.append((f"bulk ({tag})", splice, bulk))
        if "conn" in parts:

            def conn(kind: str, pid: int) -> None:
                for c in (50, 500):
                    r = wrk(topo, pid, c, secs + 3)
                    record(f"short conns, c={c}", "conn/s", kind, r["conn_s"])
                    record(f"CPU per 10k conns, c={c}", "CPU s/10k", kind, r["cpu_s_per_10k"])
                    record(f"p99 latency, c={c}", "ms", kind, r["p99_ms"])
                    record(f"errors, c={c}", "count", kind, r["errors"])

            steps.append(("short connections", False, conn))
        if "idle" in parts:

            def idle(kind: str, pid: int) -> None:
                r = idle_rss(topo, pid, holder, IDLE_CONNS)
                record(f"idle conns held (of {IDLE_CONNS})", "conns", kind, r["held"])
                record(f"RSS with {IDLE_CONNS} idle", "MiB", kind, r["rss_mib"])
                record("RSS per idle conn", "KiB", kind, r["rss_kib_per_conn"])

            steps.append(("idle connections", False, idle))
        for title, splice, fn in steps:
            cfg = proxy_config(topo, args.workers, splice)
            for kind in kinds:
                print(f"# {title}: {kind} ...", flush=True)
                with running_proxy(topo, kind, cfg) as pid:
                    spies = profilers(args, kind, pid, title)
                    fn(kind, pid)
                    for spy in spies:
                        spy.send_signal(signal.SIGINT)
                        spy.wait(30)
        holder.close()
    finally:
        topo.down()
    print()
    print(
        f"nbthread {args.workers}, {secs} s per bulk load, {secs + 3} s per wrk load, "
        f"{time.monotonic() - started:.0f} s in all; ratio = nsproxy / HAProxy"
    )
    print(f"| {'figure':<34} | {'unit':<10} | {'HAProxy':>10} | {'nsproxy':>10} | ratio   |")
    print(f"|{'-' * 36}|{'-' * 12}|{'-' * 12}|{'-' * 12}|---------|")
    for row in rows.values():
        print(row.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
