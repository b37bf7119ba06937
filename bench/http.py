"""HTTP/1.1 and rules benchmark: the same loads through HAProxy and nsproxy, with ratios (root)."""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    HAPROXY,
    Row,
    Topology,
    cpu_split,
    profilers,
    rss_kib,
    running_proxy,
    sh,
)

WEB = 8080  # nginx in the server namespace
HTTP_FRONT = 18081  # mode http frontend (httplog, forwardfor, set-header)
IDLE_FRONT = 18084  # the same with http-server-close: 10k idle clients without 10k server fds
TCP_PLAIN = 18082  # mode tcp frontend, no rules
TCP_RULES = 18083  # mode tcp frontend, five ACL rules and one map lookup
TCP_ONE = 18085  # mode tcp frontend, one `tcp-request connection accept` without condition
IDLE_CONNS = 9_900  # HAProxy needs 2 fds per maxconn; the hard fd limit here is 20000
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: nsp-bench\r\n\r\n"
BODY = b"hello from nginx\n"


def start_origin(topo: Topology) -> None:
    """nginx (one worker, keep-alive without limit) answering `200 hello` in the server netns."""
    conf = os.path.join(topo.tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            f"""worker_processes 1;
daemon off;
pid {topo.tmp}/nginx.pid;
error_log {topo.tmp}/nginx-error.log;
worker_rlimit_nofile 19000;
events {{ worker_connections 18000; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{WEB} backlog=4096;
    location / {{ return 200 "hello from nginx\\n"; }}
  }}
}}
"""
        )
    nginx = topo.spawn(
        topo.srv, "nginx", "-p", topo.tmp, "-e", f"{topo.tmp}/nginx-error.log", "-c", conf,
        log="nginx.log",
    )  # fmt: skip
    topo.wait_listening(topo.srv, WEB, nginx)


def proxy_config(topo: Topology, workers: int, mapfile: str) -> str:
    """One text for both proxies: an HTTP frontend and two TCP frontends (plain, with rules)."""
    return f"""global
  maxconn 9990
  nbthread {workers}
  log stdout format raw local0

defaults
  log global
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
  timeout http-request 120s
  backlog 4096

frontend fe_http
  mode http
  option httplog
  option forwardfor
  http-request set-header X-Bench nsp
  bind 127.0.0.1:{HTTP_FRONT} namespace {topo.cli}
  default_backend be_http

backend be_http
  mode http
  server s1 127.0.0.1:{WEB} namespace {topo.srv}

frontend fe_idle
  mode http
  option httplog
  option forwardfor
  option http-server-close
  http-request set-header X-Bench nsp
  bind 127.0.0.1:{IDLE_FRONT} namespace {topo.cli}
  default_backend be_http

frontend fe_plain
  mode tcp
  bind 127.0.0.1:{TCP_PLAIN} namespace {topo.cli}
  default_backend be_tcp

frontend fe_rules
  mode tcp
  bind 127.0.0.1:{TCP_RULES} namespace {topo.cli}
  acl from_lan src 10.0.0.0/8 192.168.0.0/16
  acl low_port dst_port 1-1023
  acl banned src 172.16.9.9 172.16.9.10
  tcp-request connection reject if from_lan low_port
  tcp-request connection reject if banned
  tcp-request connection reject if {{ src_port 0 }}
  tcp-request connection reject if {{ dst 10.9.9.9 }}
  tcp-request connection accept if {{ src 127.0.0.0/8 }}
  use_backend %[src,map_ip({mapfile},be_tcp)]
  default_backend be_tcp

frontend fe_one
  mode tcp
  bind 127.0.0.1:{TCP_ONE} namespace {topo.cli}
  tcp-request connection accept
  default_backend be_tcp

backend be_tcp
  mode tcp
  server s1 127.0.0.1:{WEB} namespace {topo.srv}

backend be_other
  mode tcp
  server s1 127.0.0.1:{WEB} namespace {topo.srv}
"""


FRONTS = (HTTP_FRONT, IDLE_FRONT, TCP_PLAIN, TCP_RULES, TCP_ONE)


def wrk(
    topo: Topology, pid: int, port: int, conns: int, seconds: int, close: bool
) -> dict[str, float]:
    """A bounded wrk load from the client namespace; requests/s and proxy CPU s per 10k."""
    hdr = ["-H", "Connection: close"] if close else []
    user0, sys0 = cpu_split(pid)
    out = sh(
        "ip", "netns", "exec", topo.cli, "wrk", "-t2", f"-c{conns}", f"-d{seconds}s",
        *hdr, f"http://127.0.0.1:{port}/",
    )  # fmt: skip
    user1, sys1 = cpu_split(pid)
    cpu = user1 - user0 + sys1 - sys0
    reqs = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = sum(int(x) for x in errs.groups()) if errs else 0
    errors += int(non2xx.group(1)) if non2xx else 0
    return {
        "rps": reqs / seconds,
        "cpu_s_per_10k": cpu / (reqs / 10000) if reqs else 0.0,
        "us_per_req": cpu / reqs * 1e6 if reqs else 0.0,
        "user_us": (user1 - user0) / reqs * 1e6 if reqs else 0.0,
        "sys_us": (sys1 - sys0) / reqs * 1e6 if reqs else 0.0,
        "errors": float(errors),
    }


def read_answer(s: socket.socket) -> None:
    buf = b""
    deadline = time.monotonic() + 10
    while not buf.endswith(BODY):
        data = s.recv(4096)
        if not data or time.monotonic() > deadline:
            raise RuntimeError(f"no complete answer through the proxy: {buf!r}")
        buf += data


def idle_keepalive(topo: Topology, pid: int, n: int) -> dict[str, float]:
    """n client connections, each after one answered request, held idle; RSS per connection."""
    time.sleep(0.5)
    base = rss_kib(pid)
    clients: list[socket.socket] = []
    try:
        for s in topo.sockets_in(topo.cli, n):
            clients.append(s)
            s.settimeout(10)
            s.connect(("127.0.0.1", IDLE_FRONT))
            s.sendall(REQUEST)
            read_answer(s)
        time.sleep(1.0)
        rss = rss_kib(pid)
        # every connection must still be open and usable: one more request on a sample of them
        for s in clients[:: max(1, n // 50)]:
            s.sendall(REQUEST)
            read_answer(s)
        return {
            "held": float(len(clients)),
            "rss_mib": rss / 1024,
            "kib_per_conn": (rss - base) / n,
        }
    finally:
        for s in clients:
            s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=1, help="nbthread for both proxies")
    ap.add_argument("--seconds", type=int, default=8, help="length of each wrk load")
    ap.add_argument("--runs", type=int, default=1, help="repeat the wrk loads, keep medians")
    ap.add_argument(
        "--only",
        choices=("keepalive", "close", "idle", "rules"),
        help="parts to run (close = HTTP and TCP one request per connection)",
        action="append",
    )
    ap.add_argument("--proxies", default="haproxy,nsproxy")
    ap.add_argument("--profile", metavar="DIR", help="py-spy record nsproxy into DIR (raw)")
    ap.add_argument("--perf", metavar="DIR", help="perf record -g both proxies into DIR")
    ap.add_argument("--syscalls", metavar="DIR", help="strace -c both proxies into DIR (slow)")
    ap.add_argument(
        "--sysrate", metavar="DIR", help="perf stat syscall counts of both proxies into DIR"
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/http.py needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("wrk", "nginx", HAPROXY):
        if shutil.which(tool) is None:
            print(f"missing {tool}: apt-get install wrk nginx-light haproxy", file=sys.stderr)
            return 2
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    kinds = args.proxies.split(",")
    parts = args.only or ["keepalive", "close", "idle", "rules"]
    rows: dict[str, Row] = {}
    samples: dict[tuple[str, str], list[float]] = {}

    def record(key: str, unit: str, kind: str, value: float) -> None:
        samples.setdefault((key, kind), []).append(value)
        rows.setdefault(key, Row(key, unit)).values[kind] = statistics.median(samples[(key, kind)])

    topo = Topology(prefix=f"nsph-{os.getpid()}")
    started = time.monotonic()
    secs = args.seconds
    try:
        topo.up()
        start_origin(topo)
        mapfile = os.path.join(topo.tmp, "src.map")
        with open(mapfile, "w") as f:
            f.write("10.0.0.0/8 be_other\n192.168.1.0/24 be_other\n127.0.0.0/8 be_tcp\n")
        steps: list[tuple[str, Callable[[str, int], None]]] = []
        if "keepalive" in parts:

            def keepalive(kind: str, pid: int) -> None:
                r = wrk(topo, pid, HTTP_FRONT, 50, secs, close=False)
                record("keep-alive requests, c=50", "req/s", kind, r["rps"])
                record("CPU per 10k keep-alive requests", "CPU s/10k", kind, r["cpu_s_per_10k"])
                record("  user CPU per keep-alive request", "µs", kind, r["user_us"])
                record("  system CPU per keep-alive request", "µs", kind, r["sys_us"])
                record("errors keep-alive", "count", kind, r["errors"])

            steps.append(("HTTP keep-alive", keepalive))
        if "close" in parts:

            def close(kind: str, pid: int) -> None:
                r = wrk(topo, pid, HTTP_FRONT, 50, secs, close=True)
                record("HTTP one request per conn, c=50", "req/s", kind, r["rps"])
                record("CPU per 10k HTTP conns", "CPU s/10k", kind, r["cpu_s_per_10k"])
                record("  user CPU per HTTP conn", "µs", kind, r["user_us"])
                record("  system CPU per HTTP conn", "µs", kind, r["sys_us"])
                record("errors HTTP close", "count", kind, r["errors"])

            def tcp(kind: str, pid: int) -> None:
                r = wrk(topo, pid, TCP_PLAIN, 50, secs, close=True)
                record("TCP short conns, c=50", "conn/s", kind, r["rps"])
                record("CPU per 10k TCP conns", "CPU s/10k", kind, r["cpu_s_per_10k"])
                record("  user CPU per TCP conn", "µs", kind, r["user_us"])
                record("  system CPU per TCP conn", "µs", kind, r["sys_us"])

            steps.append(("HTTP one request per connection", close))
            steps.append(("TCP short connections", tcp))
        if "rules" in parts:

            def rules(kind: str, pid: int) -> None:
                plain: list[float] = []
                one: list[float] = []
                ruled: list[float] = []
                for _ in range(2):  # alternate, so drift hits all three alike
                    for port, out in ((TCP_PLAIN, plain), (TCP_ONE, one), (TCP_RULES, ruled)):
                        out.append(wrk(topo, pid, port, 50, secs, close=True)["us_per_req"])
                p, o, r = (statistics.median(x) for x in (plain, one, ruled))
                record("CPU per TCP conn, no rules", "µs", kind, p)
                record("CPU per TCP conn, 1 rule, no ACL", "µs", kind, o)
                record("CPU per TCP conn, 5 ACL rules + map", "µs", kind, r)
                record("1 rule cost per conn", "µs", kind, o - p)
                record("5 ACL rules + map cost per conn", "µs", kind, r - p)

            steps.append(("TCP rules", rules))
        idle_steps: list[tuple[str, Callable[[str, int], None]]] = []
        if "idle" in parts:

            def idle(kind: str, pid: int) -> None:
                r = idle_keepalive(topo, pid, IDLE_CONNS)
                record(f"idle keep-alive conns held (of {IDLE_CONNS})", "conns", kind, r["held"])
                record(f"RSS with {IDLE_CONNS} idle keep-alive", "MiB", kind, r["rss_mib"])
                record("RSS per idle keep-alive conn", "KiB", kind, r["kib_per_conn"])

            idle_steps.append(("idle keep-alive", idle))
        cfg = proxy_config(topo, args.workers, mapfile)
        for run in range(args.runs):
            for title, fn in steps + (idle_steps if run == 0 else []):
                for kind in kinds:
                    print(f"# {title} (run {run + 1}): {kind} ...", flush=True)
                    fronts = (HTTP_FRONT,) if kind == "floor" else FRONTS
                    with running_proxy(topo, kind, cfg, fronts) as pid:
                        spies = profilers(args, kind, pid, title) if run == 0 else []
                        fn(kind, pid)
                        for spy in spies:
                            spy.send_signal(signal.SIGINT)
                            spy.wait(30)
    finally:
        topo.down()
    load = os.getloadavg()
    print()
    print(
        f"nbthread {args.workers}, {secs} s per wrk load, median of {args.runs} run(s), "
        f"{time.monotonic() - started:.0f} s in all, load average {load[0]:.2f} {load[1]:.2f}; "
        "ratio = nsproxy / HAProxy; rules cost = difference within one proxy"
    )
    print(f"| {'figure':<34} | {'unit':<10} | {'HAProxy':>10} | {'nsproxy':>10} | ratio   |")
    print(f"|{'-' * 36}|{'-' * 12}|{'-' * 12}|{'-' * 12}|---------|")
    for row in rows.values():
        print(row.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
