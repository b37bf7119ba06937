"""log-format compiled by the engine: variables, flags, %[expr], errors, and a live HAProxy line."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from nsproxy.sample import Hook, SampleError, compile_logformat
from nsproxy.sample.logformat import TCPLOG_FORMAT

from .haproxy_ref import HAPROXY, check_config, needs_haproxy, refused_port, running
from .txn import StubTxn

TCPLOG = TCPLOG_FORMAT


def render(fmt: str, **kw: object) -> str:
    return compile_logformat(fmt)(StubTxn(**kw))  # type: ignore[arg-type]


def test_tcplog_line() -> None:
    ts = 1764412345.5
    line = render(
        TCPLOG,
        backend_name="be",
        server_name="s1",
        accept_ts=ts,
        t_queue=0,
        t_connect=1,
        t_total=25,
        bytes_out=1234,
        termination="--",
        conn_process=3,
        conn_frontend=2,
        conn_backend=1,
        conn_server=1,
        retries=1,
        redispatched=True,
    )
    tm = time.localtime(ts)
    date = time.strftime("%d/%b/%Y:%H:%M:%S", tm) + ".500"
    assert line == f"192.0.2.10:40000 [{date}] fe_main be/s1 0/1/25 1234 -- 3/2/1/1/+1 0/0"


def test_variables_as_before() -> None:
    # What ops/logformat.render printed for each variable it knew.
    t = {"backend_name": None, "server_name": None}
    assert render("%b/%s", **t) == "fe_main/<NOSRV>"
    assert render("%si:%sp %bi:%bp") == "-:- -:-"
    assert render("%si:%sp", server_addr=("10.0.0.1", 80)) == "10.0.0.1:80"
    assert render("%bi:%bp", backend_local=("10.0.0.2", 5555)) == "10.0.0.2:5555"
    assert render("%ci:%cp", src="/run/x.sock") == "unix:-"
    assert render("%fi:%fp") == "198.51.100.1:443"
    assert render("%[fc_netns] %[bc_netns]") == "- -"
    assert render("%[fc_netns] %[bc_netns]", fc_netns="a", bc_netns="b") == "a b"
    assert render("%pid") == str(os.getpid())
    assert render("%U %B", bytes_in=7, bytes_out=9) == "7 9"
    assert render("100%%") == "100%"


def test_flags_and_expressions() -> None:
    assert render("%{+Q}f %f") == '"fe_main" fe_main'
    assert render("%{+Q}o %f %b %{-Q}s") == '"fe_main" "fe_main" <NOSRV>'
    assert render("%{+X}ci:%{+X}cp") == "C000020A:9C40"
    assert render("%[var(txn.none)]|%{+Q}[var(txn.none)]|%{-M}[var(txn.none)]|") == '-|""||'
    assert render("%{+Q}[str(a),upper]") == '"A"'
    assert render("%{+E}[str('a\"b]')]") == 'a\\"b\\]'
    assert render("a   b  %f   c") == "a b fe_main c"
    assert render("  lead") == "lead"
    assert compile_logformat("a   b", merge_spaces=False)(StubTxn()) == "a   b"
    assert compile_logformat("%[var(txn.none)]", mandatory=False)(StubTxn()) == ""


def test_constant_format_is_one_string() -> None:
    assert compile_logformat("just text")(StubTxn()) == "just text"


BAD_FORMATS = [
    "%x",
    "%[nosuch]",
    "%[src",
    "%{+Q}",
    "50% off",
    "%HM",
    "%[req.ssl_sni]",
    "%[src]x%[dst",
    "%{+Q",
    "abc%",
    "%[src)]",
]


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
@pytest.mark.parametrize("fmt", BAD_FORMATS)
def test_errors_match_haproxy(tmp_path: Path, fmt: str) -> None:
    head = (
        "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"
        "frontend fe\n  bind 127.0.0.1:65000\n"
    )
    out = check_config(head + f'  log-format "{fmt}"\n', tmp_path)
    marker = "failed to parse log-format : "
    want = next(x for x in out if marker in x).split(marker, 1)[1].removesuffix(".")
    with pytest.raises(SampleError) as exc:
        compile_logformat(fmt, Hook.FE_LOG_END)
    assert str(exc.value) == want


LIVE = (
    "%f %ft %b %s %ci %fi:%fp %{+Q}f %{+X}ci %{+X}fp %{+Q}[str(a)] %[var(sess.none)] "
    "%{+Q}[var(sess.none)] %{-M}[var(sess.none)]. %% %ts %{+Q}o %f %b %{-Q}o %f  %B  "
    "%[src,ipmask(8)]"
)


@needs_haproxy
def test_live_line_matches_haproxy() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    body = (
        f"  log 127.0.0.1:{udp.getsockname()[1]} format raw local0\n"
        f'  log-format "{LIVE}"\n  default_backend be\n'
        # Read the client's byte before connecting, so the stream is never a "null" one.
        "  tcp-request inspect-delay 5s\n  tcp-request content accept if { req.len gt 0 }\n"
    )
    defaults = (
        "\ndefaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n"
        "  timeout connect 2s\n  retries 0\n  option dontlognull\n"
    )
    with (
        udp,
        refused_port() as dead,
        running(body, f"backend be\n  server s1 127.0.0.1:{dead}\n", defaults) as port,
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            src = c.getsockname()
            c.sendall(b"x")
            while c.recv(4096):
                pass
        theirs = udp.recv(65536).decode().rstrip("\n")
    ours = compile_logformat(LIVE)(
        StubTxn(
            frontend_name="fe",
            backend_name="be",
            server_name="s1",
            src=src,
            dst=("127.0.0.1", port),
            termination="SC",
        )
    )
    assert ours == theirs


FETCHES = (
    "%[src]|%[src_port]|%[dst]|%[dst_port]|%[so_id]|%[so_name]|%[fe_name]|%[fe_id]|%[be_name]|"
    "%[be_id]|%[srv_name]|%[srv_id]|%[nbsrv(be)]|%[always_true]|%[always_false]|"
    "%[int(-3),neg]|%[bin(41ff),hex]|%[ipv6(::1)]|%[ipv4(10.0.0.1),ipmask(8)]|%[meth(GET)]|"
    "%[src,ipmask(24)]|%[str(a),concat(b,,c)]|%[bool(1)]"
)


@needs_haproxy
def test_fetches_in_a_live_line_match_haproxy() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    body = (
        f"  id 11\n  log 127.0.0.1:{udp.getsockname()[1]} format raw local0\n"
        f'  log-format "{FETCHES}"\n  default_backend be\n'
        "  tcp-request inspect-delay 5s\n  tcp-request content accept if { req.len gt 0 }\n"
    )
    defaults = (
        "\ndefaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n"
        "  timeout connect 2s\n  retries 0\n  option dontlognull\n"
    )
    with (
        udp,
        refused_port() as dead,
        running(
            body,
            f"backend be\n  id 12\n  server s1 127.0.0.1:{dead} id 13\n",
            defaults,
            bind_options=" id 7 name sock7",
        ) as port,
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            src = c.getsockname()
            c.sendall(b"x")
            while c.recv(4096):
                pass
        theirs = udp.recv(65536).decode().rstrip("\n")
    ours = compile_logformat(FETCHES)(
        StubTxn(
            src=src,
            dst=("127.0.0.1", port),
            so_id=7,
            so_name="sock7",
            frontend_name="fe",
            frontend_id=11,
            backend_name="be",
            backend_id=12,
            server_name="s1",
            server_id=13,
            servers={"be": 1},
        )
    )
    assert ours == theirs
