"""HTTP mode against HAProxy 2.6 in a real namespace, on differences measured one by one:
%U (and the `bin` counter) counted as the request was received, request heads refused at
once, and the header order of the proxy's own answers over HTTP/1.0.

Both proxies run the same configuration, log to UDP sockets, and forward to origins of their
own on UNIX sockets; what the client reads and the log lines must be the same bytes.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Iterator

import pytest

from lab.netlab import Lab, accept_threads, cli, free_port, socket_in, stop_listener

ADDR = "169.254.169.254"


class Origin:
    """An HTTP/1.1 origin: reads each request (Content-Length or chunked body, trailers) and
    answers 200 with a 2-byte body, keeping the connection."""

    def __init__(self, path: str, replies: dict[bytes, bytes] | None = None) -> None:
        self.replies = replies or {}  # by request target: a response other than the 200 "ok"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.addr = path
        self.acceptor = accept_threads(self.sock, self._exchanges)

    def _exchanges(self, c: socket.socket) -> None:
        buf = b""
        with c:
            c.settimeout(10)
            try:
                while True:
                    while b"\r\n\r\n" not in buf:
                        data = c.recv(65536)
                        if not data:
                            return
                        buf += data
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
                        while (end := _chunked_end(buf)) < 0:
                            data = c.recv(65536)
                            if not data:
                                return
                            buf += data
                        buf = buf[end:]
                    else:
                        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                        need = int(m.group(1)) if m else 0
                        while len(buf) < need:
                            data = c.recv(65536)
                            if not data:
                                return
                            buf += data
                        buf = buf[need:]
                    target = head.split(b" ", 2)[1]
                    c.sendall(
                        self.replies.get(target, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    )
            except OSError:
                return

    def close(self) -> None:
        stop_listener(self.sock, self.acceptor)


def _chunked_end(buf: bytes) -> int:
    """Where a complete chunked body in `buf` ends (with its trailers), -1 if incomplete."""
    pos = 0
    while True:
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return -1
        size = int(buf[pos:nl].split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", nl)
            if buf[nl : nl + 4] == b"\r\n\r\n":
                return nl + 4
            return -1 if end < 0 else end + 4
        pos = nl + 2 + size + 2
        if pos > len(buf):
            return -1


class Side:
    """One proxy under test: its port, its log socket and its stats socket."""

    def __init__(
        self,
        lab: Lab,
        ns: str,
        template: str,
        haproxy: bool,
        d: str,
        replies: dict[bytes, bytes] | None = None,
    ) -> None:
        self.port = free_port(ns)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(10)
        lab.defer(self.udp.close)
        name = "h" if haproxy else "n"
        self.origin = Origin(os.path.join(d, f"origin-{name}.sock"), replies)
        lab.defer(self.origin.close)
        self.stats = os.path.join(d, f"stats-{name}")
        text = template.format(
            log=f"127.0.0.1:{self.udp.getsockname()[1]}",
            stats=f"    stats socket {self.stats}",
            port=self.port,
            ns=ns,
            server=self.origin.addr,
        )
        if haproxy:
            lab.haproxy(text, self.stats)
        else:
            lab.proxy(text)

    def log_lines(self, n: int) -> list[str]:
        """The next `n` log lines (raises TimeoutError when they do not come)."""
        return [self.udp.recv(65536).decode().rstrip("\n") for _ in range(n)]

    def frontend_stat(self, proxy: str, column: str) -> str:
        out = cli(self.stats, "show stat").decode().splitlines()
        names = out[0].lstrip("# ").split(",")
        for line in out[1:]:
            cols = line.split(",")
            if cols[0] == proxy and cols[1] == "FRONTEND":
                return cols[names.index(column)]
        raise AssertionError(f"no FRONTEND line for {proxy}")


@pytest.fixture
def sides(lab: Lab, request: pytest.FixtureRequest) -> Iterator[tuple[Lab, str, str]]:
    ns = lab.netns("meas")
    lab.ip(ns, "addr", "add", f"{ADDR}/32", "dev", "lo")
    yield lab, ns, tempfile.mkdtemp()


def both(
    lab: Lab, ns: str, d: str, template: str, replies: dict[bytes, bytes] | None = None
) -> tuple[Side, Side]:
    """nsproxy and HAProxy 2.6 on `template`, their origins answering `replies`."""
    return Side(lab, ns, template, False, d, replies), Side(lab, ns, template, True, d, replies)


def exchange(ns: str, port: int, raw: bytes, answers: int = 1, timeout: float = 10) -> bytes:
    """Sends `raw` from inside `ns`; reads `answers` whole responses, or until the close."""
    with socket_in(ns, socket.AF_INET) as c:
        c.settimeout(timeout)
        c.connect((ADDR, port))
        c.sendall(raw)
        out = b""
        while _complete(out) < answers:
            data = c.recv(65536)
            if not data:
                break
            out += data
        return out


def _complete(out: bytes) -> int:
    """How many whole responses (Content-Length or chunked bodies) `out` holds."""
    n = pos = 0
    while True:
        end = out.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        head = out[pos:end]
        if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
            body_end = _chunked_end(out[end + 4 :])
            if body_end < 0:
                return n
            pos = end + 4 + body_end
        else:
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            pos = end + 4 + (int(m.group(1)) if m else 0)
            if pos > len(out):
                return n
        n += 1


# what every configuration of this file starts with (then its own defaults lines and proxies)
HEAD = """global
    log {log} format raw local0
{stats}
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 5s
    timeout server 5s
"""


COUNTS = (
    HEAD
    + """    log-format "%{{+Q}}r U=%U B=%B %ST %tsc"

frontend fe
    bind 169.254.169.254:{port} namespace {ns}
    http-request set-header X-Fe abcdefghij
    http-request return status 200 content-type text/plain string hi if {{ path /ret }}
    default_backend be

backend be
    option forwardfor
    http-request set-header X-Be 0123456789
    http-request del-header X-Del
    http-request deny if {{ path /deny }}
    server s {server}
"""
)

# each sent whole on a connection of its own; (request, responses it gets)
COUNTED = [
    (b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n", 1),
    (b"GET /conn HTTP/1.1\r\nHost: a\r\nX-Del: 12345\r\nConnection: close, foo\r\n\r\n", 1),
    (b"GET /dup HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 1),
    (b"GET http://a:80/abs HTTP/1.1\r\nHost: a:80\r\n\r\n", 1),
    (b"POST /length HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 1),
    (
        b"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
        1,
    ),
    (
        b"POST /trailers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX-Trail: yes\r\n\r\n",
        1,
    ),
    (
        b"POST /both HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n",
        1,
    ),
    (b"GET /deny HTTP/1.1\r\nHost: a\r\n\r\n", 1),
    (b"POST /ret HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 1),
    (b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n", 2),
]


def test_bytes_in_counts_the_request_as_received_like_haproxy(
    sides: tuple[Lab, str, str],
) -> None:
    """%U and the frontend's `bin`: the request as it came (in HAProxy's HTX sizes), before the
    rules of the frontend and the backend rewrote it; bodies, trailers and chunk ends counted
    as HAProxy does, answers made before the server included."""
    lab, ns, d = sides
    ours, theirs = both(lab, ns, d, COUNTS)
    lines: dict[str, list[str]] = {"n": [], "h": []}
    for raw, answers in COUNTED:
        for key, side in (("n", ours), ("h", theirs)):
            got = exchange(ns, side.port, raw, answers)
            assert _complete(got) == answers, (raw, got)
            lines[key] += side.log_lines(answers)
    assert lines["n"] == lines["h"]
    assert '"GET /plain HTTP/1.1" U=43 ' in lines["h"][0]  # 20 + GET /plain HTTP/1.1 + host a + 1
    assert ours.frontend_stat("fe", "bin") == theirs.frontend_stat("fe", "bin")


PLAIN = (
    HEAD
    + """    option httplog
    timeout http-request 20s

frontend fe
    bind 169.254.169.254:{port} namespace {ns}
    default_backend be

backend be
    server s {server}
"""
)


@pytest.mark.parametrize(
    "raw",
    [
        b"hello there\n",
        b"GET /\r\n",
        b"GET / HTTP/1.1 extra\r\n",
        b"G@T /",
        b"GET / HTTP/1.1\r\nBad Header : x\r\n",
        b"GET / HTTP/1.1\n folded",
    ],
)
def test_heads_haproxy_refuses_before_their_end_get_400_at_once(
    sides: tuple[Lab, str, str], raw: bytes
) -> None:
    """Not 408 after `timeout http-request` (20 s here): HAProxy's 400 at once, then the close,
    and the same log line."""
    lab, ns, d = sides
    ours, theirs = both(lab, ns, d, PLAIN)
    got_n = exchange(ns, ours.port, raw, timeout=5)
    got_h = exchange(ns, theirs.port, raw, timeout=5)
    assert got_h.startswith(b"HTTP/1.1 400 Bad request\r\n")
    assert got_n == got_h
    assert comparable(ours.log_lines(1)[0]) == comparable(theirs.log_lines(1)[0])


def comparable(line: str) -> str:
    """A httplog line without the client's address, the date and the timers."""
    line = re.sub(r"^\S+ \[[^]]+\] ", "", line)
    return re.sub(r" -?\d+/-?\d+/-?\d+/-?\d+/-?\d+ ", " T ", line, count=1)


BUFFERED = (
    HEAD
    + """
frontend fe
    bind 169.254.169.254:{port} namespace {ns}
    default_backend be

backend be
    option http-buffer-request
    http-request return status 200 content-type text/plain lf-string "body=[%[req.body]]"
    server s {server}
"""
)


def test_a_backends_http_buffer_request_applies_like_haproxy(sides: tuple[Lab, str, str]) -> None:
    """Set on the backend only: its rules wait for the body (HAProxy adds the analyser when
    the stream switches to the backend)."""
    lab, ns, d = sides
    head = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
    answers = []
    for side in both(lab, ns, d, BUFFERED):
        with socket_in(ns, socket.AF_INET) as c:
            c.settimeout(0.3)
            c.connect((ADDR, side.port))
            c.sendall(head)
            with pytest.raises(TimeoutError):
                c.recv(1)  # no answer before the body
            c.settimeout(10)
            c.sendall(b"hello")
            out = b""
            while _complete(out) < 1:
                data = c.recv(65536)
                assert data, out
                out += data
            c.sendall(head + b"world")  # the next request sees its own body only
            while _complete(out) < 2:
                data = c.recv(65536)
                assert data, out
                out += data
            answers.append(out)
    assert answers[0] == answers[1]
    first, _, second = answers[0].partition(b"body=[hello]")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and second.endswith(b"\r\n\r\nbody=[world]")


ANSWERS = (
    HEAD
    + """    log-format "%{{+Q}}r B=%B"

frontend fe
    bind 169.254.169.254:{port} namespace {ns}
    stats enable
    stats uri /stats
    http-request deny if {{ path /deny }}
    http-request return status 200 content-type text/plain string hi if {{ path /ret }}
    http-request redirect location /x if {{ path /redir }}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    monitor-uri /mon
    use_backend none if {{ path /none }}
    default_backend be

backend be
    server s {server}

backend none
"""
)


def _dechunked(body: bytes) -> bytes:
    out = b""
    while True:
        line, _, body = body.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return out
        out, body = out + body[:size], body[size + 2 :]


@pytest.mark.parametrize(
    "connection", [b"", b"Connection: keep-alive\r\n"], ids=["close", "keep-alive"]
)
def test_own_answers_to_http_1_0_clients_like_haproxy(
    sides: tuple[Lab, str, str], connection: bytes
) -> None:
    """The stats page over HTTP/1.0: HAProxy's H1 layer chunks it and adds transfer-encoding
    after the Connection header (the page sends it itself to HTTP/1.1 clients only), and %B
    does not count it. The other answers keep their order."""
    lab, ns, d = sides
    ours, theirs = both(lab, ns, d, ANSWERS)
    for path in (b"/stats", b"/stats;csv", b"/metrics", b"/deny", b"/ret", b"/redir"):
        raw = b"GET %s HTTP/1.0\r\nHost: a\r\n%s\r\n" % (path, connection)
        heads, head_bytes = [], []
        for side in (ours, theirs):
            head, _, body = exchange(ns, side.port, raw).partition(b"\r\n\r\n")
            heads.append(head)
            if b"transfer-encoding: chunked" in head:
                body = _dechunked(body)
            b_field = int(side.log_lines(1)[0].rpartition(" B=")[2])
            head_bytes.append(b_field - len(body))  # %B less the body: the head, as HTX
        assert heads[0] == heads[1], path
        assert head_bytes[0] == head_bytes[1], path
        if path == b"/stats":
            kept = b"keep-alive" if connection else b"close"
            assert heads[0].endswith(b"\r\nconnection: %s\r\ntransfer-encoding: chunked" % kept)


RESPONSES = (
    HEAD
    + """    log-format "%{{+Q}}r B=%B %ST"

frontend fe
    bind 169.254.169.254:{port} namespace {ns}
    http-response set-header X-Fe abcdefghij
    default_backend be

backend be
    http-response set-header X-Be 0123456789
    http-response del-header X-Del
    server s {server}
"""
)

CHUNKED_REPLY = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
REPLIES = {
    b"/chunked": CHUNKED_REPLY,
    b"/trailers": CHUNKED_REPLY[:-2] + b"X-Trail: yes\r\n\r\n",
    b"/del": b"HTTP/1.1 200 OK\r\nX-Del: 0123456789\r\nContent-Length: 2\r\n\r\nok",
}


def test_bytes_out_counts_the_response_as_received_like_haproxy(
    sides: tuple[Lab, str, str],
) -> None:
    """%B and `bout`: the server's response as it came, before the `http-response` rules of
    the backend and the frontend rewrote it; a chunked body's trailers and end counted."""
    lab, ns, d = sides
    ours, theirs = both(lab, ns, d, RESPONSES, REPLIES)
    lines: dict[str, list[str]] = {"n": [], "h": []}
    for path in (b"/plain", b"/del", b"/chunked", b"/trailers"):
        raw = b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path
        for key, side in (("n", ours), ("h", theirs)):
            got = exchange(ns, side.port, raw)
            assert b"x-be: 0123456789" in got and b"x-fe: abcdefghij" in got
            lines[key] += side.log_lines(1)
    assert lines["n"] == lines["h"]
    assert lines["h"][0] == '"GET /plain HTTP/1.1" B=51 200'  # 20 + HTTP/1.1 200 OK + CL 2 + 1 + ok
    assert ours.frontend_stat("fe", "bout") == theirs.frontend_stat("fe", "bout")


ANSWERED = (
    HEAD
    + """    log-format "%{{+Q}}r B=%B %ST %tsc"

frontend fe
    bind 169.254.169.254:{port} namespace {ns}
    default_backend be

backend be
    http-response deny if {{ res.hdr(x-act) deny }}
    http-response return status 201 content-type text/plain string hi if {{ res.hdr(x-act) ret }}
    server s {server}
"""
)

SECRET = {
    b"/deny": b"HTTP/1.1 200 OK\r\nX-Act: deny\r\nContent-Length: 6\r\n\r\nsecret",
    b"/ret": b"HTTP/1.1 200 OK\r\nX-Act: ret\r\nContent-Length: 6\r\n\r\nsecret",
}


def test_a_response_answered_by_a_rule_sends_none_of_the_servers_body(
    sides: tuple[Lab, str, str],
) -> None:
    """`http-response deny|return`: the client gets the proxy's answer alone, never the body
    read with the server's head (which %B counts, as HAProxy's does), and its connection stays
    open for the next request."""
    lab, ns, d = sides
    ours, theirs = both(lab, ns, d, ANSWERED, SECRET)
    for path in (b"/deny", b"/ret"):
        raw = b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path
        got_n = exchange(ns, ours.port, raw)
        got_h = exchange(ns, theirs.port, raw)
        assert b"secret" not in got_h
        assert got_n == got_h
        assert ours.log_lines(1) == theirs.log_lines(1)
    both_paths = b"".join(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % p for p in (b"/deny", b"/ret"))
    got_n = exchange(ns, ours.port, both_paths, answers=2)
    assert got_n == exchange(ns, theirs.port, both_paths, answers=2)
    assert got_n.startswith(b"HTTP/1.1 502 ") and b"</html>\nHTTP/1.1 201 " in got_n
