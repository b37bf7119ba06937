"""Peers codec: byte vectors seen from HAProxy 2.6, round trips and truncation, fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsproxy.stick import peers_proto as pp

# What HAProxy 2.6.12 sent for `backend t` / `stick-table type ip size 100 expire 60s
# peers mesh store server_id,gpc0,conn_rate(10s),conn_cur`, then `set table t key
# 192.0.2.1 data.gpc0 5`.
HAP_DEFINE = b"\n\x82\r\x01\x01t\x04\x04e\xf0\x97\x1c\x05\xf0\xe2\x03"
HAP_UPDATE = b"\n\x80\x12\x00\x00\x00\x01\xc0\x00\x02\x01\x00\x05\xf5\xe6\xd7\xb7\x12\x00\x00\x00"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (239, b"\xef"),
        (240, b"\xf0\x00"),
        (2287, b"\xff\x7f"),
        (2288, b"\xf0\x80\x00"),
        (10000, b"\xf0\xe2\x03"),
        (60000, b"\xf0\x97\x1c"),
        (264432, b"\xf0\x80\x80\x00"),
        (33818864, b"\xf0\x80\x80\x80\x00"),
    ],
)
def test_varint_vectors(value: int, encoded: bytes) -> None:
    assert pp.encode_varint(value) == encoded
    assert pp.decode_varint(encoded) == (value, len(encoded))
    assert pp.decode_varint(encoded[:-1]) is None


@given(st.integers(0, 2**64 - 1))
def test_varint_round_trip(v: int) -> None:
    e = pp.encode_varint(v)
    assert pp.decode_varint(e + b"\x99") == (v, len(e))
    assert len(e) <= 10


def test_haproxy_define_and_update_decode_and_reencode() -> None:
    buf = bytearray(HAP_DEFINE + HAP_UPDATE + b"\x00\x03")
    frames = list(pp.read_frames(buf))
    assert not buf
    assert [(f.cls, f.type) for f in frames] == [(10, pp.DEFINE), (10, pp.UPDATE), (0, 3)]
    td = pp.TableDef.decode(frames[0].payload)
    assert td == pp.TableDef(1, "t", "ip", 4, (0, 2, 5, 6), ((5, 10000),), 60000)
    assert td.encode() == HAP_DEFINE
    u = pp.decode_update(td, frames[1])
    assert u.update_id == 1 and u.expire is None and u.key == 0xC0000201
    assert u.values[:2] == (0, 5) and u.values[3] == 0
    assert isinstance(u.values[2], pp.FreqValue) and u.values[2].curr == 0
    assert pp.encode_update(td, u) == HAP_UPDATE


def test_hello_and_status() -> None:
    h = pp.Hello("py", "hap", 4242)
    assert h.encode() == b"HAProxyS 2.1\npy\nhap 4242 1\n"
    lines, used = pp.split_lines(h.encode() + b"more", 3)  # type: ignore[misc]
    assert used == len(h.encode())
    assert pp.check_hello(lines, "py", ["hap"]) == (pp.SUCCESS, pp.Hello("py", "hap", 4242))
    assert pp.check_hello(lines, "other", ["hap"])[0] == pp.ERR_HOST
    assert pp.check_hello(lines, "py", ["x"])[0] == pp.ERR_PEER
    assert pp.check_hello(["HAProxyS 2.2", "py", "hap 1 1"], "py", ["hap"])[0] == pp.ERR_VERSION
    assert pp.check_hello(["HAProxyS 3.0", "py", "hap 1 1"], "py", ["hap"])[0] == pp.ERR_VERSION
    assert pp.check_hello(["HAProxyS 2.0", "py", "hap 1 1"], "py", ["hap"])[0] == pp.SUCCESS
    assert pp.check_hello(["HTTP/1.1", "py", "hap 1 1"], "py", ["hap"])[0] == pp.ERR_PROTO
    assert pp.check_hello(["HAProxyS 2.1", "py", "hap"], "py", ["hap"])[0] == pp.ERR_PROTO
    assert pp.split_lines(b"HAProxyS 2.1\r\npy\n", 3) is None
    assert pp.status_line(503) == b"503\n"


def test_small_messages() -> None:
    assert pp.switch(3) == b"\n\x83\x01\x03"
    assert pp.decode_switch(b"\x03") == 3
    assert pp.ack(1, 2) == b"\n\x84\x05\x01\x00\x00\x00\x02"
    assert pp.decode_ack(b"\x01\x00\x00\x00\x02") == (1, 2)
    assert pp.control(pp.HEARTBEAT) == b"\x00\x04"
    assert pp.error(pp.ERROR_PROTOCOL) == b"\x01\x00"
    with pytest.raises(pp.ProtocolError):
        pp.decode_ack(b"\x01\x00")


KEYS = {
    "ip": st.integers(0, 2**32 - 1),
    "integer": st.integers(0, 2**32 - 1),
    "ipv6": st.binary(min_size=16, max_size=16),
    "string": st.binary(max_size=31).filter(lambda b: b"\0" not in b),
    "binary": st.binary(min_size=32, max_size=32),
}
TYPES = st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 13, 14, 19]), unique=True).map(
    lambda x: tuple(sorted(x))
)


def _value(n: int) -> st.SearchStrategy[pp.Value]:
    if n in pp.FRQP_TYPES:
        u = st.integers(0, 2**32 - 1)
        return st.builds(pp.FreqValue, u, u, u)
    if n in pp.DICT_TYPES:
        return st.one_of(st.none(), st.text("abcxyz", min_size=1, max_size=20))
    if n == 0:
        return st.integers(-(2**31), 2**31 - 1)
    if n in pp.ULL_TYPES:
        return st.integers(0, 2**64 - 1)
    return st.integers(0, 2**32 - 1)


@st.composite
def table_and_update(draw: st.DrawFn) -> tuple[pp.TableDef, pp.Update]:
    kt = draw(st.sampled_from(sorted(KEYS)))
    types = draw(TYPES)
    td = pp.TableDef(
        draw(st.integers(0, 5000)),
        draw(st.text("abc/", min_size=1, max_size=9)),
        kt,
        32 if kt in ("string", "binary") else (16 if kt == "ipv6" else 4),
        types,
        tuple((n, draw(st.integers(1, 10**6))) for n in types if n in pp.FRQP_TYPES),
        draw(st.integers(0, 2**31)),
    )
    u = pp.Update(
        draw(st.none() | st.integers(0, 2**32 - 1)),
        draw(st.none() | st.integers(0, 2**32 - 1)),
        draw(KEYS[kt]),
        tuple(draw(_value(n)) for n in types),
    )
    return td, u


@given(table_and_update(), st.integers(1, 7))
def test_define_and_update_round_trip_in_any_chunks(
    tu: tuple[pp.TableDef, pp.Update], chunk: int
) -> None:
    td, u = tu
    wire = td.encode() + pp.encode_update(td, u) + pp.control(pp.HEARTBEAT)
    buf = bytearray()
    frames: list[pp.Frame] = []
    for i in range(0, len(wire), chunk):
        buf += wire[i : i + chunk]
        frames.extend(pp.read_frames(buf))
    assert not buf and len(frames) == 3
    assert pp.TableDef.decode(frames[0].payload) == td
    assert pp.decode_update(td, frames[1], pp.DictCache()) == u
    assert frames[2] == pp.Frame(0, pp.HEARTBEAT)


@given(table_and_update(), st.data())
def test_truncated_update_is_a_protocol_error(
    tu: tuple[pp.TableDef, pp.Update], data: st.DataObject
) -> None:
    td, u = tu
    f = next(pp.read_frames(bytearray(pp.encode_update(td, u))))
    if not f.payload:
        return
    cut = data.draw(st.integers(0, len(f.payload) - 1))
    with pytest.raises(pp.ProtocolError):
        pp.decode_update(td, pp.Frame(f.cls, f.type, f.payload[:cut]), pp.DictCache())


@given(st.binary(max_size=200))
def test_garbage_never_crashes(data: bytes) -> None:
    td = pp.TableDef(1, "t", "string", 32, (0, 5, 19), ((5, 1000),), 0)
    try:
        for f in pp.read_frames(bytearray(data)):
            if f.type in (pp.UPDATE, pp.INC_UPDATE, pp.UPDATE_TIMED, pp.INC_UPDATE_TIMED):
                pp.decode_update(td, f, pp.DictCache())
            elif f.type == pp.DEFINE:
                pp.TableDef.decode(f.payload)
    except pp.ProtocolError:
        pass
