"""Configuration text -> model: `bind` lines and their option table."""

from __future__ import annotations

import socket
from pathlib import Path

from lab.configtext import errors, model
from nsproxy.addresses import SockAddr
from nsproxy.config.model import BindCfg, Where


def test_every_bind_option_reaches_its_field(tmp_path: Path) -> None:
    (tmp_path / "blue").write_text("")
    first = (
        "bind 127.0.0.1:80,127.0.0.2:81 namespace blue interface eth0 backlog 100 maxconn 50"
        " name web id 10 accept-proxy transparent"
    )
    fe = model(
        f"""
frontend fe
  {first}
  bind :::8443 v4v6
  bind ipv6@::1:9000 v6only
  bind /run/fe.sock mode 660 user haproxy group haproxy
  bind 127.0.0.1:82 defer-accept tfo process 1 thread 1
""",
        str(tmp_path),
    ).proxy("fe")
    assert fe is not None
    a, b, c, d, e = fe.binds
    assert a == BindCfg(
        Where("t.cfg", 3),
        (SockAddr(socket.AF_INET, "127.0.0.1", 80), SockAddr(socket.AF_INET, "127.0.0.2", 81)),
        name="web",
        id=10,
        namespace="blue",
        interface="eth0",
        backlog=100,
        accept_proxy=True,
        transparent=True,
        maxconn=50,
    )
    assert (b.addrs, b.v4v6, b.id) == ((SockAddr(socket.AF_INET6, "::", 8443),), True, 3)
    assert (c.addrs, c.v6only) == ((SockAddr(socket.AF_INET6, "::1", 9000),), True)
    assert (d.addrs, d.mode) == ((SockAddr(socket.AF_UNIX, "/run/fe.sock", 0),), 0o660)
    assert e == BindCfg(
        Where("t.cfg", 7),
        (SockAddr(socket.AF_INET, "127.0.0.1", 82),),
        id=6,
        defer_accept=True,
        tfo=True,
    )


def test_port_range_is_one_address_per_port() -> None:
    fe = model("frontend fe\n  bind 127.0.0.1:8000-8002\n").proxy("fe")
    assert fe is not None
    assert [a.port for a in fe.binds[0].addrs] == [8000, 8001, 8002]


def test_namespace_used_by_a_bind_is_part_of_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "red").write_text("")
    assert model("listen l\n  bind :80 namespace red\n", str(tmp_path)).namespaces == ("red",)


def test_unknown_bind_option_lists_the_table() -> None:
    (err,) = errors("frontend fe\n  bind :80 frob\n")
    assert err.startswith(
        "parsing [t.cfg:2] : 'bind :80' in section 'frontend' : unknown keyword 'frob'. "
        "Registered keywords : accept-proxy, "
    )
    assert "backlog, " in err and "namespace" in err
