"""The lines logged on admin state changes and at a soft stop, side by side with HAProxy 2.6:
the same commands on the same configuration give the same syslog messages and levels."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

from lab.netlab import Lab, cli, free_port, wait_until

# What HAProxy 2.6 logs (measured) for each step: the command, then the lines it causes.
STEPS: list[tuple[str, list[str]]] = [
    (
        "",
        [
            '<1>Server li/s1 is DOWN, reason: Layer4 connection problem, info: "Connection '
            'refused", check duration: 0ms. 1 active and 1 backup servers left. 0 sessions '
            "active, 0 requeued, 0 remaining in queue."
        ],
    ),
    ("disable server li/s1", ["<5>Server li/s1 was DOWN and now enters maintenance."]),
    (
        "set server li/s3 state drain",
        [
            "<5>Server li/s3 enters drain state. 0 active and 1 backup servers online. Running on "
            "backup. 0 sessions requeued, 0 total in queue."
        ],
    ),
    (
        "set server li/s3 state maint",
        [
            "<5>Server li/s3 is going DOWN for maintenance. 0 active and 1 backup servers left. "
            "Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue."
        ],
    ),
    (
        "set server li/s3 state drain",
        [
            "<5>Server li/s3 is UP/DRAIN (leaving forced maintenance).",
            "<5>Server li/s3 remains in forced drain mode.",
        ],
    ),
    ("set server li/s3 state ready", ["<5>Server li/s3 is UP (leaving forced drain)."]),
    (
        "disable server li/s3",
        [
            "<1>Server li/s3 is going DOWN for maintenance. 0 active and 1 backup servers left. "
            "Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue."
        ],
    ),
    (
        "set server li/s2 state drain",
        [
            "<5>Backup Server li/s2 enters drain state. 0 active and 0 backup servers online. "
            "0 sessions requeued, 0 total in queue.",
            "<0>proxy li has no server available!",
        ],
    ),
    ("enable server li/s3", ["<5>Server li/s3 is UP/READY (leaving forced maintenance)."]),
    ("set server li/s2 state ready", ["<5>Backup Server li/s2 is UP (leaving forced drain)."]),
    ("set server li/s2 state ready", []),
    (
        "disable server b2/t1",
        [
            "<1>Server b2/t1 is going DOWN for maintenance. 0 active and 0 backup servers left. "
            "0 sessions active, 0 requeued, 0 remaining in queue.",
            "<0>backend b2 has no server available!",
        ],
    ),
    ("enable server b2/t1", ["<5>Server b2/t1 is UP/READY (leaving forced maintenance)."]),
]
STOP = [
    "<4>Proxy li stopped (cumulated conns: FE: 0, BE: 0).",
    "<4>Proxy f2 stopped (cumulated conns: FE: 1, BE: 0).",
    "<4>Proxy b2 stopped (cumulated conns: FE: 0, BE: 1).",
]


class Syslog:
    """A UDP syslog receiver: `<level>message` of each rfc3164 datagram, in arrival order."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []

    def poll(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(65536).decode()
            except BlockingIOError:
                return self.lines
            m = re.match(r"<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+\[\d+\]: (.*)", data.rstrip("\n"))
            assert m, data
            if m.group(2).startswith("Connect from"):
                continue
            msg = re.sub(r"check duration: \d+ms", "check duration: 0ms", m.group(2))
            self.lines.append(f"<{int(m.group(1)) % 8}>{msg}")

    def wait(self, n: int) -> list[str]:
        return wait_until(lambda: self.poll() if len(self.poll()) >= n else None, 10, f"{n} logs")


def config(sock: str, port: int, port2: int, log_port: int, up: int, down: int) -> str:
    return (
        f"global\n  stats socket {sock} level admin\n  log 127.0.0.1:{log_port} local0\n"
        "defaults\n  mode tcp\n  log global\n  timeout connect 1s\n  timeout client 5s\n"
        "  timeout server 5s\n"
        f"listen li\n  bind 127.0.0.1:{port}\n"
        f"  server s1 127.0.0.1:{down} check inter 60s\n"
        f"  server s2 127.0.0.1:{up} backup\n"
        f"  server s3 127.0.0.1:{up}\n"
        f"backend b2\n  server t1 127.0.0.1:{up}\n"
        f"frontend f2\n  bind 127.0.0.1:{port2}\n  default_backend b2\n"
    )


def run(lab: Lab, tmp_path: Path, which: str) -> list[str]:
    sink = lab.sink(None, "127.0.0.1", reply=b"hi\n")
    syslog = Syslog()
    sock = str(tmp_path / f"{which}.sock")
    port2 = free_port()
    text = config(sock, free_port(), port2, syslog.port, sink.port, free_port())
    if which == "haproxy":
        proc = lab.haproxy(text, sock)
        stop = lambda: proc.send_signal(signal.SIGUSR1)  # noqa: E731
    else:
        proxy = lab.proxy(text)
        stop = lambda: proxy.proc.send_signal(signal.SIGUSR1)  # noqa: E731
    expected = 0
    for command, lines in STEPS:
        if command:
            cli(sock, command)
        expected += len(lines)
        syslog.wait(expected)
    with socket.create_connection(("127.0.0.1", port2), timeout=5) as c:
        c.recv(16)
    stop()
    # HAProxy also stops its internal <HTTPCLIENT> proxy; nsproxy has none
    out = syslog.wait(expected + len(STOP) + (which == "haproxy"))
    return [ln for ln in out if "<HTTPCLIENT>" not in ln]


def test_admin_state_and_stop_logs_as_haproxy(lab: Lab, tmp_path: Path) -> None:
    theirs = run(lab, tmp_path, "haproxy")
    ours = run(lab, tmp_path, "nsproxy")
    want = [ln for _, lines in STEPS for ln in lines] + STOP
    assert theirs == want
    assert ours == want
