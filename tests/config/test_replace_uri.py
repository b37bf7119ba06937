"""`http-request replace-uri|replace-path|replace-pathq`: the request target HAProxy 2.6 sends."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.configtext import errors, model
from nsproxy.proto.h1.replace_uri import replace_target
from sample.haproxy_ref import needs_haproxy
from sample.http_ref import http_haproxy
from sample.http_txn import request

CASES = [
    # the router's rewrite-target annotation (route path /api, target /)
    ("replace-path ^/api/?(.*)$ /\\1", b"/api/users?x=1"),
    ("replace-path ^/api/?(.*)$ /\\1", b"/apix"),
    ("replace-path ^/api(.*)$ /v2\\1", b"/api/a/b"),
    ("replace-path ^/api/?(.*)$ /\\1", b"/other?api"),
    ("replace-path foo bar", b"/xfooy?q=foo"),
    ("replace-path (/[^/]*)(/.*)? \\2\\1", b"/a/b/c"),
    ("replace-pathq foo=1 bar", b"/p?foo=1&z"),
    ("replace-uri ^http://[^/]*(/.*)$ \\1", b"http://example.com/a?b"),
    ("replace-uri ^(.*)$ /pre%[req.hdr(x-p)]\\1", b"/a?b"),
    ("replace-path ^/a(.*) /%[path]\\1", b"/a/q?z"),
    ("replace-path ^(.*)$ /p\\1", b"http://example.com"),
]


def _raw(target: bytes) -> bytes:
    """A request for `target` (its Host is the target's authority when it has one)."""
    m = re.match(rb"https?://([^/?]*)", target)
    host = m.group(1) if m else b"a"
    return b"GET %s HTTP/1.1\r\nHost: %s\r\nX-P: /xp\r\n\r\n" % (target, host)


def _ours(rule: str, target: bytes) -> bytes:
    px = model(f"frontend f\n  mode http\n  bind :80\n  http-request {rule}\n").proxy("f")
    assert px is not None and px.http is not None
    txn = request(_raw(target))
    assert px.http.http_request[0].run(txn) is None
    assert txn.http_req is not None
    return txn.http_req.target


def test_rewrite_target_of_a_route() -> None:
    assert _ours(CASES[0][0], b"/api/users?x=1") == b"/users?x=1"
    assert _ours(CASES[0][0], b"/other?api") == b"/other?api"
    assert _ours("replace-pathq foo=1 bar", b"/p?foo=1&z") == b"bar"


@needs_haproxy
@pytest.mark.parametrize(("rule", "target"), CASES)
def test_target_as_haproxy_sends_it(rule: str, target: bytes) -> None:
    raw = _raw(target)
    with http_haproxy(f"  http-request {rule}") as ref:
        client, server = ref.exchange(raw)
    assert server is not None, client
    assert server.split(b" ")[1] == _ours(rule, target)


def test_arguments_and_regex_errors() -> None:
    where = "error detected in frontend 'f' while parsing 'http-request replace-path' rule"
    assert errors("frontend f\n  mode http\n  http-request replace-path a\n") == [
        f"parsing [t.cfg:3] : {where} : expects exactly 2 arguments <match-regex> and "
        "<replace-format>."
    ]
    (msg,) = errors("frontend f\n  mode http\n  http-request replace-path ( b\n")
    assert msg.startswith(f"parsing [t.cfg:3] : {where} : failed to parse the regex : regex '('")


TARGETS = st.from_regex(rb"\A(https?://[a-z]{1,5})?/[a-z/]{0,8}(\?[a-z=&]{0,6})?\Z")


@given(TARGETS)
def test_a_regex_that_does_not_match_leaves_the_target(target: bytes) -> None:
    rx = re.compile(rb"NOMATCH")
    for action in ("replace-uri", "replace-path", "replace-pathq"):
        assert replace_target(action, target, rx, b"/x") == target


@given(TARGETS)
def test_replace_path_keeps_the_authority_and_the_query(target: bytes) -> None:
    new = replace_target("replace-path", target, re.compile(rb"^.*$"), b"/new")
    q = target.find(b"?")
    query = b"" if q < 0 else target[q:]
    assert new.endswith(b"/new" + query)
    assert new[: len(new) - len(b"/new" + query)] == target[: len(new) - len(b"/new" + query)]
