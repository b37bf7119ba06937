"""Backends that stay up: balancing, health checks inside namespaces, failover under load."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from lab.netlab import Lab, Sink, connect, free_port, recv_all, tcp_defaults, wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
DEFAULTS = tcp_defaults()


def _named_sinks(lab: Lab, ns: str | None, names: list[str]) -> dict[str, Sink]:
    return {n: lab.sink(ns, "127.0.0.1", reply=n.encode() + b"\n") for n in names}


def _ask(port: int, source: str | None = None) -> str:
    """One short connection through the proxy; the name of the server that answered."""
    src = (source, 0) if source is not None else None
    with connect(None, ("127.0.0.1", port), timeout=15, source=src) as c:
        got = b""
        while not got.endswith(b"\n"):
            data = c.recv(64)
            if not data:
                break
            got += data
        return got.decode().strip()


def _ask_to_the_end(port: int) -> str:
    """Like _ask, but returns only once the proxy has closed the whole connection."""
    with connect(None, ("127.0.0.1", port)) as c:
        c.shutdown(socket.SHUT_WR)
        return recv_all(c).decode().strip()


def _frontend(port: int, body: str) -> str:
    return DEFAULTS + f"\nlisten l\n  bind 127.0.0.1:{port}\n{body}"


def _wait_conns(sink: Sink, n: int) -> int:
    return len(sink.wait_conns(n, timeout=5))


# -- balancing -----------------------------------------------------------------------------


def test_roundrobin_weights_1_2_3_over_300_connections(lab: Lab) -> None:
    sinks = _named_sinks(lab, None, ["a", "b", "c"])
    port = free_port()
    servers = "".join(
        f"  server {n} 127.0.0.1:{s.port} weight {w}\n"
        for (n, s), w in zip(sinks.items(), (1, 2, 3), strict=True)
    )
    lab.proxy(_frontend(port, servers))
    seen = Counter(_ask(port) for _ in range(300))
    for name, share in (("a", 1 / 6), ("b", 2 / 6), ("c", 3 / 6)):
        assert abs(seen[name] / 300 - share) <= 0.05, seen


def _haproxy_out(cfg: str, port: int) -> tuple[subprocess.Popen[bytes], str]:
    tmp = tempfile.mkdtemp(prefix="nsp-hap-")
    path = os.path.join(tmp, "h.cfg")
    out = os.path.join(tmp, "out.log")
    with open(path, "w") as f:
        f.write(cfg)
    with open(out, "wb") as log:
        proc = subprocess.Popen([HAPROXY, "-db", "-f", path], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while (
        f":{port}"
        not in subprocess.run(
            ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
    ):
        assert proc.poll() is None, _read(out)
        assert time.monotonic() < deadline, "haproxy did not listen"
        time.sleep(0.05)
    return proc, out


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


@pytest.fixture
def haproxy() -> Iterator[list[subprocess.Popen[bytes]]]:
    if not os.path.exists(HAPROXY):
        if os.environ.get("CI"):
            pytest.fail("HAProxy (Debian package haproxy) is needed for comparison tests")
        pytest.skip("haproxy not installed")
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.terminate()
        p.wait(10)


def test_roundrobin_order_matches_haproxy(lab: Lab, haproxy: list[subprocess.Popen[bytes]]) -> None:
    sinks = _named_sinks(lab, None, ["a", "b", "c"])
    servers = "".join(
        f"  server {n} 127.0.0.1:{s.port} weight {w}\n"
        for (n, s), w in zip(sinks.items(), (1, 2, 1), strict=True)
    )
    hport, nport = free_port(), free_port()
    proc, out = _haproxy_out(_frontend(hport, servers), hport)
    haproxy.append(proc)
    proxy = lab.proxy(_frontend(nport, servers))
    theirs = [_ask(hport) for _ in range(12)]
    ours = [_ask(nport) for _ in range(12)]
    assert ours == theirs, (_read(out), proxy.output())


def test_leastconn_avoids_the_server_holding_long_connections(lab: Lab) -> None:
    sinks = _named_sinks(lab, None, ["a", "b"])
    port = free_port()
    servers = "".join(f"  server {n} 127.0.0.1:{s.port}\n" for n, s in sinks.items())
    lab.proxy(_frontend(port, "  balance leastconn\n" + servers))
    held = [connect(None, ("127.0.0.1", port)) for _ in range(3)]
    try:
        names = [h.recv(16).decode().strip() for h in held]
        busy = Counter(names).most_common(1)[0][0]
        idle = "b" if busy == "a" else "a"
        assert Counter(names)[busy] == 2
        # short connections all go to the server with fewer connections in flight
        assert [_ask_to_the_end(port) for _ in range(3)] == [idle] * 3
    finally:
        for h in held:
            h.close()


def test_balance_source_keeps_each_client_on_one_server(lab: Lab) -> None:
    sinks = _named_sinks(lab, None, ["a", "b", "c"])
    port = free_port()
    servers = "".join(f"  server {n} 127.0.0.1:{s.port}\n" for n, s in sinks.items())
    lab.proxy(_frontend(port, "  balance source\n" + servers))
    chosen = {}
    for i in range(2, 10):
        src = f"127.0.0.{i}"
        answers = {_ask(port, src) for _ in range(5)}
        assert len(answers) == 1, (src, answers)
        chosen[src] = answers.pop()
    assert len(set(chosen.values())) > 1, chosen


# -- health checks -------------------------------------------------------------------------


def test_backup_takes_over_and_gives_back(lab: Lab) -> None:
    main = lab.sink(None, "127.0.0.1", reply=b"main\n")
    spare = lab.sink(None, "127.0.0.1", reply=b"spare\n")
    port = free_port()
    proxy = lab.proxy(
        _frontend(
            port,
            f"  server main 127.0.0.1:{main.port} check inter 100ms rise 2 fall 2\n"
            f"  server spare 127.0.0.1:{spare.port} backup check inter 100ms\n",
        )
    )
    assert [_ask(port) for _ in range(3)] == ["main"] * 3
    main.close()
    out = proxy.wait_output("Server l/main is DOWN")
    assert (
        'Server l/main is DOWN, reason: Layer4 connection problem, info: "Connection refused"'
        in out
    )
    assert "0 active and 1 backup servers left. Running on backup." in out
    assert [_ask(port) for _ in range(3)] == ["spare"] * 3
    back = lab.sink(None, "127.0.0.1", main.port, reply=b"main-again\n")
    out = proxy.wait_output("Server l/main is UP")
    assert "Server l/main is UP, reason: Layer4 check passed" in out
    assert "1 active and 1 backup servers online." in out
    assert [_ask(port) for _ in range(3)] == ["main-again"] * 3
    assert back.conns


def test_down_log_line_matches_haproxy(lab: Lab, haproxy: list[subprocess.Popen[bytes]]) -> None:
    dead = free_port()
    hport, nport = free_port(), free_port()
    body = f"  server s1 127.0.0.1:{dead} check inter 100ms\n"
    proc, hout = _haproxy_out(_frontend(hport, body), hport)
    haproxy.append(proc)
    proxy = lab.proxy(_frontend(nport, body))
    ours = proxy.wait_output("has no server available!")

    def logged() -> str | None:
        text = _read(hout)
        return text if "has no server available!" in text else None

    theirs = wait_until(logged, 10, "HAProxy's 'has no server available!'")

    def norm(text: str) -> list[str]:
        lines = [ln for ln in text.splitlines() if " is DOWN" in ln or "no server" in ln]
        return [re.sub(r"\(\d+\)|duration: \d+ms", "", ln) for ln in lines]

    assert norm(ours) == norm(theirs)
    assert norm(ours)


def test_no_server_up_closes_new_connections_at_once(lab: Lab) -> None:
    port = free_port()
    proxy = lab.proxy(_frontend(port, f"  server s1 127.0.0.1:{free_port()} check inter 100ms\n"))
    proxy.wait_output("has no server available!")
    with connect(None, ("127.0.0.1", port)) as c:
        assert recv_all(c, timeout=2) == b""
    line = proxy.wait_output("l/<NOSRV>")
    assert re.search(r" l l/<NOSRV> -?\d+/-1/\d+ 0 SC ", line), line


def test_check_runs_inside_the_server_namespace(lab: Lab) -> None:
    ns_ok = lab.netns("ok")
    ns_empty = lab.netns("empty")
    port = free_port(ns_ok)
    inside = lab.sink(ns_ok, "127.0.0.1", port, reply=b"inside\n")
    decoy = lab.sink(None, "127.0.0.1", port, reply=b"decoy\n")
    lport = free_port()
    proxy = lab.proxy(
        _frontend(
            lport,
            f"  server good 127.0.0.1:{port} namespace {ns_ok} check inter 100ms fall 1\n"
            f"  server fooled 127.0.0.1:{port} namespace {ns_empty} check inter 100ms fall 1\n",
        )
    )
    out = proxy.wait_output("Server l/fooled is DOWN")
    assert (
        'Server l/fooled is DOWN, reason: Layer4 connection problem, info: "Connection refused"'
        in out
    )
    assert _wait_conns(inside, 3) >= 3  # checks keep reaching the namespaced server
    assert "l/good is DOWN" not in proxy.output()
    assert [_ask(lport) for _ in range(3)] == ["inside"] * 3
    assert decoy.conns == []


def test_tcp_check_banner_expect_and_send(lab: Lab) -> None:
    good = lab.sink(None, "127.0.0.1", reply=b"+OK ready\r\n")
    bad = lab.sink(None, "127.0.0.1", reply=b"-ERR busy\r\n")
    port = free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
  timeout check 300ms
listen l
  bind 127.0.0.1:{port}
  option tcp-check
  tcp-check send PING\\r\\n
  tcp-check expect string +OK
  server good 127.0.0.1:{good.port} check inter 100ms
  server bad 127.0.0.1:{bad.port} check inter 100ms
"""
    )
    out = proxy.wait_output("Server l/bad is DOWN")
    assert (
        "Server l/bad is DOWN, reason: Layer7 timeout, "
        "info: \" at step 2 of tcp-check (expect string '+OK')\"" in out
    )
    conns = good.wait_conns(2)
    conns[0].closed.wait(5)
    assert bytes(conns[0].data) == b"PING\r\n"
    assert "l/good is DOWN" not in proxy.output()


def test_tcp_check_negated_regex_marks_server_down(lab: Lab) -> None:
    bad = lab.sink(None, "127.0.0.1", reply=b"-ERR busy\r\n")
    port = free_port()
    proxy = lab.proxy(
        _frontend(
            port,
            "  option tcp-check\n  tcp-check expect ! rstring ^-ERR\n"
            f"  server s1 127.0.0.1:{bad.port} check inter 100ms\n",
        )
    )
    out = proxy.wait_output("Server l/s1 is DOWN")
    assert (
        'reason: Layer7 invalid response, info: "TCPCHK matched unwanted content (regex) at '
        'step 1"' in out
    )


def test_check_sends_proxy_header(lab: Lab) -> None:
    v1 = lab.sink(None, "127.0.0.1")
    v2 = lab.sink(None, "127.0.0.1")
    other_port = lab.sink(None, "127.0.0.1")
    forced = lab.sink(None, "127.0.0.1")
    port = free_port()
    lab.proxy(
        _frontend(
            port,
            f"  server v1 127.0.0.1:{v1.port} send-proxy check inter 100ms\n"
            f"  server v2 127.0.0.1:{v2.port} send-proxy-v2 check inter 100ms\n"
            f"  server p 127.0.0.1:{v1.port} send-proxy check inter 100ms"
            f" port {other_port.port}\n"
            f"  server f 127.0.0.1:{v1.port} send-proxy check inter 100ms"
            f" port {forced.port} check-send-proxy\n",
        )
    )

    def first_data(sink: Sink) -> bytes:
        conn = sink.wait_conns(1)[0]
        conn.closed.wait(5)
        return bytes(conn.data)

    assert first_data(v2) == bytes.fromhex("0d0a0d0a000d0a515549540a2000 0000".replace(" ", ""))
    assert re.fullmatch(
        rb"PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ %d\r\n" % v1.port, first_data(v1)
    )
    assert first_data(other_port) == b""
    assert re.fullmatch(
        rb"PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ %d\r\n" % forced.port, first_data(forced)
    )


# -- failure under load --------------------------------------------------------------------


def test_server_killed_under_load_loses_nothing_after_it_is_marked_down(lab: Lab) -> None:
    a = lab.sink(None, "127.0.0.1", echo=True)
    b = lab.sink(None, "127.0.0.1", echo=True)
    port = free_port()
    proxy = lab.proxy(
        _frontend(
            port,
            "  retries 3\n  option redispatch\n"
            f"  server a 127.0.0.1:{a.port} check inter 100ms fall 1\n"
            f"  server b 127.0.0.1:{b.port} check inter 100ms fall 1\n",
        )
    )
    down_at: list[float] = []
    results: list[tuple[float, bool]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(n):
            t0 = time.monotonic()
            ok = False
            payload = f"hello {i}\n".encode()
            try:
                with connect(None, ("127.0.0.1", port)) as c:
                    c.sendall(payload)
                    c.shutdown(socket.SHUT_WR)
                    ok = recv_all(c, timeout=10) == payload
            except OSError:
                ok = False
            with lock:
                results.append((t0, ok))

    threads = [threading.Thread(target=client, args=(50,)) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(results) >= 40, 10, "40 answers before the server goes")
    b.close()
    proxy.wait_output("Server l/b is DOWN")
    down_at.append(time.monotonic())
    for t in threads:
        t.join(60)
    assert len(results) == 200
    after = [ok for t0, ok in results if t0 > down_at[0]]
    assert after and all(after)
    assert sum(1 for _, ok in results if not ok) <= 4  # at most those in flight on b


# -- configuration errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("  server s1 * namespace * check", "'check' cannot be used with 'namespace *'"),
        ("  balance nosuch", "'balance'"),
        ("  server s1 127.0.0.1 check", "has neither service port nor check port"),
    ],
)
def test_check_mode_rejects_invalid_combinations(line: str, needle: str) -> None:
    with tempfile.TemporaryDirectory(prefix="nsp-cfg-") as tmp:
        path = os.path.join(tmp, "bad.cfg")
        with open(path, "w") as f:
            f.write(DEFAULTS + "backend b\n" + line + "\n")
        lineno = (DEFAULTS + "backend b\n").count("\n") + 1
        proc = subprocess.run(
            [sys.executable, "-m", "nsproxy", "-c", "-f", path],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode != 0
    assert f"{path}:{lineno}" in proc.stderr, proc.stderr
    assert needle in proc.stderr, proc.stderr
