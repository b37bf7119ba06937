"""TLS termination benchmark, nsproxy against HAProxy 2.6 in the same run, same certificate.

Full handshakes/s and resumed handshakes/s (`openssl s_time -new` / `-reuse`, several in
parallel), and the bulk throughput of one terminated connection (a Python TLS client sending
to a sink behind the proxy); proxy CPU per handshake and per GB. Loopback only; every load is
bounded in time. Run as: PYTHONPATH=src .venv/bin/python bench/tls.py [--seconds S]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import trustme

HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """A server that reads and drops everything, one selector thread."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        buf = bytearray(1 << 18)
        while not self.stop:
            for key, _ in self.sel.select(0.2):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                if s is self.sock:
                    with contextlib.suppress(BlockingIOError):
                        while True:
                            c, _ = self.sock.accept()
                            c.setblocking(False)
                            self.sel.register(c, selectors.EVENT_READ)
                    continue
                try:
                    n = s.recv_into(buf)
                except BlockingIOError:
                    continue
                except OSError:
                    n = 0
                if not n:
                    self.sel.unregister(s)
                    s.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.sock.close()


CONFIG = """global
  nbthread 1
  maxconn 4000
  tune.ssl.cachesize 20000
defaults
  mode tcp
  timeout client 30s
  timeout server 30s
  timeout connect 5s
listen tls
  bind 127.0.0.1:{port} ssl crt {crt}
  server s1 127.0.0.1:{sink}
"""


@contextlib.contextmanager
def proxy(kind: str, cfg: str, port: int) -> Iterator[int]:
    d = tempfile.mkdtemp(prefix="nsp-tlsbench-")
    path = os.path.join(d, "p.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    if kind == "haproxy":
        cmd = [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", path]
    else:
        cmd = [sys.executable, "-m", "nsproxy", "-db", "-f", path]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{kind} did not start")
            time.sleep(0.05)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


# (s_time's -reuse resumes by session ID, which needs TLS 1.2: in TLS 1.3 the ticket comes
# after the handshake and s_time never reads it)
RUNS = (
    ("full TLSv1.3", ("-new", "-tls1_3")),
    ("full TLSv1.2", ("-new", "-tls1_2")),
    ("resumed TLSv1.2", ("-reuse", "-tls1_2")),
)


def s_time(port: int, mode: tuple[str, ...], seconds: int, parallel: int, ca: str) -> float:
    """Handshakes per second over `parallel` openssl s_time clients."""
    cmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", *mode, "-time", str(seconds)]
    cmd += ["-CAfile", ca]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(parallel)
    ]
    total = 0.0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 30)
        m = re.search(r"(\d+) connections in (\d+) real seconds", out)
        if m:
            total += int(m.group(1)) / max(int(m.group(2)), 1)
    return total


def bulk(port: int, seconds: int, ca: str) -> tuple[float, int]:
    """Bytes/s sent through one terminated connection for `seconds`; bytes sent."""
    ctx = ssl.create_default_context(cafile=ca)
    chunk = os.urandom(1 << 16)
    sent = 0
    raw = socket.create_connection(("127.0.0.1", port))
    with ctx.wrap_socket(raw, server_hostname="bench.example.com") as c:
        t0 = time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            c.sendall(chunk)
            sent += len(chunk)
        elapsed = time.monotonic() - t0
    return sent / elapsed, sent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--parallel", type=int, default=2, help="s_time clients at once")
    ap.add_argument("--proxies", default="haproxy,nsproxy")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="nsp-tlsbench-pki-")
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    cert = ca.issue_cert("bench.example.com", key_type=trustme.KeyType.RSA)
    crt = os.path.join(d, "bench.pem")
    ca_file = os.path.join(d, "ca.pem")
    cert.private_key_and_cert_chain_pem.write_to_path(crt)
    ca.cert_pem.write_to_path(ca_file)
    sink = Sink()
    results: dict[str, dict[str, float]] = {}
    try:
        for kind in args.proxies.split(","):
            port = free_port()
            cfg = CONFIG.format(port=port, crt=crt, sink=sink.port)
            r: dict[str, float] = {}
            with proxy(kind, cfg, port) as pid:
                for name, mode in RUNS:
                    c0 = cpu_seconds(pid)
                    rate = s_time(port, mode, args.seconds, args.parallel, ca_file)
                    cpu = cpu_seconds(pid) - c0
                    r[f"{name} handshakes/s"] = rate
                    n = rate * args.seconds
                    r[f"{name} CPU ms/handshake"] = 1000 * cpu / n if n else 0.0
                c0 = cpu_seconds(pid)
                bps, sent = bulk(port, args.seconds, ca_file)
                cpu = cpu_seconds(pid) - c0
                r["bulk MB/s"] = bps / 1e6
                r["bulk CPU s/GB"] = cpu / (sent / 1e9)
            results[kind] = r
    finally:
        sink.close()
        shutil.rmtree(d, ignore_errors=True)
    keys = list(next(iter(results.values())).keys())
    kinds = list(results)
    print(f"{'figure':<28}" + "".join(f"{k:>12}" for k in kinds) + "   ratio nsproxy/haproxy")
    for key in keys:
        vals = [results[k][key] for k in kinds]
        line = f"{key:<28}" + "".join(f"{v:>12.2f}" for v in vals)
        if "haproxy" in results and "nsproxy" in results and results["haproxy"][key]:
            line += f"   {results['nsproxy'][key] / results['haproxy'][key]:.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
