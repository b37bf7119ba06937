"""Backends in another mode: HAProxy's alerts for an HTTP frontend on a TCP backend (as its
default backend or in a fixed `use_backend` rule); a TCP frontend may use an HTTP backend
(the stream is upgraded to HTTP when that backend is chosen)."""

from __future__ import annotations

from lab.configtext import errors, parse_text

HEAD = "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"


def test_http_frontend_on_a_tcp_backend() -> None:
    text = HEAD + "frontend a\n  mode http\n  bind :80\n  default_backend b\nbackend b\n"
    assert errors(text) == [
        "http frontend 'a' (t.cfg:5) tries to use incompatible tcp backend 'b' (t.cfg:9) as "
        "its default backend (see 'mode')."
    ]


def test_http_frontend_on_a_tcp_backend_in_a_use_backend_rule() -> None:
    text = (
        HEAD + "frontend a\n  mode http\n  bind :80\n  use_backend b if { path /x }\n"
        "  default_backend c\nbackend b\nbackend c\n  mode http\n"
    )
    assert errors(text) == [
        "http frontend 'a' (t.cfg:5) tries to use incompatible tcp backend 'b' (t.cfg:10) in a "
        "'use_backend' rule (see 'mode')."
    ]


def test_a_missing_use_backend_is_refused() -> None:
    text = HEAD + "listen a\n  bind :80\n  use_backend nope if { src 1.2.3.4 }\n  server s 1:1\n"
    assert errors(text) == ["Proxy 'a': unable to find required use_backend: 'nope'."]


def test_tcp_frontend_on_an_http_backend_loads() -> None:
    text = (
        HEAD + "listen a\n  bind :80\n  default_backend b\n"
        "  use_backend b if { src 1.2.3.4 }\n  use_backend %[req.hdr(x-be)] if { src 5.6.7.8 }\n"
        "backend b\n  mode http\n  server s 127.0.0.1:8080\n"
    )
    config, state = parse_text(text)
    assert config is not None, state.errors
    assert state.errors == []
    px = config.proxy("a")
    assert px is not None and px.mode == "tcp" and px.default_backend == "b"
