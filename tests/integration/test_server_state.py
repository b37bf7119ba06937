"""A reload as Octavia does it: `show servers state` saved to the `server-state-file`, then a
new process that loads it. Side by side with HAProxy 2.6: the servers' status and weights
after the restart, and a server saved DOWN gets no traffic until its checks pass."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading

from lab.netlab import Lab, cli, free_port, socket_in, stop_listener, wait_until

CONFIG = """global
    server-state-file {state}
    stats socket {sock} level admin
defaults
    mode tcp
    timeout client 5s
    timeout server 5s
    timeout connect 1s
    load-server-state-from-file global
frontend f
    bind 127.0.0.1:{port} namespace {ns}
    default_backend b
backend b
    balance roundrobin
    server s1 127.0.0.1:{p1} namespace {ns} check inter 100ms rise 3 fall 1
    server s2 127.0.0.1:{p2} namespace {ns} check inter 100ms
    server s3 127.0.0.1:{p3} namespace {ns} weight 7
    server s4 127.0.0.1:{p4} namespace {ns}
"""


class Named:
    """Accepts connections in `ns` and answers each with its name."""

    def __init__(self, ns: str, name: bytes, listening: bool = True) -> None:
        self.sock = socket_in(ns, socket.AF_INET)
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self.port = int(self.sock.getsockname()[1])
        self.name = name
        if listening:
            self.listen()

    def listen(self) -> None:
        self.sock.listen(64)
        self._acceptor = threading.Thread(target=self._serve, daemon=True)
        self._acceptor.start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c, contextlib.suppress(OSError):  # a check closes at once
                c.sendall(self.name)

    def close(self) -> None:
        stop_listener(self.sock, self._acceptor)


def _ask(ns: str, port: int) -> bytes:
    with socket_in(ns, socket.AF_INET) as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        return s.recv(100)


def _status(sock: str) -> dict[str, tuple[str, str]]:
    """`show stat`: each server's status (without the check counts) and weight."""
    out = {}
    for row in cli(sock, "show stat").decode().splitlines():
        f = row.split(",")
        if len(f) > 18 and f[0] == "b" and f[1].startswith("s"):
            out[f[1]] = (f[17].split()[0], f[18])
    return out


def test_a_reload_keeps_the_servers_state_like_haproxy(lab: Lab) -> None:
    ns = lab.netns("srvst")
    seen: dict[str, tuple[dict[str, tuple[str, str]], list[bytes], list[bytes]]] = {}
    for name in ("nsproxy", "haproxy"):
        servers = [Named(ns, b"s%d" % i, listening=i > 1) for i in range(1, 5)]
        d = tempfile.mkdtemp(prefix="srvst-")
        state, sock, port = os.path.join(d, "state"), os.path.join(d, "s.sock"), free_port(ns)
        ports = {f"p{i}": s.port for i, s in enumerate(servers, start=1)}
        text = CONFIG.format(state=state, sock=sock, port=port, ns=ns, **ports)
        # the first process: s1 is down (nothing listens), s2 disabled and s3 drained on the
        # runtime API, s4 reweighted; its state is saved as Octavia saves it before a reload
        first = lab.proxy(text) if name == "nsproxy" else None
        if first is None:
            lab.haproxy(text, sock)
        wait_until(lambda s=sock: "DOWN" in _status(s).get("s1", ("",))[0], 10, f"{name}: s1 DOWN")
        for cmd in ("disable server b/s2", "set server b/s3 state drain", "set weight b/s4 3"):
            cli(sock, cmd)
        dump = cli(sock, "show servers state").decode()
        with open(state, "w") as f:
            f.write(dump)
        if first is not None:
            first.stop()
        else:
            cli(sock, "shutdown frontends")
            os.unlink(sock)
        # the second process, s1 now listening: it starts DOWN, its checks bring it UP
        servers[0].listen()
        if name == "nsproxy":
            lab.proxy(text)
        else:
            lab.haproxy(text, sock)
        after = _status(sock)
        before_up = [_ask(ns, port) for _ in range(4)]
        wait_until(lambda s=sock: _status(s)["s1"][0] == "UP", 10, f"{name}: s1 UP again")
        # (weighted round robin, 1 to 3: the order is each one's, 20 reach both)
        after_up = sorted({_ask(ns, port) for _ in range(20)})
        seen[name] = (after, sorted(before_up), after_up)
        for s in servers:
            s.close()
        shutil.rmtree(d, ignore_errors=True)
    assert seen["nsproxy"] == seen["haproxy"]
    after, before_up, after_up = seen["nsproxy"]
    assert after == {
        "s1": ("DOWN", "1"),
        "s2": ("MAINT", "1"),
        "s3": ("DRAIN", "7"),
        "s4": ("no", "3"),  # "no check"
    }
    assert set(before_up) == {b"s4"} and after_up == [b"s1", b"s4"]
