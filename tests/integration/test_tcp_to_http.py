"""A TCP frontend on an HTTP backend, side by side with HAProxy 2.6 in a real namespace.

The stream becomes HTTP when the HTTP backend is chosen (docs/tcp-to-http.md). For each case
the client's bytes, what the server received on each of its connections and the tcplog lines
must be HAProxy's (client port, date and timers aside).
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from lab.netlab import Lab, Proxy, free_port, socket_in, wait_until
from lab.origin import Origin

T = TypeVar("T")
BODY = b"hello\n"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


class Pair:
    """nsproxy and HAProxy on one configuration template, each with its own origin."""

    def __init__(self, lab: Lab, ns: str, template: str) -> None:
        d = tempfile.mkdtemp(prefix="tcpup-")
        self.ns = ns
        self.origin_n = Origin.unix(os.path.join(d, "n.sock"), ANSWER)
        self.origin_h = Origin.unix(os.path.join(d, "h.sock"), ANSWER)
        lab.defer(self.origin_n.close)
        lab.defer(self.origin_h.close)
        self.port_n, self.port_h = free_port(ns), free_port(ns)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(10)
        lab.defer(self.udp.close)
        self.proxy: Proxy = lab.proxy(
            template.format(
                log="stdout", stats="", port=self.port_n, ns=ns, server=self.origin_n.addr
            )
        )
        stats = os.path.join(d, "stats")
        lab.haproxy(
            template.format(
                log=f"127.0.0.1:{self.udp.getsockname()[1]}",
                stats=f"    stats socket {stats}",
                port=self.port_h,
                ns=ns,
                server=self.origin_h.addr,
            ),
            stats,
        )

    def each(self, talk: Callable[[Client], T]) -> list[T]:
        """`talk` over one new client connection to nsproxy, then one to HAProxy."""
        out = []
        for port in (self.port_n, self.port_h):
            c = Client(self.ns, port)
            try:
                out.append(talk(c))
            finally:
                c.close()
        return out

    def haproxy_lines(self, n: int) -> list[str]:
        """HAProxy's next `n` log lines (raises on timeout)."""
        return [self.udp.recv(65536).decode().rstrip("\n") for _ in range(n)]

    def nsproxy_lines(self, n: int, needle: str) -> list[str]:
        self.proxy.wait_count(needle, n)
        return [ln for ln in self.proxy.log_lines() if needle in ln][:n]


def comparable(line: str) -> str:
    """A tcplog line without what differs between runs: the client port, the date, the
    timers that are not -1."""
    line = re.sub(r"^(\S+):\d+ \[[^]]+\]", r"\1:PORT [DATE]", line)

    def timers(m: re.Match[str]) -> str:
        return " " + "/".join(t if t.startswith("-") else "T" for t in m.groups()) + " "

    return re.sub(r" (-?\d+)/(-?\d+)/(-?\d+) ", timers, line, count=1)


class Client:
    """One client connection inside the namespace; `ask` sends and reads one answer."""

    def __init__(self, ns: str, port: int) -> None:
        self.sock = socket_in(ns, socket.AF_INET)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))

    def ask(self, raw: bytes) -> bytes:
        """Sends `raw`, returns one whole answer (b"" if the connection closed first)."""
        self.sock.sendall(raw)
        return self.read_answer()

    def read_answer(self) -> bytes:
        out = b""
        while True:
            end = out.find(b"\r\n\r\n")
            if end >= 0:
                m = re.search(rb"(?i)content-length:\s*(\d+)", out[:end])
                if len(out) - end - 4 >= (int(m.group(1)) if m else 0):
                    return out
            data = self.sock.recv(65536)
            if not data:
                return out
            out += data

    def closed(self) -> bool:
        """Whether the proxy closed the connection (waits for the close or the timeout)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def ns(lab: Lab) -> Iterator[str]:
    yield lab.netns("up")


# what every configuration of this file starts with: global, defaults, then the TCP frontend
HEAD = """global
    log {log} format raw local0
{stats}
defaults
    log global
    timeout connect 5s
    timeout client 5s
    timeout server 5s

frontend fe
    mode tcp
"""


TEMPLATE = (
    HEAD
    + """    option tcplog
    option forwardfor
    bind 127.0.0.1:{port} namespace {ns}
    default_backend be

backend be
    mode http
    option forwardfor
    http-request set-header X-Test hello
    http-request del-header X-Tenant
    server s1 {server}
"""
)

R1 = b"GET /a HTTP/1.1\r\nHost: x\r\nX-Tenant: forged\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
R2 = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"


def _both(pair: Pair, requests: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The answers of nsproxy and HAProxy to `requests`, one after the other on one connection
    each; afterwards both connections must still be open."""
    answers = []
    for port in (pair.port_n, pair.port_h):
        c = Client(pair.ns, port)
        try:
            answers.append([c.ask(raw) for raw in requests])
            c.sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                c.sock.recv(1)  # still open: keep-alive
        finally:
            c.close()
    return answers[0], answers[1]


@pytest.mark.parametrize("log_option", ["option tcplog", "option httplog"])
def test_requests_on_one_connection_are_http_like_haproxy(
    lab: Lab, ns: str, log_option: str
) -> None:
    # `option httplog` on a TCP frontend falls back to tcplog (HAProxy's warning at load)
    pair = Pair(lab, ns, TEMPLATE.replace("option tcplog", log_option))
    ours, theirs = _both(pair, [R1, R2])
    assert ours == theirs
    assert all(a.startswith(b"HTTP/1.1 200 OK\r\ncontent-type:") for a in ours)
    got_n = wait_until(lambda: pair.origin_n.received() or None, what="nsproxy's request")
    got_h = wait_until(lambda: pair.origin_h.received() or None, what="HAProxy's request")
    wait_until(lambda: pair.origin_n.received()[0].endswith(b"abc"), what="both requests")
    wait_until(lambda: pair.origin_h.received()[0].endswith(b"abc"), what="both requests")
    got_n, got_h = pair.origin_n.received(), pair.origin_h.received()
    assert got_n == got_h
    assert len(got_n) == 1  # one kept server connection for both requests
    # the backend's rules and forwardfor (not the frontend's, ignored in TCP mode)
    assert got_n[0] == (
        b"GET /a HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 6.6.6.6\r\nx-test: hello\r\n"
        b"x-forwarded-for: 127.0.0.1\r\n\r\n"
        b"POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nx-test: hello\r\n"
        b"x-forwarded-for: 127.0.0.1\r\n\r\nabc"
    )
    theirs_log = pair.haproxy_lines(2)
    ours_log = pair.nsproxy_lines(2, " fe be/s1 ")
    assert [comparable(x) for x in ours_log] == [comparable(x) for x in theirs_log]
    assert " fe be/s1 T/T/T 77 -- 1/1/0/0/0 0/0" in comparable(ours_log[0])


DYNAMIC = (
    HEAD
    + """    option tcplog
    bind 127.0.0.1:{port} namespace {ns}
    tcp-request inspect-delay 2s
    tcp-request content accept if {{ req.len ge 12 }}
    use_backend %[req.payload(5,6)]
    default_backend tcpbe

backend tcpbe
    mode tcp
    server s1 {server}

backend httpbe
    mode http
    http-request set-header X-Test hello
    server s1 {server}
"""
)


def test_dynamic_use_backend_upgrades_and_a_later_tcp_backend_closes(lab: Lab, ns: str) -> None:
    pair = Pair(lab, ns, DYNAMIC)
    first = b"GET /httpbe HTTP/1.1\r\nHost: x\r\n\r\n"
    later = b"GET /tcpbe_ HTTP/1.1\r\nHost: x\r\n\r\n"
    results = pair.each(lambda c: (c.ask(first), c.ask(later), c.closed()))
    assert results[0] == results[1]
    assert results[0][0].endswith(BODY) and results[0][1] == b"" and results[0][2]
    theirs = [comparable(x) for x in pair.haproxy_lines(2)]
    ours = [comparable(x) for x in pair.nsproxy_lines(2, " fe ")]
    assert ours == theirs
    assert ours[1].endswith(" fe tcpbe/<NOSRV> -1/-1/T 0 IR 1/1/1/0/0 0/0")


def test_a_tcp_backend_chosen_first_keeps_the_stream_tcp(lab: Lab, ns: str) -> None:
    pair = Pair(lab, ns, DYNAMIC)
    raw = b"GET /other HTTP/1.1\r\nHost: X\r\nX-Odd:  spaced \r\n\r\n"
    answers = pair.each(lambda c: c.ask(raw))
    assert answers[0] == answers[1]
    assert answers[0].startswith(b"HTTP/1.1 200 OK\r\nContent-Type:")  # relayed as it came
    wait_until(lambda: pair.origin_n.received() and pair.origin_h.received(), what="requests")
    assert pair.origin_n.received() == pair.origin_h.received() == [raw]


RULES = (
    HEAD
    + """    option tcplog
    bind 127.0.0.1:{port} namespace {ns}
    tcp-request inspect-delay 2s
    tcp-request content reject if {{ req.hdr(x-deny) -m found }}
    default_backend be

backend be
    mode http
    option http-server-close
    server s1 {server}
"""
)


def test_frontend_tcp_rules_run_again_for_each_request(lab: Lab, ns: str) -> None:
    pair = Pair(lab, ns, RULES)
    ok = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    denied = b"GET /b HTTP/1.1\r\nHost: x\r\nX-Deny: 1\r\n\r\n"
    results = pair.each(lambda c: (c.ask(ok), c.ask(denied), c.closed()))
    assert results[0] == results[1]
    assert results[0][0].endswith(BODY) and results[0][1] == b"" and results[0][2]
    wait_until(lambda: pair.origin_n.received() and pair.origin_h.received(), what="requests")
    # http-server-close of the backend: the server side closes, the client side stays
    assert pair.origin_n.received() == pair.origin_h.received()
    assert pair.origin_n.received() == [b"GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"]
    theirs = [comparable(x) for x in pair.haproxy_lines(2)]
    ours = [comparable(x) for x in pair.nsproxy_lines(2, " fe ")]
    assert ours == theirs
    assert ours[1].endswith(" fe fe/<NOSRV> -1/-1/T 0 PR 1/1/0/0/0 0/0")


ERRORS = TEMPLATE.replace("    timeout client 5s\n", "    timeout client 1s\n")


@pytest.mark.parametrize(
    "sent, half_close",
    [
        (b"GARBAGE\r\n\r\n", False),  # 400 at once
        (b"GET / HTTP/1.1\r\n", True),  # head cut short, half-closed: 400 at once
        (b"GET / HTTP/1.1\r\n", False),  # head cut short: 408 at timeout client
    ],
)
def test_errors_before_the_first_head_like_haproxy(
    lab: Lab, ns: str, sent: bytes, half_close: bool
) -> None:
    pair = Pair(lab, ns, ERRORS)
    answers = []
    for port in (pair.port_n, pair.port_h):
        c = Client(ns, port)
        try:
            if sent:
                c.sock.sendall(sent)
            if half_close:
                c.sock.shutdown(socket.SHUT_WR)
            answers.append(c.read_answer())
            assert c.closed()
        finally:
            c.close()
    assert answers[0] == answers[1]
    status = 400 if half_close or sent.startswith(b"GARBAGE") else 408
    assert answers[0].startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nConnection: close\r\n" in answers[0]
    theirs = [comparable(x) for x in pair.haproxy_lines(1)]
    ours = [comparable(x) for x in pair.nsproxy_lines(1, " fe ")]
    assert ours == theirs
    assert ours[0].endswith(" fe fe/<NOSRV> -1/-1/T 0 PR 1/1/0/0/0 0/0")
    assert pair.origin_n.received() == []


def test_without_a_log_format_each_request_logs_its_connect_line(lab: Lab, ns: str) -> None:
    pair = Pair(lab, ns, TEMPLATE.replace("    option tcplog\n", ""))
    ours, theirs = _both(pair, [R1, R2])
    assert ours == theirs
    theirs_log = pair.haproxy_lines(2)
    ours_log = pair.nsproxy_lines(2, "Connect from ")

    def ports(line: str) -> str:
        return re.sub(r":\d+", ":PORT", line)

    assert [ports(x) for x in ours_log] == [ports(x) for x in theirs_log]
    assert ports(ours_log[1]) == "Connect from 127.0.0.1:PORT to 127.0.0.1:PORT (fe/TCP)"


def test_bytes_in_of_each_request_on_an_upgraded_stream_like_haproxy(lab: Lab, ns: str) -> None:
    """%U of each request after the upgrade, the one closed with IR (a later request that
    chose a TCP backend) included: the request as received, as HAProxy logs it."""
    pair = Pair(lab, ns, DYNAMIC.replace("option tcplog", 'log-format "%b/%s %ts U=%U B=%B"'))
    first = b"GET /httpbe HTTP/1.1\r\nHost: x\r\n\r\n"
    later = b"GET /tcpbe_ HTTP/1.1\r\nHost: x\r\nX-Pad: 0123456789\r\n\r\n"
    for first_answer, later_answer in pair.each(lambda c: (c.ask(first), c.ask(later))):
        assert first_answer.endswith(BODY) and later_answer == b""
    theirs = pair.haproxy_lines(2)
    ours = pair.nsproxy_lines(2, " U=")
    assert ours == theirs
    assert ours[1] == "tcpbe/<NOSRV> IR U=59 B=0"  # 20 + GET /tcpbe_ HTTP/1.1 + 2 headers + 1


BUFFERED = (
    HEAD
    + """    bind 127.0.0.1:{port} namespace {ns}
    default_backend be

backend be
    mode http
    option http-buffer-request
    http-request return status 200 content-type text/plain lf-string "body=[%[req.body]]"
    server s1 {server}
"""
)


def test_the_backends_http_buffer_request_applies_after_the_upgrade(lab: Lab, ns: str) -> None:
    """The backend's rules wait for the body, on the first request and on a later one."""
    pair = Pair(lab, ns, BUFFERED)
    head = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
    answers = []
    for port in (pair.port_n, pair.port_h):
        c = Client(ns, port)
        try:
            got = []
            for _ in range(2):
                c.sock.sendall(head)
                c.sock.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    c.sock.recv(1)  # no answer before the body
                c.sock.settimeout(10)
                got.append(c.ask(b"hello"))
            answers.append(got)
        finally:
            c.close()
    assert answers[0] == answers[1]
    assert answers[0][1].endswith(b"\r\n\r\nbody=[hello]")
