"""Lua HTTP services over one request, sans I/O: what the applet sees and the bytes it answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsproxy.config.keywords.http_reply import reason
from nsproxy.lua.applet import run_http_service
from nsproxy.lua.engine import LuaEngine, LuaError
from nsproxy.proto.h1.chunks import chunk_framing
from nsproxy.sample.types import Sample, SmpType
from sample.http_txn import request

SCRIPT = """
core.register_service("page", "http", function(applet)
    local body = "<h1>" .. applet:get_var("txn.code") .. "</h1>"
    applet:set_status(404)
    applet:add_header("Content-Length", string.len(body))
    applet:add_header("Content-Type", "text/html")
    applet:start_response()
    applet:send(body)
end)
core.register_service("stream", "http", function(applet)
    applet:start_response()
    applet:send("hello ")
    applet:send("world")
end)
core.register_service("echo", "http", function(applet)
    local h = applet.headers
    applet:set_status(201, "Made")
    applet:set_var("txn.seen", applet.path)
    applet:add_header("content-length", 0)
    applet:add_header("x-echo", applet.method .. " " .. applet.path .. " " .. applet.qs ..
        " " .. applet.version .. " " .. h["x-a"][0] .. "," .. h["x-a"][1] ..
        " " .. tostring(applet.length) .. " " .. applet:receive())
    applet:start_response()
end)
core.register_service("early", "http", function(applet)
    applet:send("x")
end)
core.register_service("silent", "http", function(applet)
end)
core.register_service("tcp-one", "tcp", function(applet)
end)
"""


@pytest.fixture
def engine(tmp_path: Path) -> LuaEngine:
    script = tmp_path / "s.lua"
    script.write_text(SCRIPT)
    eng = LuaEngine()
    eng.load(str(script))
    return eng


def run(engine: LuaEngine, name: str, raw: bytes, **kw: object) -> tuple[int, bytes, bool, str]:
    fn = engine.service(name)
    assert fn is not None
    return run_http_service(engine, fn, request(raw, **kw), reason)


def test_a_page_with_its_length_is_sent_as_written(engine: LuaEngine) -> None:
    txn = request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    txn.vars["txn"] = {"code": Sample(SmpType.STR, "gone")}
    fn = engine.service("page")
    status, data, close, err = run_http_service(engine, fn, txn, reason)
    assert (status, close, err) == (404, False, "")
    assert data == (
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 13\r\ncontent-type: text/html\r\n\r\n"
        b"<h1>gone</h1>"
    )


def test_a_body_without_length_is_chunked_for_http11_and_closed_for_http10(
    engine: LuaEngine,
) -> None:
    _, data, close, _ = run(engine, "stream", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nB\r\nhello world\r\n0\r\n\r\n"
    )
    assert not close
    assert chunk_framing(data) == len(b"B\r\n\r\n0\r\n\r\n")
    _, data, close, _ = run(engine, "stream", b"GET / HTTP/1.0\r\n\r\n")
    assert (data, close) == (b"HTTP/1.0 200 OK\r\n\r\nhello world", True)


def test_the_applet_sees_the_request_and_sets_variables(engine: LuaEngine) -> None:
    txn = request(
        b"POST /p/q?a=1&b HTTP/1.1\r\nHost: x\r\nX-A: one\r\nx-a: two\r\nContent-Length: 3\r\n\r\n",
        req_body=b"abc",
    )
    fn = engine.service("echo")
    status, data, _, _ = run_http_service(engine, fn, txn, reason)
    assert status == 201
    assert data == (
        b"HTTP/1.1 201 Made\r\ncontent-length: 0\r\n"
        b"x-echo: POST /p/q a=1&b HTTP/1.1 one,two 3 abc\r\n\r\n"
    )
    assert txn.vars["txn"]["seen"] == Sample(SmpType.STR, "/p/q")


@pytest.mark.parametrize("name", ["early", "silent"])
def test_a_failing_applet_answers_haproxys_500(engine: LuaEngine, name: str) -> None:
    status, data, _, err = run(engine, name, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 500
    if name == "early":
        lines = SCRIPT.split("\n")
        start = next(i for i, ln in enumerate(lines, 1) if '"early"' in ln)
        src = err.split(":", 1)[0]
        assert err == (
            f"{src}:{start + 1}: Lua: 'send' you must call start_response() before sending "
            f"data. from [C]: in method 'send', {src}:{start + 1}: in function line {start}"
        )
    else:
        assert err == ""  # never started, no error: HAProxy logs nothing either
    assert data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"<h1>500 Internal Server Error</h1>" in data


def test_only_http_services_serve_use_service(engine: LuaEngine) -> None:
    assert engine.service("tcp-one") is None
    assert engine.service("nope") is None


def test_loading_errors_are_worded_as_haproxy(tmp_path: Path) -> None:
    eng = LuaEngine()
    missing = tmp_path / "missing.lua"
    with pytest.raises(LuaError) as exc:
        eng.load(str(missing))
    assert str(exc.value) == (
        f"error in Lua file '{missing}': cannot open {missing}: No such file or directory"
    )
    bad = tmp_path / "bad.lua"
    bad.write_text("core.register_service('x', 'ftp', function() end)\n")
    with pytest.raises(LuaError) as exc:
        eng.load(str(bad))
    assert str(exc.value).startswith("Lua runtime error: ")


def test_prepend_path_lets_scripts_require_modules(tmp_path: Path) -> None:
    (tmp_path / "helper.lua").write_text("return { code = 418 }\n")
    main = tmp_path / "main.lua"
    main.write_text(
        "local helper = require('helper')\n"
        "core.register_service('tea', 'http', function(applet)\n"
        "  applet:set_status(helper.code)\n  applet:add_header('content-length', 0)\n"
        "  applet:start_response()\nend)\n"
    )
    eng = LuaEngine()
    eng.prepend_path(f"{tmp_path}/?.lua")
    eng.load(str(main))
    status, data, _, _ = run(eng, "tea", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 418
    assert data.startswith(b"HTTP/1.1 418 I'm a teapot\r\n")


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=6))
def test_chunk_framing_is_what_chunking_adds(parts: list[bytes]) -> None:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    assert chunk_framing(head + body) == len(body) - sum(map(len, parts))
    assert chunk_framing(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc") == 0
