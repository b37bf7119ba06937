"""Micro-benchmark: the CPU a tracked HTTP frontend adds per request.

Compiles the rules of a frontend with `http-request track-sc0 src` and one rate check
(`deny if { sc_http_req_rate(0) gt N }`) through the real configuration parser, then runs,
per request, what the runtime runs for it on a stub Txn: the stream's tracking slots, the
compiled rule list, the end of the transaction and the end of the stream. The untracked
frontend runs its (empty) rule list. Sources cycle over 1,000 addresses, so entries exist.

    PYTHONPATH=src python tests/stick/bench_tracking.py [iterations]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from nsproxy.config.model_http import evaluate
from nsproxy.config.parser import parse_files
from nsproxy.stick.from_config import config_tables, make_tables
from nsproxy.stick.track import StreamSticks

CONFIG = """defaults
  mode http
  timeout client 1s
  timeout server 1s
  timeout connect 1s
frontend tracked
  bind 127.0.0.1:1
  stick-table type ip size 100k expire 30s store http_req_rate(10s)
  http-request track-sc0 src
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000 }
frontend plain
  bind 127.0.0.1:2
"""


class StubTxn:
    """What the compiled rules read: the client's address and the tracking slots."""

    def __init__(self, src: tuple[str, int]) -> None:
        self.src = src
        self.sticks: StreamSticks | None = None


def measure(n: int) -> tuple[dict[str, float], int]:
    """Best-of-3 CPU microseconds per request for each frontend, and the entries made."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.cfg"
        path.write_text(CONFIG)
        config, state = parse_files([str(path)])
    assert config is not None, state.errors
    px = {p.name: p for p in config.proxies}
    tracked = px["tracked"].http.http_request  # type: ignore[union-attr]
    plain = px["plain"].http.http_request if px["plain"].http else ()
    tables = {t.name: t for t in make_tables(config_tables(config))}
    t0 = time.monotonic()

    def now() -> int:
        return int((time.monotonic() - t0) * 1000)

    txns = [StubTxn((f"10.{i // 250}.{i % 250}.1", 40000)) for i in range(1000)]

    def run_tracked() -> None:
        for i in range(n):
            txn = txns[i % 1000]
            sticks = txn.sticks = StreamSticks(tables, now)
            evaluate(tracked, txn)  # type: ignore[arg-type]
            sticks.txn_done(200, 80, 120, True, True)
            sticks.stop()

    def run_plain() -> None:
        for i in range(n):
            txn = txns[i % 1000]
            evaluate(plain, txn)  # type: ignore[arg-type]

    for fn in (run_tracked, run_plain):  # warm up (caches, first entries)
        fn()
    best: dict[str, float] = {}
    for _ in range(3):
        for name, fn in (("tracked", run_tracked), ("plain", run_plain)):
            c0 = time.process_time()
            fn()
            per = (time.process_time() - c0) / n * 1e6
            best[name] = min(best.get(name, per), per)
    return best, len(tables["tracked"])


def main(n: int) -> None:
    best, entries = measure(n)
    extra = best["tracked"] - best["plain"]
    print(f"{n} requests, best of 3 (CPU time per request)")
    print(f"  untracked frontend: {best['plain']:.2f} us")
    print(f"  tracked frontend:   {best['tracked']:.2f} us")
    print(f"  cost of tracking:   {extra:.2f} us (budget 10 us)")
    print(f"  entries: {entries}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
