"""Zero-copy relay: `option splice-*` moves bulk data through kernel pipes, byte-exact."""

from __future__ import annotations

import os
import socket
import threading

from lab.netlab import Lab, connect, echo_through, free_port, recv_all, socket_in, tcp_defaults

DEFAULTS = tcp_defaults("10s", "10s")


def _pipes_of(pid: int) -> int:
    fds = os.listdir(f"/proc/{pid}/fd")
    return sum(1 for fd in fds if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:"))


def _echo_32_mib(lport: int) -> tuple[bytes, bytes]:
    payload = os.urandom(32 * 1024 * 1024)
    return payload, echo_through(lport, payload)


def test_spliced_32_mib_each_way_byte_exact_and_pipes_reused(lab: Lab) -> None:
    ns = lab.netns("splice")
    echo = lab.sink(ns, "127.0.0.1", 7000, echo=True)
    lport = free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
listen bulk
 option splice-request
 option splice-response
 bind 127.0.0.1:{lport}
 server echo 127.0.0.1:7000 namespace {ns}
"""
    )
    before = _pipes_of(proxy.proc.pid)
    for _ in range(2):
        payload, received = _echo_32_mib(lport)
        assert len(received) == len(payload)
        assert received == payload
    # two directions spliced: two pipes (four fds) kept in the pool for the next connection
    assert _pipes_of(proxy.proc.pid) - before == 4
    assert len(echo.wait_conns(2)) == 2
    assert " bulk bulk/echo " in proxy.wait_output(f"{32 * 1024 * 1024} --")


def test_no_splice_option_means_no_pipe(lab: Lab) -> None:
    ns = lab.netns("nosplice")
    lab.sink(ns, "127.0.0.1", 7000, echo=True)
    lport = free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
listen bulk
 bind 127.0.0.1:{lport}
 server echo 127.0.0.1:7000 namespace {ns}
"""
    )
    before = _pipes_of(proxy.proc.pid)
    payload, received = _echo_32_mib(lport)
    assert received == payload
    assert _pipes_of(proxy.proc.pid) == before


def test_spliced_half_close_then_bulk_reply(lab: Lab) -> None:
    ns = lab.netns("splhalf")
    srv = socket_in(ns)
    srv.bind(("127.0.0.1", 7100))
    srv.listen(1)
    reply = os.urandom(8 * 1024 * 1024)
    got: dict[str, bytes] = {}

    def server() -> None:
        c, _ = srv.accept()
        with c:
            got["data"] = recv_all(c)  # ends only when the client's FIN came through
            c.sendall(reply)

    t = threading.Thread(target=server, daemon=True)
    t.start()
    lport = free_port()
    lab.proxy(
        DEFAULTS
        + f"""
listen half
 option splice-auto
 bind 127.0.0.1:{lport}
 server s 127.0.0.1:7100 namespace {ns}
"""
    )
    question = os.urandom(4 * 1024 * 1024)
    with connect(None, ("127.0.0.1", lport), timeout=20) as c:
        c.sendall(question)
        c.shutdown(socket.SHUT_WR)
        answer = recv_all(c, timeout=20)
    t.join(10)
    srv.close()
    assert got["data"] == question
    assert answer == reply


def test_send_proxy_header_then_spliced_bytes(lab: Lab) -> None:
    ns = lab.netns("splpp")
    sink = lab.sink(ns, "127.0.0.1", 7200)
    lport = free_port()
    lab.proxy(
        DEFAULTS
        + f"""
listen pp
 option splice-request
 bind 127.0.0.1:{lport}
 server s 127.0.0.1:7200 namespace {ns} send-proxy
"""
    )
    payload = os.urandom(4 * 1024 * 1024)
    with connect(None, ("127.0.0.1", lport), timeout=20) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        recv_all(c, timeout=20)
    conn = sink.wait_conns(1)[0]
    conn.closed.wait(10)
    data = bytes(conn.data)
    assert data.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ")
    assert data[data.index(b"\r\n") + 2 :] == payload
