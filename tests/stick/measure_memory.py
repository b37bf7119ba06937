"""Measures memory per stick-table entry: nsproxy (tracemalloc) and HAProxy 2.6 (RSS growth)."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

from nsproxy.stick.table import StickTable

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


def ours() -> float:
    t = StickTable("t", "ip", N, expire_ms=60000, store=[("conn_cur", None), ("conn_rate", 10000)])
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    now = 1_000_000
    for i in range(N):
        ts = t.get_entry(0x0A000000 + i, now + i // 1000)
        assert ts is not None
        t.start_counters(ts, now + i // 1000)
        t.stop_counters(ts, now + i // 1000)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / N


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def theirs() -> float:
    d = Path(tempfile.mkdtemp(prefix="stickmem-"))
    sock = d / "s.sock"
    (d / "h.cfg").write_text(
        f"global\n    stats socket {sock} level admin\n"
        "backend t\n"
        f"    stick-table type ip size {N} expire 60s store conn_cur,conn_rate(10s)\n"
    )
    p = subprocess.Popen(["haproxy", "-db", "-f", str(d / "h.cfg")])
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("haproxy socket")
            time.sleep(0.05)
        time.sleep(0.5)
        before = rss_kb(p.pid)
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(sock))
        s.sendall(b"prompt\n")
        done = threading.Event()

        def drain() -> None:
            while not done.is_set():
                try:
                    if not s.recv(1 << 16):
                        break
                except OSError:
                    break

        th = threading.Thread(target=drain, daemon=True)
        th.start()
        batch = []
        for i in range(N):
            a = 0x0A000000 + i
            batch.append(
                f"set table t key {a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"
                " data.conn_cur 1 data.conn_rate 1\n"
            )
            if len(batch) == 1000:
                s.sendall("".join(batch).encode())
                batch = []
        s.sendall("".join(batch).encode() + b"quit\n")
        th.join(600)
        done.set()
        s.close()
        s2 = socket.socket(socket.AF_UNIX)
        s2.connect(str(sock))
        s2.sendall(b"show table\n")
        print(s2.recv(4096).decode().strip())
        s2.close()
        after = rss_kb(p.pid)
        return (after - before) * 1024 / N
    finally:
        p.terminate()
        p.wait(10)


if __name__ == "__main__":
    o = ours()
    print(f"nsproxy: {o:.0f} bytes/entry (tracemalloc)")
    h = theirs()
    print(f"haproxy 2.6: {h:.0f} bytes/entry (RSS growth)")
    print(f"ratio: {o / h:.2f}")
