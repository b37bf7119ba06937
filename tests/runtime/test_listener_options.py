"""Bind options that become socket options of the listening socket, as HAProxy sets them."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile

from nsproxy.config.parser import parse_files
from nsproxy.runtime.process import Runtime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(bind_options: str) -> socket.socket:
    text = (
        "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"
        f"listen px\n  bind 127.0.0.1:{_free_port()} {bind_options}\n  backlog 77\n"
        "  server s1 127.0.0.1:9\n"
    )
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.cfg")
        with open(path, "w") as f:
            f.write(text)
        config, state = parse_files([path])
    assert config is not None, state.errors
    loop = asyncio.new_event_loop()
    rt = Runtime(config, loop)
    rt.build()
    assert rt.open_listeners()
    sock = rt.listeners[0].sock
    assert sock is not None
    dup = sock.dup()
    for li in rt.listeners:
        li.close()
    loop.close()
    return dup


def test_defer_accept_and_tfo_are_set_on_the_listening_socket() -> None:
    with _listening("defer-accept tfo") as s:
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) > 0
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN) == 77


def test_without_them_neither_is_set() -> None:
    with _listening("") as s:
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) == 0
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN) == 0
