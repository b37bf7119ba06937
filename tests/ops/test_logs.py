"""Log lines as HAProxy writes them: tcplog fields, log-format with namespaces, syslog over UDP."""

from __future__ import annotations

import os
import re
import socket
import time
from datetime import datetime

from lab.netlab import Lab, connect, echo_through, free_port, log_fields, recv_all

DEFAULTS = """
defaults
  mode tcp
  log global
  timeout connect 2s
  timeout client 5s
  timeout server 5s
"""

# HAProxy's `option tcplog`:
# %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq
TCPLOG = re.compile(
    r"^(?P<ci>[0-9.]+):(?P<cp>\d+) \[(?P<t>[^\]]+)\] (?P<ft>\S+) (?P<b>[^/ ]+)/(?P<s>\S+) "
    r"(?P<Tw>-?\d+)/(?P<Tc>-?\d+)/(?P<Tt>\d+) (?P<B>\d+) (?P<ts>\S\S) "
    r"(?P<ac>\d+)/(?P<fc>\d+)/(?P<bc>\d+)/(?P<sc>\d+)/(?P<rc>\+?\d+) (?P<sq>\d+)/(?P<bq>\d+)$"
)


def _exchange(ns: str | None, addr: tuple[str, int], payload: bytes) -> tuple[bytes, int]:
    with connect(ns, addr) as c:
        port = c.getsockname()[1]
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c), port


def _line_with(lines: list[str], needle: str) -> str:
    return next(ln for ln in lines if needle in ln)


def test_tcplog_fields(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", reply=b"0123456789")
    port = free_port()
    proxy = lab.proxy(
        "global\n  log stdout format raw local0\n"
        + DEFAULTS
        + f"""
frontend front
  option tcplog
  bind 127.0.0.1:{port}
  default_backend back
backend back
  server web 127.0.0.1:{sink.port}
"""
    )
    before = time.time()
    reply, cport = _exchange(None, ("127.0.0.1", port), b"hello")
    assert reply == b"0123456789"
    out = proxy.wait_output(f":{cport} [")
    m = TCPLOG.match(_line_with(out.splitlines(), f":{cport} ["))
    assert m is not None, out
    f = m.groupdict()
    assert (f["ci"], f["cp"]) == ("127.0.0.1", str(cport))
    accepted = datetime.strptime(f["t"], "%d/%b/%Y:%H:%M:%S.%f").timestamp()
    assert before - 1 <= accepted <= time.time() + 1
    assert (f["ft"], f["b"], f["s"]) == ("front", "back", "web")
    assert int(f["Tw"]) >= 0 and int(f["Tc"]) >= 0 and int(f["Tt"]) >= int(f["Tc"])
    assert f["B"] == "10" and f["ts"] == "--"
    assert (f["ac"], f["fc"], f["bc"], f["sc"], f["rc"]) == ("1", "1", "0", "0", "0")
    assert (f["sq"], f["bq"]) == ("0", "0")

    # No server can be reached: <NOSRV>-less failure with a connection termination state.
    dead = free_port()
    port2 = free_port()
    proxy2 = lab.proxy(
        "global\n  log stdout format raw local0\n"
        + DEFAULTS
        + f"""
listen down
  option tcplog
  retries 0
  bind 127.0.0.1:{port2}
  server gone 127.0.0.1:{dead}
"""
    )
    reply, cport = _exchange(None, ("127.0.0.1", port2), b"x")
    assert reply == b""
    out = proxy2.wait_output(f":{cport} [")
    m = TCPLOG.match(_line_with(out.splitlines(), f":{cport} ["))
    assert m is not None, out
    assert (m["ft"], m["b"], m["s"]) == ("down", "down", "gone")
    assert m["ts"] == "SC" and m["B"] == "0" and m["Tc"] == "-1"


def test_log_format_with_namespaces(lab: Lab) -> None:
    client_ns, server_ns = lab.netns("client"), lab.netns("server")
    sink = lab.sink(server_ns, "127.0.0.1", reply=b"pong")
    port = free_port(client_ns)
    proxy = lab.proxy(
        "global\n  log stdout format raw local0\n"
        + DEFAULTS
        + f"""
frontend f
  bind 127.0.0.1:{port} namespace {client_ns}
  log-format "%ci %cp %fi %fp %si %sp %ft %b %s %U %B %ts %ac/%fc/%bc/%sc %[fc_netns] %[bc_netns]"
  default_backend b
backend b
  server s 127.0.0.1:{sink.port} namespace {server_ns}
"""
    )
    reply, cport = _exchange(client_ns, ("127.0.0.1", port), b"ping!")
    assert reply == b"pong"
    out = proxy.wait_output(f"127.0.0.1 {cport} ")
    fields = _line_with(out.splitlines(), f"127.0.0.1 {cport} ").split()
    assert fields == [
        "127.0.0.1",
        str(cport),
        "127.0.0.1",
        str(port),
        "127.0.0.1",
        str(sink.port),
        "f",
        "b",
        "s",
        "5",
        "4",
        "--",
        "1/1/0/0",
        client_ns,
        server_ns,
    ]


def test_syslog_udp_rfc3164_and_rfc5424(lab: Lab) -> None:
    sink = lab.sink(None, "127.0.0.1", reply=b"ok")
    u3164 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u5424 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for u in (u3164, u5424):
        u.bind(("127.0.0.1", 0))
        u.settimeout(5)
    port = free_port()
    try:
        proxy = lab.proxy(
            f"""
global
  log 127.0.0.1:{u3164.getsockname()[1]} local0
  log 127.0.0.1:{u5424.getsockname()[1]} format rfc5424 local3 info
  log-tag nsp
"""
            + DEFAULTS
            + f"""
listen app
  option tcplog
  bind 127.0.0.1:{port}
  server s 127.0.0.1:{sink.port}
"""
        )
        _, cport = _exchange(None, ("127.0.0.1", port), b"hi")
        pid = proxy.proc.pid
        d3164 = u3164.recv(65536).decode()
        d5424 = u5424.recv(65536).decode()
    finally:
        u3164.close()
        u5424.close()
    # local0 (16) * 8 + info (6) = 134; "Mmm dd hh:mm:ss tag[pid]: message\n"
    m = re.match(r"^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (\w+)\[(\d+)\]: (.*)\n$", d3164)
    assert m is not None, d3164
    assert m[1] == "134" and m[3] == "nsp" and m[4] == str(pid)
    assert TCPLOG.match(m[5]) is not None and m[5].startswith(f"127.0.0.1:{cport} [")
    # local3 (19) * 8 + info (6) = 158; "1 TIMESTAMP HOST APP PID - - message\n"
    m = re.match(r"^<(\d+)>1 (\S+) (\S+) (\S+) (\d+) - - (.*)\n$", d5424)
    assert m is not None, d5424
    assert m[1] == "158" and m[3] == "-" and m[4] == "nsp" and m[5] == str(pid)
    assert abs(datetime.fromisoformat(m[2]).timestamp() - time.time()) < 60
    assert TCPLOG.match(m[6]) is not None
    assert os.getpid() != pid


def test_log_format_addresses_of_both_connections(lab: Lab) -> None:
    ns = lab.netns("addr")
    sink = lab.sink(ns, "127.0.0.1", 7000, reply=b"ok\n")
    lport = free_port()
    proxy = lab.proxy(
        "global\n  log stdout format raw local0\n"
        + DEFAULTS
        + f"""
listen l
  bind 127.0.0.1:{lport}
  log-format "addr ci=%ci:%cp fi=%fi:%fp bi=%bi:%bp si=%si:%sp ns=%[bc_netns]"
  server s 127.0.0.1:7000 namespace {ns}
"""
    )
    with connect(None, ("127.0.0.1", lport)) as c:
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"ok\n"
        client = c.getsockname()
    seen = sink.wait_conns(1)[0]
    line = next(ln for ln in proxy.wait_output("addr ci=").splitlines() if "addr ci=" in ln)
    assert line == (
        f"addr ci={client[0]}:{client[1]} fi=127.0.0.1:{lport} "
        f"bi={seen.peer[0]}:{seen.peer[1]} si=127.0.0.1:7000 ns={ns}"
    )


def test_httplog_in_tcp_mode_falls_back_to_tcplog(lab: Lab) -> None:
    """HAProxy warns that `option httplog` needs HTTP mode and logs tcplog lines instead."""
    sink = lab.sink(None, "127.0.0.1", echo=True)
    port = free_port()
    proxy = lab.proxy(
        "global\n  log stdout format raw local0\ndefaults\n  mode tcp\n  log global\n"
        "  option httplog\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n"
        f"listen t\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:{sink.port}\n"
    )
    assert echo_through(port, b"ping") == b"ping"
    fields = log_fields(proxy)
    assert fields[2:4] == ["t", "t/s"] and fields[6] == "--"
