"""Configuration text -> model: `server`, `default-server` and the server option table,
and the same table behind the runtime API's `add server`."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lab.configtext import errors, model
from nsproxy.addresses import PortMode, ServerAddr, SockAddr
from nsproxy.config.keywords.server import dynamic_server
from nsproxy.config.model import CheckCfg, ServerCfg, SourceCfg, Where
from nsproxy.config.registry import ConfigError


def test_every_server_option_reaches_its_field(tmp_path: Path) -> None:
    (tmp_path / "blue").write_text("")
    first = (
        "server a 10.0.0.1:80 namespace blue weight 20 maxconn 30 backup id 9 check rise 4"
        " port 81 addr 10.0.0.9 fastinter 1s downinter 5s check-send-proxy send-proxy-v2"
        " proxy-v2-options crc32c,unique-id source 10.1.0.1 usesrc clientip"
    )
    be = model(
        f"""
backend be
  default-server inter 3s fall 5
  {first}
  server b 10.0.0.2 namespace * disabled send-proxy
  server c * maxqueue 5 slowstart 10s minconn 2 non-stick
""",
        str(tmp_path),
    ).proxy("be")
    assert be is not None
    a, b, c = be.servers
    assert a == ServerCfg(
        Where("t.cfg", 4),
        "a",
        ServerAddr(socket.AF_INET, "10.0.0.1", 80, PortMode.FIXED),
        puid=9,
        namespace="blue",
        weight=20,
        backup=True,
        maxconn=30,
        send_proxy=2,
        pp2_options=frozenset({"crc32c", "unique-id"}),
        check=CheckCfg(
            enabled=True,
            inter=3.0,
            fastinter=1.0,
            downinter=5.0,
            rise=4,
            fall=5,
            port=81,
            addr="10.0.0.9",
            send_proxy=True,
        ),
        source=SourceCfg(SockAddr(socket.AF_INET, "10.1.0.1", 0), usesrc="clientip"),
    )
    assert (b.use_client_netns, b.namespace, b.disabled, b.send_proxy, b.puid) == (
        True,
        None,
        True,
        1,
        2,
    )
    assert b.check == CheckCfg(inter=3.0, fall=5)  # default-server applies
    assert (c.addr.host, c.addr.port_mode, c.puid) == (None, PortMode.SAME, 3)


def test_check_with_client_namespace_is_an_error() -> None:
    assert errors("backend be\n  server s 10.0.0.1:80 namespace * check\n") == [
        "parsing [t.cfg:2] : 'server be/s' : 'check' cannot be used with 'namespace *': a health "
        "check has no client connection, so it has no namespace to run in."
    ]


def test_add_server_uses_the_same_table() -> None:
    where = Where("runtime", 0)
    cfg = dynamic_server(where, "be", "n", ["10.0.0.3:80", "weight", "7", "send-proxy", "enabled"])
    assert cfg == ServerCfg(
        where,
        "n",
        ServerAddr(socket.AF_INET, "10.0.0.3", 80, PortMode.FIXED),
        weight=7,
        send_proxy=1,
    )
    assert dynamic_server(where, "be", "m", ["10.0.0.3:80"]).disabled  # maintenance by default


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "'server' expects <name> and <addr>[:<port>] as arguments."),
        (["10.0.0.3:80", "non-stick"], "'non-stick' option is not accepted for dynamic server"),
        (["10.0.0.3:80", "frob"], "unknown keyword 'frob'."),
        (["10.0.0.3:80", "weight", "x"], "'weight' expects an integer argument, got 'x'."),
        # ASCII digits only: int() would take '٣' as 3 and raise on '²'
        (["10.0.0.3:80", "weight", "٣"], "'weight' expects an integer argument, got '٣'."),
        (["10.0.0.3:80", "weight", "²"], "'weight' expects an integer argument, got '²'."),
        (["10.0.0.3:80", "maxconn", "1_0"], "'maxconn' expects an integer argument, got '1_0'."),
    ],
)
def test_add_server_errors(words: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        dynamic_server(Where("runtime", 0), "be", "n", words)
    assert str(exc.value) == message
