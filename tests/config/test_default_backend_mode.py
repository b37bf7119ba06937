"""A default backend in another mode: HAProxy's alert for an HTTP frontend on a TCP backend;
nsproxy's own refusal of a TCP frontend on an HTTP backend (HAProxy upgrades the stream)."""

from __future__ import annotations

from lab.configtext import errors

HEAD = "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"


def test_http_frontend_on_a_tcp_backend() -> None:
    text = HEAD + "frontend a\n  mode http\n  bind :80\n  default_backend b\nbackend b\n"
    assert errors(text) == [
        "http frontend 'a' (t.cfg:5) tries to use incompatible tcp backend 'b' (t.cfg:9) as "
        "its default backend (see 'mode')."
    ]


def test_tcp_listen_on_an_http_backend_is_refused() -> None:
    text = HEAD + "listen a\n  bind :80\n  default_backend b\nbackend b\n  mode http\n"
    (msg,) = errors(text)
    assert msg.startswith("listen 'a' (t.cfg:5) : a tcp listen cannot use http backend 'b'")
