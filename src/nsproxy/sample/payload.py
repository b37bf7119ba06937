"""Fetches over the buffered request/response bytes: req.len, req.payload*, req.ssl_*."""

from __future__ import annotations

from collections.abc import Sequence

from nsproxy.proto.tls_hello import (
    EXT_SESSION_TICKET,
    EXT_SUPPORTED_GROUPS,
    ClientHello,
    Status,
    parse_client_hello,
    ssl_hello_type,
    ssl_version,
)
from nsproxy.sample.args import ArgSpec, ArgType, ArgValue
from nsproxy.sample.context import Txn
from nsproxy.sample.fetch import FetchDef, FetchFn, register_fetch
from nsproxy.sample.places import Use
from nsproxy.sample.types import MISSING, FetchResult, Sample, SmpType, read_int64

BUFSIZE = 16384


def _req(txn: Txn) -> tuple[bytes, bool]:
    return txn.req_data, txn.req_final


def _res(txn: Txn) -> tuple[bytes, bool]:
    return txn.res_data, txn.res_final


def _len(res: bool) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        data, final = _res(txn) if res else _req(txn)
        return Sample(SmpType.SINT, len(data), not final)

    return fetch


def _payload(res: bool) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        data, final = _res(txn) if res else _req(txn)
        off, size = int(args[0]) & 0xFFFFFFFF, int(args[1]) & 0xFFFFFFFF
        if size > BUFSIZE or off + size > BUFSIZE:
            return None
        if off + size > len(data):
            return None if final else MISSING
        if size:
            return Sample(SmpType.BIN, data[off : off + size])
        return Sample(SmpType.BIN, data[off:], not final)

    return fetch


def _payload_lv_check(args: list[ArgValue]) -> list[ArgValue]:
    if int(args[0]) < 0:
        raise ValueError("payload offset1 must be positive")
    if not int(args[1]):
        raise ValueError("payload length must be > 0")
    if len(args) > 2 and str(args[2]):
        text = str(args[2])
        relative = text[0] in "+-"
        value, used = read_int64(text)
        if used != len(text):
            raise ValueError("payload offset2 is not a number")
        if int(args[0]) + int(args[1]) + value < 0:
            raise ValueError("payload offset2 too negative")
        return [args[0], args[1], (value << 1) + 1 if relative else value << 1]
    return args[:2]


def _payload_lv(res: bool) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        data, final = _res(txn) if res else _req(txn)
        loff, lsize = int(args[0]), int(args[1])
        if loff + lsize > len(data):
            return None if final else MISSING
        size = int.from_bytes(data[loff : loff + lsize], "big")
        off = loff + lsize
        if len(args) > 2:
            a = int(args[2])
            off = off + (a >> 1) if a & 1 else a >> 1
        if not size or size > BUFSIZE or off + size > BUFSIZE:
            return None
        if off + size > len(data):
            return None if final else MISSING
        return Sample(SmpType.BIN, data[off : off + size])

    return fetch


def _miss_or_none(status: Status, final: bool) -> FetchResult:
    return MISSING if status is Status.NEED_MORE and not final else None


def _hello(txn: Txn) -> tuple[ClientHello | None, FetchResult]:
    data, final = _req(txn)
    r = parse_client_hello(data)
    if r.hello is None:
        return None, _miss_or_none(r.status, final)
    return r.hello, None


def _sni(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    hello, fail = _hello(txn)
    if hello is None or hello.sni is None:
        return fail
    return Sample(SmpType.STR, hello.sni.decode("latin-1"))


def _alpn(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    hello, fail = _hello(txn)
    if hello is None or not hello.alpn:
        return fail
    return Sample(SmpType.STR, hello.alpn[0].decode("latin-1"))


def _alpn_all(txn: Txn, args: Sequence[ArgValue]) -> list[Sample] | None:
    hello, _ = _hello(txn)
    if hello is None or not hello.alpn:
        return None
    return [Sample(SmpType.STR, a.decode("latin-1")) for a in hello.alpn]


def _hello_type(res: bool) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        data, final = _res(txn) if res else _req(txn)
        status, value = ssl_hello_type(data)
        if status is not Status.OK:
            return _miss_or_none(status, final)
        return Sample(SmpType.SINT, value)

    return fetch


def _ver(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    data, final = _req(txn)
    status, value = ssl_version(data)
    if status is not Status.OK:
        return _miss_or_none(status, final)
    return Sample(SmpType.SINT, value)


def _ec_ext(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    hello, fail = _hello(txn)
    if hello is None:
        return fail
    if any(t == EXT_SUPPORTED_GROUPS for t, _ in hello.extensions):
        return Sample(SmpType.BOOL, True)
    return None


def _st_ext(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    hello, fail = _hello(txn)
    if hello is None:
        return fail
    for t, d in hello.extensions:
        if t == EXT_SESSION_TICKET:
            return Sample(SmpType.SINT, 2 if d else 1)
    return Sample(SmpType.SINT, 0)


def _wait_end(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    return Sample(SmpType.BOOL, True) if txn.req_final else MISSING


_I, _S = ArgType.SINT, ArgType.STR
_PAYLOAD = ArgSpec((_I, _I), 2)
_PAYLOAD_LV = ArgSpec((_I, _I, _S), 2)
_L6 = Use.L6REQ

register_fetch(
    FetchDef("req.len", _len(False), SmpType.SINT, _L6),
    FetchDef("req_len", _len(False), SmpType.SINT, _L6),
    FetchDef("res.len", _len(True), SmpType.SINT, Use.L6RES),
    FetchDef("req.payload", _payload(False), SmpType.BIN, _L6, _PAYLOAD),
    FetchDef("res.payload", _payload(True), SmpType.BIN, Use.L6RES, _PAYLOAD),
    FetchDef(
        "req.payload_lv", _payload_lv(False), SmpType.BIN, _L6, _PAYLOAD_LV, _payload_lv_check
    ),
    FetchDef(
        "res.payload_lv",
        _payload_lv(True),
        SmpType.BIN,
        Use.L6RES,
        _PAYLOAD_LV,
        _payload_lv_check,
    ),
    FetchDef("req.ssl_sni", _sni, SmpType.STR, _L6),
    FetchDef("req_ssl_sni", _sni, SmpType.STR, _L6),
    FetchDef("req.ssl_alpn", _alpn, SmpType.STR, _L6, iterate=_alpn_all),
    FetchDef("req.ssl_hello_type", _hello_type(False), SmpType.SINT, _L6),
    FetchDef("req_ssl_hello_type", _hello_type(False), SmpType.SINT, _L6),
    FetchDef("res.ssl_hello_type", _hello_type(True), SmpType.SINT, Use.L6RES),
    FetchDef("rep_ssl_hello_type", _hello_type(True), SmpType.SINT, Use.L6RES),
    FetchDef("req.ssl_ver", _ver, SmpType.SINT, _L6),
    FetchDef("req_ssl_ver", _ver, SmpType.SINT, _L6),
    FetchDef("req.ssl_ec_ext", _ec_ext, SmpType.BOOL, _L6),
    FetchDef("req.ssl_st_ext", _st_ext, SmpType.SINT, _L6),
    FetchDef("wait_end", _wait_end, SmpType.BOOL, Use.INTRN),
)
