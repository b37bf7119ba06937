"""The seed's first two examples and the TCP core, end to end in real namespaces."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

from lab.netlab import (
    Lab,
    connect,
    echo_through,
    free_port,
    log_fields,
    recv_all,
    tcp_defaults,
    timeout_proxy,
)

DEFAULTS = tcp_defaults()


def _listening(ns: str | None, port: int) -> bool:
    cmd = ["ss", "-Hltn", f"sport = :{port}"]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return f":{port}" in out


def test_seed_example_1_listener_lives_in_its_namespace(lab: Lab) -> None:
    ns = lab.netns("netns2")
    lab.iface(ns, "eth7", "192.168.1.1/24")
    backend = lab.sink(None, "127.0.0.1", reply=b"from-root\n")
    proxy = lab.proxy(
        DEFAULTS
        + f"""
frontend f_example
 bind 192.168.1.1:80 namespace {ns}
 default_backend http
backend http
 server web 127.0.0.1:{backend.port}
"""
    )
    assert _listening(ns, 80)
    assert not _listening(None, 80) or not any(
        "192.168.1.1" in line
        for line in subprocess.run(
            ["ss", "-Hltn"], capture_output=True, text=True
        ).stdout.splitlines()
    )
    with connect(ns, ("192.168.1.1", 80)) as c:
        c.sendall(b"hello")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"from-root\n"
    conns = backend.wait_conns(1)
    conns[0].closed.wait(5)
    assert bytes(conns[0].data) == b"hello"
    line = proxy.wait_output("f_example http/web")
    assert " f_example http/web " in line


def test_seed_example_2_server_in_namespace_decoy_untouched(lab: Lab) -> None:
    ns = lab.netns("netns2")
    port = free_port(ns)
    real = lab.sink(ns, "127.0.0.1", port, reply=b"tenant\n")
    decoy = lab.sink(None, "127.0.0.1", port, reply=b"decoy\n")
    lport = free_port()
    lab.proxy(
        DEFAULTS
        + f"""
frontend f
 bind 127.0.0.1:{lport}
 default_backend b_example
backend b_example
 server s1 127.0.0.1:{port} namespace {ns}
"""
    )
    for _ in range(3):
        with connect(None, ("127.0.0.1", lport)) as c:
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"tenant\n"
    assert len(real.wait_conns(3)) == 3
    assert decoy.conns == []


def test_two_tenants_with_overlapping_addresses(lab: Lab) -> None:
    ns_a, ns_b = lab.netns("tenant-a"), lab.netns("tenant-b")
    port = 8000
    lab.sink(ns_a, "127.0.0.1", port, reply=b"A\n")
    lab.sink(ns_b, "127.0.0.1", port, reply=b"B\n")
    proxy = lab.proxy(
        DEFAULTS
        + f"""
listen tenant_a
 bind 127.0.0.1:80 namespace {ns_a}
 server app 127.0.0.1:{port} namespace {ns_a}
listen tenant_b
 bind 127.0.0.1:80 namespace {ns_b}
 server app 127.0.0.1:{port} namespace {ns_b}
"""
    )
    for ns, want in ((ns_a, b"A\n"), (ns_b, b"B\n"), (ns_a, b"A\n")):
        with connect(ns, ("127.0.0.1", 80)) as c:
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == want
    out = proxy.wait_output("tenant_b tenant_b/app")
    assert "tenant_a tenant_a/app" in out


def test_namespace_star_uses_listener_namespace(lab: Lab) -> None:
    ns_a, ns_b = lab.netns("a"), lab.netns("b")
    port = 9000
    lab.sink(ns_a, "127.0.0.1", port, reply=b"A\n")
    lab.sink(ns_b, "127.0.0.1", port, reply=b"B\n")
    lab.sink(None, "127.0.0.1", free_port(), reply=b"root\n")
    lab.proxy(
        DEFAULTS
        + f"""
frontend fa
 bind 127.0.0.1:81 namespace {ns_a}
 default_backend be
frontend fb
 bind 127.0.0.1:81 namespace {ns_b}
 default_backend be
backend be
 server s 127.0.0.1:{port} namespace *
"""
    )
    for ns, want in ((ns_a, b"A\n"), (ns_b, b"B\n")):
        with connect(ns, ("127.0.0.1", 81)) as c:
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == want


def test_32_mib_each_way_byte_exact(lab: Lab) -> None:
    ns = lab.netns("bulk")
    echo = lab.sink(ns, "127.0.0.1", 7000, echo=True)
    lport = free_port()
    lab.proxy(
        DEFAULTS
        + f"""
listen bulk
 bind 127.0.0.1:{lport}
 server echo 127.0.0.1:7000 namespace {ns}
"""
    )
    payload = os.urandom(32 * 1024 * 1024)
    received = echo_through(lport, payload)
    assert len(received) == len(payload)
    assert received == payload
    conn = echo.wait_conns(1)[0]
    conn.closed.wait(10)
    assert bytes(conn.data) == payload


def test_half_close_reaches_server_and_reply_still_flows(lab: Lab) -> None:
    ns = lab.netns("half")
    ready = threading.Event()
    result: dict[str, bytes] = {}

    from lab.netlab import socket_in

    srv = socket_in(ns)
    srv.bind(("127.0.0.1", 7100))
    srv.listen(1)

    def server() -> None:
        c, _ = srv.accept()
        with c:
            data = recv_all(c)  # returns only once the client's FIN came through
            result["got"] = data
            ready.set()
            time.sleep(0.3)
            c.sendall(b"reply-after-fin:" + data)

    t = threading.Thread(target=server, daemon=True)
    t.start()
    lport = free_port()
    lab.proxy(
        DEFAULTS
        + f"""
listen half
 bind 127.0.0.1:{lport}
 server s 127.0.0.1:7100 namespace {ns}
"""
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(b"question")
        c.shutdown(socket.SHUT_WR)
        assert ready.wait(5)
        assert recv_all(c) == b"reply-after-fin:question"
    srv.close()


def test_server_down_closes_client_with_log(lab: Lab) -> None:
    lport, dead = free_port(), free_port()
    proxy = lab.proxy(
        DEFAULTS
        + f"""
listen down
 bind 127.0.0.1:{lport}
 retries 1
 timeout connect 500ms
 server s1 127.0.0.1:{dead}
"""
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(b"x")
        assert recv_all(c) == b""
    out = proxy.wait_output(" SC ")
    line = next(ln for ln in out.splitlines() if "down/s1" in ln)
    fields = line.split()
    assert fields[4].startswith("-1/-1/") or fields[4].split("/")[1] == "-1"
    assert fields[6] == "SC"
    assert fields[7].endswith("/1")  # one retry


def test_config_errors_listed_with_file_and_line(tmp_path: object) -> None:
    import pathlib

    cfg = pathlib.Path(str(tmp_path)) / "bad.cfg"
    cfg.write_text(
        "defaults\n  mode tcp\n"
        "frontend f\n  bind 127.0.0.1:1 namespace nsp-does-not-exist-xyz\n"
        "  frobnicate yes\n  default_backend nowhere\n"
        "backend b\n  server s1 not-an-ip-@@:80\n  timeout connect 5q\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode != 0
    err = res.stderr
    assert f"[{cfg}:4]" in err and "Cannot open namespace 'nsp-does-not-exist-xyz'" in err
    assert f"[{cfg}:5]" in err and "frobnicate" in err
    assert f"[{cfg}:8]" in err
    assert f"[{cfg}:9]" in err
    assert "Fatal errors found in configuration." in err


def test_timeout_client_closes_idle_connection(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", free_port())
    proxy, lport = timeout_proxy(
        lab,
        "  timeout connect 2s\n  timeout client 400ms\n  timeout server 30s",
        f"127.0.0.1:{sink.port}",
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        assert recv_all(c, timeout=10) == b""
    assert log_fields(proxy)[6] == "cD"


def test_timeout_server_closes_when_server_is_silent(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", free_port())
    proxy, lport = timeout_proxy(
        lab,
        "  timeout connect 2s\n  timeout client 30s\n  timeout server 400ms",
        f"127.0.0.1:{sink.port}",
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.sendall(b"question")
        assert recv_all(c, timeout=10) == b""
    assert log_fields(proxy)[6] == "sD"


def test_timeout_connect_when_server_never_answers(lab: Lab) -> None:
    from lab.netlab import socket_in

    ns = lab.netns("slow")
    full = socket_in(ns)
    full.bind(("127.0.0.1", 7500))
    full.listen(0)
    fillers = [connect(ns, ("127.0.0.1", 7500), timeout=1)]  # backlog 0 holds one
    try:
        proxy, lport = timeout_proxy(
            lab,
            "  timeout connect 300ms\n  timeout client 30s\n  timeout server 30s",
            f"127.0.0.1:7500 namespace {ns}",
        )
        with connect(None, ("127.0.0.1", lport)) as c:
            assert recv_all(c, timeout=10) == b""
        assert log_fields(proxy)[6] == "sC"
    finally:
        for f in fillers:
            f.close()
        full.close()


def test_timeout_tunnel_replaces_client_and_server(lab: Lab) -> None:
    echo = lab.sink(None, "127.0.0.1", free_port(), echo=True)
    proxy, lport = timeout_proxy(
        lab,
        "  timeout connect 2s\n  timeout client 200ms\n  timeout server 200ms\n"
        "  timeout tunnel 1500ms",
        f"127.0.0.1:{echo.port}",
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        time.sleep(0.6)  # longer than client/server timeouts, shorter than tunnel
        c.sendall(b"still-there")
        assert c.recv(100) == b"still-there"
        assert recv_all(c, timeout=10) == b""  # then the tunnel timeout ends it
    assert log_fields(proxy)[6] in ("cD", "sD")


def test_timeout_client_fin_after_half_close(lab: Lab) -> None:
    from lab.netlab import socket_in

    srv = socket_in(None)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    held: list[socket.socket] = []
    t = threading.Thread(target=lambda: held.append(srv.accept()[0]), daemon=True)
    t.start()
    proxy, lport = timeout_proxy(
        lab,
        "  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n"
        "  timeout client-fin 400ms",
        f"127.0.0.1:{srv.getsockname()[1]}",
    )
    try:
        with connect(None, ("127.0.0.1", lport)) as c:
            c.shutdown(socket.SHUT_WR)  # the server never answers nor closes
            assert recv_all(c, timeout=10) == b""
        assert log_fields(proxy)[6] == "cD"
    finally:
        for h in held:
            h.close()
        srv.close()


def test_ipv6_and_unix_sockets_for_binds_and_servers(lab: Lab, tmp_path: object) -> None:
    import pathlib

    ns = lab.netns("v6")
    v6 = lab.sink(ns, "::1", 7600, reply=b"v6\n")
    unix_path = pathlib.Path(str(tmp_path)) / "srv.sock"
    usrv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    usrv.bind(str(unix_path))
    usrv.listen(4)

    def unix_server() -> None:
        c, _ = usrv.accept()
        with c:
            c.sendall(b"unix\n")

    threading.Thread(target=unix_server, daemon=True).start()
    front_unix = pathlib.Path(str(tmp_path)) / "front.sock"
    lab.proxy(
        DEFAULTS
        + f"""
listen six
 bind [::1]:8600 namespace {ns}
 server s [::1]:7600 namespace {ns}
listen ux
 bind unix@{front_unix} mode 600
 server s {unix_path}
"""
    )
    with connect(ns, ("::1", 8600)) as c:
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"v6\n"
    assert v6.wait_conns(1)[0].peer[0] == "::1"
    assert oct(os.stat(front_unix).st_mode & 0o777) == "0o600"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(5)
        c.connect(str(front_unix))
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"unix\n"
    usrv.close()


def test_default_server_namespace_applies_and_config_directory(lab: Lab, tmp_path: object) -> None:
    import pathlib

    ns = lab.netns("ds")
    lab.sink(ns, "127.0.0.1", 7700, reply=b"in-ns\n")
    lab.sink(None, "127.0.0.1", 7700, reply=b"root\n")
    lport = free_port()
    d = pathlib.Path(str(tmp_path)) / "conf.d"
    d.mkdir()
    (d / "10-global.cfg").write_text(DEFAULTS)
    (d / "20-proxy.cfg").write_text(
        f"listen l\n bind 127.0.0.1:{lport}\n default-server namespace {ns}\n"
        " server s 127.0.0.1:7700\n"
    )
    (d / "ignored.txt").write_text("this is not a configuration file\n")
    res = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(d)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert "Configuration file is valid" in res.stdout
    from lab.netlab import Proxy

    proxy = Proxy("", extra_args=("-f", str(d)))
    try:
        with connect(None, ("127.0.0.1", lport)) as c:
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"in-ns\n"  # HAProxy 2.6 ignores it; later versions apply it
    finally:
        proxy.stop()
