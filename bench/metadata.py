"""OVN metadata proxies: N HAProxy processes (one per namespace) against one nsproxy (as root).

Builds N `ovnmeta-<id>` namespaces (169.254.169.254 on lo, a client in each) and a fake
metadata agent on a UNIX socket that checks every request's X-OVN-Network-ID against the
network the client says it is in. For each proxy kind, one after the other, it measures:

- startup: from starting the proxy (nsproxy: one exec; HAProxy: `ip netns exec NS haproxy -f`
  per namespace with the agent's own template) until every namespace has had an answer;
- RSS (VmRSS summed over the proxy processes) once all are served;
- load: the same number of requests spread over all tenants, requests/s and proxy CPU;
- churn: for `--seconds`, 10 namespaces/s created (namespace, address, HAProxy: a process)
  and removed while every live tenant sends requests: time from creation to first answer,
  failed requests to live namespaces, and (nsproxy) fds left over after the churn.

Every namespace is named `nspm<pid>-ovnmeta-...` and deleted on exit; every process it starts
is stopped by PID.

    python bench/metadata.py --n 100 [--seconds 10] [--requests 5000] [--no-haproxy]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = f"nspm{os.getpid()}-"
META = ("169.254.169.254", 80)
CLONE_NEWNET = 0x40000000
MAX_SECONDS = 60.0
MIN_FREE = 2 << 30  # no HAProxy process is started below this much available memory
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# the OVN metadata agent's HAProxy template (neutron/agent/ovn/metadata/driver.py), as it runs
HAPROXY_TEMPLATE = """global
    log         {log} local0 info
    log-tag     haproxy-metadata-proxy-{net_id}
    maxconn     1024
    pidfile     {pidfile}
    daemon

defaults
    log global
    mode http
    option httplog
    option dontlognull
    option http-server-close
    option forwardfor
    retries                 3
    timeout http-request    30s
    timeout connect         30s
    timeout client          32s
    timeout server          32s
    timeout http-keep-alive 30s

listen listener
    bind 169.254.169.254:80
    server metadata {agent}
    http-request add-header X-OVN-Network-ID {net_id}
"""


# -- the fake agent (a process of its own, so that its CPU is not counted as the proxy's) ----
def agent_main(path: str, report: str) -> None:
    """Answers 200 + the network ID when the request carries exactly its own ID, else 403."""
    counts = {"ok": 0, "wrong": 0}
    samples: list[str] = []

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await r.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            w.close()
            return
        expect = re.search(rb"[?&]expect=([^ &]+)", head)
        ids = re.findall(rb"(?im)^x-ovn-network-id:[ \t]*(\S*)", head)
        good = expect is not None and ids == [expect.group(1)]
        counts["ok" if good else "wrong"] += 1
        if not good and len(samples) < 5:
            samples.append(head.decode("latin-1"))
        body = ids[0] if good else b"wrong"
        status = b"200 OK" if good else b"403 Forbidden"
        w.write(b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
        with contextlib.suppress(ConnectionError):
            await w.drain()
        w.close()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await asyncio.start_unix_server(handle, path, backlog=4096)
        os.chmod(path, 0o666)
        await stop.wait()
        server.close()
        Path(report).write_text(json.dumps({**counts, "samples": samples}))

    _run(main())


def _run(coro: object) -> None:
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]


# -- namespaces -------------------------------------------------------------------------------
def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


async def ash(*args: str, stdin: bytes | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await proc.communicate(stdin)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)}: {err.decode().strip()}")


@dataclass
class Tenant:
    """One ovnmeta namespace, its network ID and an open fd to enter it."""

    net_id: str
    ns: str
    fd: int = -1
    t_created: float = 0.0
    t_address: float = 0.0
    first_answer: float | None = None

    @classmethod
    def new(cls, tag: str = "") -> Tenant:
        net_id = tag + str(uuid.uuid4())
        return cls(net_id, f"{PREFIX}ovnmeta-{net_id}")

    async def create(self) -> None:
        """As the agent: the namespace first, then its address (here on lo, up)."""
        self.t_created = time.monotonic()
        await ash("ip", "netns", "add", self.ns)
        await ash(
            "ip", "-n", self.ns, "-batch", "-",
            stdin=b"link set lo up\naddr add 169.254.169.254/32 dev lo\n",
        )  # fmt: skip
        self.t_address = time.monotonic()
        self.fd = os.open(f"/var/run/netns/{self.ns}", os.O_RDONLY | os.O_CLOEXEC)

    def close_fd(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Netns:
    """Creates client sockets inside tenants' namespaces from the bench's own thread."""

    def __init__(self) -> None:
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        _libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)

    def socket_in(self, fd: int) -> socket.socket:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            if _libc.setns(self.home, CLONE_NEWNET) != 0:
                raise SystemExit("cannot return to the bench's namespace")


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    wrong: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, result: str) -> None:
        if result == "ok":
            self.ok += 1
            return
        if result.startswith("wrong"):
            self.wrong += 1
        else:
            self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(result)


async def ask(nsx: Netns, t: Tenant, forged: str | None = None, timeout: float = 5.0) -> str:
    """One request from inside T: 'ok', 'wrong: ...' (another ID) or the failure."""
    if t.fd < 0:
        return "no namespace"
    loop = asyncio.get_running_loop()
    try:
        s = nsx.socket_in(t.fd)
    except OSError as exc:
        return f"socket: {exc}"
    with s:
        s.setblocking(False)
        extra = f"X-OVN-Network-ID: {forged}\r\n" if forged else ""
        req = (
            f"GET /openstack/latest/meta_data.json?expect={t.net_id} HTTP/1.1\r\n"
            f"Host: 169.254.169.254\r\n{extra}Connection: close\r\n\r\n"
        ).encode()
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(s, META)
                await loop.sock_sendall(s, req)
                out = b""
                while data := await loop.sock_recv(s, 65536):
                    out += data
        except (OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
    head, _, body = out.partition(b"\r\n\r\n")
    if head.startswith(b"HTTP/1.1 200 ") and body == t.net_id.encode():
        return "ok"
    if head.startswith(b"HTTP/1.1 403 "):
        return f"wrong: {t.ns}"
    return f"bad answer: {out[:60]!r}"


async def until_served(nsx: Netns, t: Tenant, limit: float = 60.0, every: float = 0.01) -> float:
    """Seconds from T's creation to its first good answer (polling every `every` s)."""
    deadline = time.monotonic() + limit
    while True:
        if await ask(nsx, t, timeout=1.0) == "ok":
            t.first_answer = time.monotonic()
            return t.first_answer - t.t_created
        if time.monotonic() > deadline:
            raise TimeoutError(f"{t.ns} not served after {limit}s")
        await asyncio.sleep(every)


async def all_served(
    nsx: Netns, tenants: list[Tenant], t0: float, limit: float = 120.0
) -> list[float]:
    """Seconds from t0 until each tenant first answers: rounds over those not served yet.

    At most 32 requests are in flight, so that the bench does not take the CPU the proxies
    need while they start.
    """
    sem = asyncio.Semaphore(32)
    when: dict[str, float] = {}

    async def one(t: Tenant) -> None:
        async with sem:
            if await ask(nsx, t, timeout=1.0) == "ok":
                when[t.ns] = time.monotonic() - t0

    while len(when) < len(tenants):
        if time.monotonic() - t0 > limit:
            raise TimeoutError(f"{len(tenants) - len(when)} namespaces not served after {limit}s")
        await asyncio.gather(*(one(t) for t in tenants if t.ns not in when))
        await asyncio.sleep(0.02)
    return list(when.values())


# -- proxies ----------------------------------------------------------------------------------
def proc_stat(pid: int) -> tuple[int, float]:
    """(VmRSS bytes, CPU seconds on record in /proc/PID/schedstat) of a process; 0s once gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cpu_ns = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0, 0.0
    m = re.search(r"VmRSS:\s+(\d+)", status)
    return (int(m.group(1)) * 1024 if m else 0), cpu_ns / 1e9  # a zombie has no VmRSS


def mem_available() -> int:
    m = re.search(r"MemAvailable:\s+(\d+)", Path("/proc/meminfo").read_text())
    return int(m.group(1)) * 1024 if m else 0


class Kind:
    """One way of serving the tenants: start, serve a new namespace, forget one, stop."""

    name = ""

    def pids(self) -> list[int]:
        raise NotImplementedError

    async def start(self, tenants: list[Tenant]) -> None:
        raise NotImplementedError

    async def added(self, t: Tenant) -> None:
        """What the agent does after creating the namespace (HAProxy: start its process)."""

    async def removing(self, t: Tenant) -> None:
        """What the agent does before deleting the namespace (HAProxy: stop its process)."""

    def stop(self) -> None:
        raise NotImplementedError

    def usage(self) -> tuple[int, float]:
        rss, cpu = 0, 0.0
        for pid in self.pids():
            r, c = proc_stat(pid)
            rss, cpu = rss + r, cpu + c
        return rss, cpu


class NsProxy(Kind):
    name = "nsproxy"

    def __init__(self, work: str, agent: str, log: str, compile_each_start: bool = False) -> None:
        self.compile_each_start = compile_each_start
        if not compile_each_start:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "nsproxy")],
                check=True,
                env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            )
        text = (ROOT / "examples" / "ovn-metadata.cfg").read_text()
        text = text.replace("ovnmeta-*", f"{PREFIX}ovnmeta-*")
        text = text.replace("regsub(^ovnmeta-,)", f"regsub(^{PREFIX}ovnmeta-,)")
        text = text.replace("/var/lib/neutron/metadata_proxy", agent)
        text = text.replace("log stdout format raw local0", f"log {log} local0 info")
        self.cfg = os.path.join(work, "nsproxy.cfg")
        Path(self.cfg).write_text(text)
        self.out = os.path.join(work, "nsproxy.out")
        self.proc: subprocess.Popen[bytes] | None = None

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    async def start(self, tenants: list[Tenant]) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        if not self.compile_each_start:
            # as an installed package runs: from its bytecode cache (compiled before the clock)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nsproxy", "-db", "-f", self.cfg],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def fds(self) -> int:
        assert self.proc is not None
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class HaproxyEach(Kind):
    name = "HAProxy x N"

    def __init__(self, work: str, agent: str, log: str, haproxy: str) -> None:
        self.work, self.agent, self.log, self.haproxy = work, agent, log, haproxy
        self.pid_of: dict[str, int] = {}
        self.gone: list[int] = []

    def pids(self) -> list[int]:
        return list(self.pid_of.values())

    async def added(self, t: Tenant) -> None:
        if mem_available() < MIN_FREE:
            raise RuntimeError(f"stopping: less than {MIN_FREE >> 20} MiB of memory left")
        pidfile = os.path.join(self.work, f"{t.net_id}.pid")
        cfg = os.path.join(self.work, f"{t.net_id}.conf")
        Path(cfg).write_text(
            HAPROXY_TEMPLATE.format(
                log=self.log, net_id=t.net_id, pidfile=pidfile, agent=self.agent
            )
        )
        await ash("ip", "netns", "exec", t.ns, self.haproxy, "-f", cfg)
        self.pid_of[t.ns] = int(Path(pidfile).read_text().split()[0])

    async def start(self, tenants: list[Tenant]) -> None:
        sem = asyncio.Semaphore(16)

        async def one(t: Tenant) -> None:
            async with sem:
                await self.added(t)

        await asyncio.gather(*(one(t) for t in tenants))

    async def removing(self, t: Tenant) -> None:
        pid = self.pid_of.pop(t.ns, None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            self.gone.append(pid)

    def stop(self) -> None:
        for pid in [*self.pid_of.values(), *self.gone]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self.pid_of.clear()

    def alive_gone(self) -> int:
        """Processes stopped by the churn that still run (each would hold its fds)."""
        return sum(1 for pid in self.gone if proc_stat(pid)[0])


class LogSink:
    """A UNIX datagram socket the proxies log to (as to syslog); counts the lines."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.lines = 0
        self.with_netns = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                msg = self.sock.recv(65536)
            except OSError:
                return
            self.lines += 1
            self.with_netns += b" netns=" in msg


# -- the phases -------------------------------------------------------------------------------
async def load(nsx: Netns, tenants: list[Tenant], total: int, conc: int) -> tuple[Tally, float]:
    tally = Tally()
    todo = iter(range(total))

    async def worker() -> None:
        for i in todo:
            tally.add(await ask(nsx, tenants[i % len(tenants)]))

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return tally, time.monotonic() - t0


async def churn(
    nsx: Netns, kind: Kind, steady: list[Tenant], seconds: float, rate: float, born: list[Tenant]
) -> dict[str, object]:
    """`rate` namespaces/s created and, one second later, removed, while all live ones ask."""
    tally = Tally()
    delays: list[float] = []
    after_address: list[float] = []
    stop = asyncio.Event()
    live: list[Tenant] = []

    async def steady_traffic(k: int) -> None:
        i = k
        while not stop.is_set():
            tally.add(await ask(nsx, steady[i % len(steady)]))
            i += 7

    async def one_tenant() -> None:
        t = Tenant.new("c-")
        born.append(t)
        await t.create()
        await kind.added(t)
        delays.append(await until_served(nsx, t, 10.0))
        after_address.append(time.monotonic() - t.t_address)
        live.append(t)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            tally.add(await ask(nsx, t))
            await asyncio.sleep(0.05)
        live.remove(t)
        await kind.removing(t)
        t.close_fd()
        await ash("ip", "netns", "del", t.ns)

    traffic = [asyncio.ensure_future(steady_traffic(k)) for k in range(8)]
    tasks = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        tasks.append(asyncio.ensure_future(one_tenant()))
        await asyncio.sleep(1.0 / rate)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    stop.set()
    await asyncio.gather(*traffic)
    problems = [repr(r) for r in results if isinstance(r, BaseException)]
    return {
        "namespaces": len(tasks),
        "requests": tally.ok + tally.failed + tally.wrong,
        "failed": tally.failed,
        "wrong": tally.wrong,
        "errors": tally.errors + problems[:5],
        "not_served": len(problems),
        "first_answer_p50": statistics.median(delays) if delays else None,
        "first_answer_max": max(delays) if delays else None,
        "address_to_answer_p50": statistics.median(after_address) if delays else None,
        "address_to_answer_max": max(after_address) if delays else None,
        "first_answers": sorted(round(d, 3) for d in delays),
    }


async def run_kind(
    nsx: Netns, kind: Kind, tenants: list[Tenant], args: argparse.Namespace, born: list[Tenant]
) -> dict[str, object]:
    out: dict[str, object] = {"kind": kind.name, "n": len(tenants)}
    for t in tenants:
        t.t_created = time.monotonic()
    t0 = time.monotonic()
    await kind.start(tenants)
    for t in tenants:
        t.t_created = t0
    waits = await all_served(nsx, tenants, t0)
    out["startup_all_s"] = max(waits)
    out["startup_cpu_s"] = kind.usage()[1]  # what starting took, whatever else ran meanwhile
    await asyncio.sleep(1.0)  # let the last listeners settle before RSS is read
    rss, cpu0 = kind.usage()
    out["rss_mb"] = rss / 1e6
    out["processes"] = len(kind.pids())
    forged = await ask(nsx, tenants[0], forged=tenants[-1].net_id)
    out["forged_id_reaches_agent"] = forged != "ok"
    tally, wall = await load(nsx, tenants, args.requests, args.concurrency)
    _, cpu1 = kind.usage()
    out.update(
        requests=args.requests,
        load_failed=tally.failed + tally.wrong,
        req_per_s=args.requests / wall,
        cpu_s=cpu1 - cpu0,
        cpu_ms_per_req=(cpu1 - cpu0) * 1000 / args.requests,
    )
    if args.seconds > 0:
        fds0 = kind.fds() if isinstance(kind, NsProxy) else None
        out["churn"] = await churn(nsx, kind, tenants, args.seconds, args.rate, born)
        if isinstance(kind, NsProxy) and fds0 is not None:
            deadline = time.monotonic() + 5
            while kind.fds() > fds0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            out["leaked_fds"] = max(0, kind.fds() - fds0)
        if isinstance(kind, HaproxyEach):
            await asyncio.sleep(1.0)
            out["leaked_processes"] = kind.alive_gone()
    kind.stop()
    return out


def print_results(everything: list[dict[str, object]]) -> None:
    print(json.dumps(everything, indent=2, default=str))
    results = [r for r in everything if r["kind"] != "agent"]
    keys = [
        ("startup_all_s", "startup all served (s)", "{:.2f}"),
        ("startup_cpu_s", "startup CPU (s)", "{:.2f}"),
        ("rss_mb", "RSS total (MB)", "{:.1f}"),
        ("processes", "processes", "{}"),
        ("req_per_s", "requests/s (all tenants)", "{:.0f}"),
        ("cpu_ms_per_req", "proxy CPU ms/request", "{:.3f}"),
        ("load_failed", "failed requests (load)", "{}"),
        ("forged_id_reaches_agent", "VM's forged ID reaches agent", "{}"),
    ]
    print(f"\n{'':32}" + "".join(f"{r['kind']:>16}" for r in results))
    for key, label, fmt in keys:
        print(f"{label:32}" + "".join(f"{fmt.format(r.get(key)):>16}" for r in results))
    for key, label in (
        ("namespaces", "churn: namespaces made+removed"),
        ("requests", "churn: requests to live tenants"),
        ("failed", "churn: failed"),
        ("wrong", "churn: wrong network ID"),
        ("first_answer_p50", "churn: creation->answer p50 s"),
        ("first_answer_max", "churn: creation->answer max s"),
        ("address_to_answer_p50", "churn: address->answer p50 s"),
        ("address_to_answer_max", "churn: address->answer max s"),
    ):
        vals = [r["churn"].get(key) if isinstance(r.get("churn"), dict) else None for r in results]
        print(f"{label:32}" + "".join(f"{_short(v)!s:>16}" for v in vals))
    agent = next(r for r in everything if r["kind"] == "agent")
    print(
        f"agent: {agent['ok']} requests with their own network's ID, {agent['wrong']} with "
        "another ID or several (the forged-ID checks above count there)"
    )
    for r in results:
        for key in ("leaked_fds", "leaked_processes"):
            if key in r:
                print(f"{r['kind']}: {key} = {r[key]}")


def _short(v: object) -> object:
    return round(v, 3) if isinstance(v, float) else v


async def bench(args: argparse.Namespace, work: str, born: list[Tenant]) -> list[dict[str, object]]:
    agent_path = os.path.join(work, "metadata_proxy")
    log_path = os.path.join(work, "log")
    sink = LogSink(log_path)
    report = os.path.join(work, "agent.json")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    agent = subprocess.Popen(
        [sys.executable, __file__, "--agent", agent_path, "--report", report], env=env
    )
    nsx = Netns()
    results = []
    try:
        while not os.path.exists(agent_path):
            await asyncio.sleep(0.01)
        tenants = [Tenant.new() for _ in range(args.n)]
        born.extend(tenants)
        sem = asyncio.Semaphore(16)

        async def make(t: Tenant) -> None:
            async with sem:
                await t.create()

        t0 = time.monotonic()
        await asyncio.gather(*(make(t) for t in tenants))
        print(f"{args.n} namespaces made in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        kinds: list[Kind] = [NsProxy(work, agent_path, log_path, args.no_bytecode)]
        if args.haproxy_n:
            kinds.append(HaproxyEach(work, agent_path, log_path, args.haproxy))
        for kind in kinds:
            subset = tenants if isinstance(kind, NsProxy) else tenants[: args.haproxy_n]
            try:
                results.append(await run_kind(nsx, kind, subset, args, born))
            finally:
                kind.stop()
            print(f"{kind.name} done", file=sys.stderr)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    agent_counts = json.loads(Path(report).read_text())
    results.append({"kind": "agent", **agent_counts, "log_lines": sink.lines})
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=100, help="namespaces (default 100)")
    p.add_argument(
        "--haproxy-n",
        type=int,
        default=None,
        help="namespaces given one HAProxy each (default: --n; 0: no HAProxy side)",
    )
    p.add_argument("--no-haproxy", action="store_true", help="same as --haproxy-n 0")
    p.add_argument("--seconds", type=float, default=10.0, help="churn length (max 60, 0: none)")
    p.add_argument("--rate", type=float, default=10.0, help="namespaces/s during churn")
    p.add_argument("--requests", type=int, default=5000, help="requests in the load phase")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    p.add_argument(
        "--no-bytecode",
        action="store_true",
        help="nsproxy compiles its sources at start (no __pycache__), as under "
        "PYTHONDONTWRITEBYTECODE=1",
    )
    p.add_argument("--json", help="also write the results there")
    p.add_argument("--agent", help=argparse.SUPPRESS)
    p.add_argument("--report", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.agent:
        agent_main(args.agent, args.report)
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root: it makes network namespaces")
    args.seconds = min(max(args.seconds, 0.0), MAX_SECONDS)
    args.haproxy_n = (
        0 if args.no_haproxy else (args.n if args.haproxy_n is None else args.haproxy_n)
    )
    args.haproxy_n = min(args.haproxy_n, args.n)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 1 << 20)), hard))
    born: list[Tenant] = []
    work = tempfile.mkdtemp(prefix="nspm-")
    os.chmod(work, 0o755)
    try:
        results: list[dict[str, object]] = []

        async def go() -> None:
            results.extend(await bench(args, work, born))

        asyncio.run(go())
        print_results(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    finally:
        for t in born:
            t.close_fd()
        left = [ln.split()[0] for ln in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False
        ).stdout.splitlines() if ln.startswith(PREFIX)]  # fmt: skip
        for ns in left:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
