"""Runs the seed's three examples exactly as written (names and addresses) in a private lab.

A private mount namespace gets its own /var/run/netns, so the namespaces "host", "netns1" and
"netns2" exist only for this run and never clash with the machine's. nsproxy runs inside "host"
(its default namespace), so 192.168.1.x addresses live only in namespaces made here.

    sudo .venv/bin/python scripts/seed_lab.py        # prints what each example did
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLONE_NEWNET = 0x40000000


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


def socket_in(ns: str) -> socket.socket:
    """A TCP socket created inside namespace `ns` by a short-lived thread."""
    box: list[socket.socket | BaseException] = []

    def work() -> None:
        try:
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                os.setns(fd, CLONE_NEWNET) if hasattr(os, "setns") else _libc_setns(fd)
            finally:
                os.close(fd)
            box.append(socket.socket())
        except BaseException as exc:
            box.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _libc_setns(fd: int) -> None:
    import ctypes

    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def server(ns: str, addr: tuple[str, int], name: str, seen: list[str]) -> socket.socket:
    """Answers "<name> saw <peer>" to each connection and records the peer."""
    s = socket_in(ns)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    s.listen(16)

    def loop() -> None:
        while True:
            try:
                c, peer = s.accept()
            except OSError:
                return
            with c:
                seen.append(f"{name} saw {peer[0]}")
                while c.recv(4096):  # the whole request, up to the client's FIN
                    pass
                c.sendall(f"{name} saw {peer[0]}:{peer[1]}\n".encode())

    threading.Thread(target=loop, daemon=True).start()
    return s


def ask(ns: str, addr: tuple[str, int], payload: bytes = b"", tries: int = 100) -> str:
    for _ in range(tries):
        c = socket_in(ns)
        c.settimeout(5)
        try:
            c.connect(addr)
        except ConnectionRefusedError:
            c.close()
            time.sleep(0.05)
            continue
        with c:
            c.sendall(payload or b"hello")
            c.shutdown(socket.SHUT_WR)
            out = b""
            while chunk := c.recv(4096):
                out += chunk
            return out.decode().strip()
    raise RuntimeError(f"nothing listens on {addr} in {ns}")


def proxy_v2(src: tuple[str, int], dst: tuple[str, int], netns: bytes) -> bytes:
    body = socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) + struct.pack("!HH", src[1], dst[1])
    body += b"\x30" + struct.pack("!H", len(netns)) + netns
    sig = bytes.fromhex("0d0a0d0a000d0a515549540a")
    return sig + b"\x21\x11" + struct.pack("!H", len(body)) + body


def run_example(n: int) -> subprocess.Popen[bytes]:
    cfg = str(ROOT / "examples" / f"seed-{n}.cfg")
    check = subprocess.run(
        ["ip", "netns", "exec", "host", sys.executable, "-m", "nsproxy", "-c", "-f", cfg],
        capture_output=True,
        text=True,
    )
    print(f"nsproxy -c -f examples/seed-{n}.cfg: exit {check.returncode}, {check.stdout.strip()}")
    if check.returncode != 0:
        print(check.stderr, file=sys.stderr)
        raise SystemExit(1)
    return subprocess.Popen(
        ["ip", "netns", "exec", "host", sys.executable, "-m", "nsproxy", "-db", "-f", cfg],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def build() -> None:
    """host <-veth-> netns2, addresses as the seed uses them; netns1 exists and is listed."""
    os.makedirs("/var/run/netns", exist_ok=True)
    sh("mount", "-t", "tmpfs", "seed-lab", "/var/run/netns")
    for ns in ("host", "netns1", "netns2"):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh(
        "ip",
        "-n",
        "host",
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "eth7",
        "netns",
        "netns2",
    )
    sh("ip", "-n", "host", "addr", "add", "192.168.1.1/32", "dev", "lo")
    sh("ip", "-n", "host", "addr", "add", "192.168.1.100/32", "dev", "lo")
    sh("ip", "-n", "host", "addr", "add", "10.77.0.1/24", "dev", "eth0")
    sh("ip", "-n", "host", "link", "set", "eth0", "up")
    sh("ip", "-n", "netns2", "addr", "add", "192.168.1.1/32", "dev", "lo")
    sh("ip", "-n", "netns2", "addr", "add", "192.168.1.100/32", "dev", "lo")
    sh("ip", "-n", "netns2", "addr", "add", "10.77.0.2/24", "dev", "eth7")
    sh("ip", "-n", "netns2", "link", "set", "eth7", "up")
    # seed 3: replies to the kept client address (198.18.5.7) stay local to netns2
    sh("ip", "-n", "netns2", "route", "add", "local", "198.18.5.0/24", "dev", "lo")


def inner() -> int:
    build()
    seen: list[str] = []
    server("host", ("192.168.1.100", 80), "server in host (default namespace)", seen)
    server("netns2", ("192.168.1.100", 80), "server in netns2", seen)
    results = []
    procs = []
    try:
        procs.append(run_example(1))
        results.append(
            ("seed 1: client in netns2 -> 192.168.1.1:80", ask("netns2", ("192.168.1.1", 80)))
        )
        procs.append(run_example(2))
        results.append(
            ("seed 2: client in host -> 127.0.0.1:8080", ask("host", ("127.0.0.1", 8080)))
        )
        procs.append(run_example(3))
        header = proxy_v2(("198.18.5.7", 40000), ("192.168.1.100", 80), b"netns2")
        results.append(
            (
                "seed 3: PROXY v2 from 198.18.5.7, NETNS netns2 -> 192.168.1.1:9990",
                ask("host", ("192.168.1.1", 9990), header + b"hello"),
            )
        )
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    for what, answer in results:
        print(f"{what}\n    {answer}")
    want = (
        "server in host (default namespace) saw ",
        "server in netns2 saw ",
        "server in netns2 saw 198.18.5.7:",
    )
    ok = all(a.startswith(w) for (_, a), w in zip(results, want, strict=True))
    print("all three seed examples behaved as the seed describes" if ok else "MISMATCH")
    return 0 if ok else 1


def main() -> int:
    if os.geteuid() != 0:
        print("run as root: it creates network and mount namespaces", file=sys.stderr)
        return 1
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        return inner()
    # a private mount namespace: its /var/run/netns and namespaces vanish with it
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, __file__, "--inner"]
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
