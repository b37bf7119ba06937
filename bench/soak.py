"""Soak test: good and malicious clients across three tenant namespaces, then leak checks.

Run as root (not in CI):  .venv/bin/python bench/soak.py [--duration 180] [--workers 12]

Every good transfer must come back byte-exact; afterwards the proxy's fd count must return to
its starting value and its RSS must stay within --rss-slack MiB of the start. Exit status 1 on
any failure. The duration is capped at 600 s.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lab.netlab import Lab, Proxy, connect, free_port, lab, socket_in

SIG = bytes.fromhex("0d0a0d0a000d0a515549540a")
_RST = struct.pack("ii", 1, 0)
TENANTS = ("t1", "t2", "t3")


def v2(dst_port: int, netns: bytes) -> bytes:
    body = socket.inet_aton("10.0.0.1") + socket.inet_aton("127.0.0.1")
    body += struct.pack("!HH", 4000, dst_port) + b"\x30" + struct.pack("!H", len(netns)) + netns
    return SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def rss_kib(proxy: Proxy) -> int:
    with open(f"/proc/{proxy.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(proxy: Proxy) -> int:
    return len(os.listdir(f"/proc/{proxy.proc.pid}/fd"))


class Soak:
    """The clients; `stats` counts outcomes, `errors` holds every good transfer that failed."""

    def __init__(self, lb: Lab, proxy: Proxy, namespaces: list[str], pp_port: int) -> None:
        self.lab = lb
        self.proxy = proxy
        self.namespaces = namespaces
        self.pp_port = pp_port
        self.stats: Counter[str] = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def count(self, what: str) -> None:
        with self.lock:
            self.stats[what] += 1

    def good(self, rng: random.Random) -> None:
        ns = rng.choice(self.namespaces)
        data = rng.randbytes(rng.choice((1, 100, 4096, 65536, 1 << 20)))
        via_pp = rng.random() < 0.3
        try:
            if via_pp:
                c = connect(None, ("127.0.0.1", self.pp_port), timeout=20)
                c.sendall(v2(7000, ns.encode()))
            else:
                c = connect(ns, ("127.0.0.1", 8000), timeout=20)
            with c:
                sender = threading.Thread(target=lambda: (c.sendall(data), c.shutdown(1)))
                sender.start()
                got = bytearray()
                while chunk := c.recv(1 << 18):
                    got += chunk
                sender.join()
            want = ns.encode() + b":" + hashlib.sha256(data).hexdigest().encode()
            reply = bytes(got)
            if reply != want:
                raise AssertionError(f"reply {reply[:80]!r} != {want!r}")
            self.count("good")
        except Exception as exc:  # recorded, the soak goes on
            with self.lock:
                self.errors.append(f"good transfer via {'pp' if via_pp else ns}: {exc!r}")

    def bad(self, rng: random.Random) -> None:
        kind = rng.choice(("garbage", "slow", "rst", "unknown-ns", "idle", "huge-len"))
        self.count("bad:" + kind)
        with contextlib.suppress(OSError):
            if kind in ("rst", "idle"):
                c = connect(rng.choice(self.namespaces), ("127.0.0.1", 8000))
            else:
                c = connect(None, ("127.0.0.1", self.pp_port))
            with c:
                if kind == "garbage":
                    c.sendall(rng.randbytes(rng.randint(1, 300)))
                elif kind == "slow":
                    for byte in SIG[:6]:
                        c.sendall(bytes([byte]))
                        time.sleep(0.5)
                elif kind == "rst":
                    c.sendall(rng.randbytes(50000))
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
                    return
                elif kind == "unknown-ns":
                    c.sendall(v2(7000, b"../" + rng.choice(self.namespaces).encode()))
                elif kind == "huge-len":
                    c.sendall(SIG + b"\x21\x11\xff\xff" + b"\0" * 100)
                elif kind == "idle":
                    time.sleep(1.0)
                c.settimeout(5)
                while c.recv(65536):
                    pass


def tenant_server(ns: str) -> None:
    """Inside `ns` on 127.0.0.1:7000: replies '<ns>:<sha256 of everything received>'."""
    sock = socket_in(ns)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 7000))
    sock.listen(1024)

    def handle(c: socket.socket) -> None:
        with c, contextlib.suppress(OSError):
            h = hashlib.sha256()
            while chunk := c.recv(1 << 18):
                h.update(chunk)
            c.sendall(ns.encode() + b":" + h.hexdigest().encode())

    def serve() -> None:
        while True:
            try:
                c, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=180.0, help="seconds (max 600)")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--bad-ratio", type=float, default=0.4)
    ap.add_argument("--rss-slack", type=float, default=20.0, help="MiB of RSS growth allowed")
    args = ap.parse_args()
    duration = min(args.duration, 600.0)
    with lab() as lb:
        namespaces = [lb.netns(t) for t in TENANTS]
        for ns in namespaces:
            tenant_server(ns)
        pp_port = free_port()
        cfg = "global\n  maxconn 2000\ndefaults\n  mode tcp\n  timeout connect 2s\n"
        cfg += "  timeout client 3s\n  timeout server 10s\nnamespace_list\n"
        cfg += "".join(f"  namespace {ns}\n" for ns in namespaces)
        for i, ns in enumerate(namespaces):
            cfg += f"listen tenant{i}\n  bind 127.0.0.1:8000 namespace {ns}\n"
            cfg += f"  server s 127.0.0.1:7000 namespace {ns}\n"
        cfg += f"listen chain\n  bind 127.0.0.1:{pp_port} accept-proxy\n"
        cfg += "  option reject-unknown-netns\n  server s * namespace *\n"
        proxy = lb.proxy(cfg)
        soak = Soak(lb, proxy, namespaces, pp_port)
        warm = random.Random(0)
        for _ in range(20):
            soak.good(warm)
        time.sleep(0.5)
        fd0, rss0 = fds(proxy), rss_kib(proxy)
        deadline = time.monotonic() + duration

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                (soak.bad if rng.random() < args.bad_ratio else soak.good)(rng)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        settle = time.monotonic() + 30
        while fds(proxy) != fd0 and time.monotonic() < settle:
            time.sleep(0.2)
        fd1, rss1 = fds(proxy), rss_kib(proxy)
        alive = proxy.proc.poll() is None
    print(f"duration {duration:.0f}s, workers {args.workers}: {dict(sorted(soak.stats.items()))}")
    print(f"fds {fd0} -> {fd1}; RSS {rss0} KiB -> {rss1} KiB; proxy alive: {alive}")
    failures = list(soak.errors)
    if fd1 != fd0:
        failures.append(f"fd count {fd0} -> {fd1}")
    if rss1 - rss0 > args.rss_slack * 1024:
        failures.append(f"RSS grew by {(rss1 - rss0) / 1024:.1f} MiB")
    if not alive:
        failures.append("the proxy died")
    for f in failures[:20]:
        print("FAIL:", f)
    print("OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
