"""An HTTP service written in Lua, run over one request: what the applet sees of the request
and the answer it builds, as the bytes HAProxy 2.6 sends for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nsproxy.http import answers
from nsproxy.lua.engine import LuaEngine
from nsproxy.sample.context import Txn
from nsproxy.sample.types import Sample, SmpType
from nsproxy.sample.vars import get_var, parse_var_name, set_var, unset_var


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")


@dataclass
class AppletRun:
    """The `py` side of one applet: the request's facts (read by the Lua object's fields) and
    the answer written by its methods."""

    txn: Txn
    method: str
    path: str
    qs: str
    version: str
    length: int
    body: bytes
    status: int = 200
    reason: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    started: bool = False
    chunks: list[bytes] = field(default_factory=list)
    priv: Any = None

    def set_status(self, code: Any, text: Any = None) -> None:
        self.status = int(code)
        self.reason = None if text is None else str(text)

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name.lower(), value))

    def start_response(self) -> None:
        self.started = True

    def send(self, data: str) -> None:
        if not self.started:
            raise RuntimeError("Lua: 'send' you must call start_response() before sending data.")
        self.chunks.append(data.encode("latin-1", "replace"))

    def receive(self, size: Any = None) -> str:
        n = len(self.body) if size is None else max(0, int(size))
        out, self.body = self.body[:n], self.body[n:]
        return _text(out)

    def getline(self) -> str:
        end = self.body.find(b"\n")
        n = len(self.body) if end < 0 else end + 1
        out, self.body = self.body[:n], self.body[n:]
        return _text(out)

    def get_var(self, name: str) -> Any:
        try:
            scope, var = parse_var_name(str(name))
        except ValueError:
            return None
        smp = get_var(self.txn.vars, scope, var)
        if smp is None:
            return None
        v = smp.value
        if isinstance(v, bytes):
            return _text(v)
        return v if isinstance(v, bool | int | str) else str(v)

    def set_var(self, name: str, value: Any, ifexist: Any = None) -> None:
        try:
            scope, var = parse_var_name(str(name))
        except ValueError:
            return
        if ifexist and self.txn.vars.get(scope, {}).get(var) is None:
            return
        if isinstance(value, bool):
            smp = Sample(SmpType.BOOL, value)
        elif isinstance(value, int):
            smp = Sample(SmpType.SINT, value)
        else:
            smp = Sample(SmpType.STR, str(value))
        set_var(self.txn.vars, scope, var, smp)

    def unset_var(self, name: str) -> None:
        try:
            scope, var = parse_var_name(str(name))
        except ValueError:
            return
        unset_var(self.txn.vars, scope, var)

    def answer(self, http10: bool, reason: Callable[[int], str]) -> tuple[bytes, bool]:
        """The response bytes and whether the connection closes after it: HAProxy's H1 side
        chunks a body of unknown length for HTTP/1.1 and closes after it for HTTP/1.0.
        `reason`: the phrase of a status the applet gave none for."""
        version = b"HTTP/1.0" if http10 else b"HTTP/1.1"
        phrase = self.reason if self.reason is not None else reason(self.status)
        head = [b"%s %d %s\r\n" % (version, self.status, phrase.encode("latin-1", "replace"))]
        for name, value in self.headers:
            head.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
        body = b"".join(self.chunks)
        close = False
        if not any(n == "content-length" for n, _ in self.headers):
            if http10:
                close = True
            else:
                head.append(b"transfer-encoding: chunked\r\n")
                body = (b"%X\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        return b"".join(head) + b"\r\n" + body, close


def run_http_service(
    engine: LuaEngine, fn: Any, txn: Txn, reason: Callable[[int], str]
) -> tuple[int, bytes, bool, str]:
    """Runs service function `fn` on the request of `txn`: (status, answer, close, error);
    a failing applet gets HAProxy's 500 answer and its error text (in HAProxy's traceback
    form). `reason`: HAProxy's phrase for a status."""
    req = txn.http_req
    assert req is not None
    target = req.target
    path, _, qs = target.partition(b"?")
    headers: dict[str, list[str]] = {}
    for name, value in req.headers:
        headers.setdefault(_text(name).lower(), []).append(_text(value))
    run = AppletRun(
        txn,
        method=_text(req.method),
        path=_text(path),
        qs=_text(qs),
        version=_text(req.version),
        length=req.content_length,
        body=bytes(txn.req_body),
    )
    ok, err = engine.call(fn, engine.applet(run, headers))
    if not ok or not run.started:  # an applet that never started answers 500 silently
        return 500, answers.answer(500), answers.closes(500), err
    data, close = run.answer(req.version == b"HTTP/1.0", reason)
    return run.status, data, close, ""
