"""`option ssl-hello-chk`'s probe: the record is a well-formed SSLv3 ClientHello and the reply
is judged on its first byte once 5 bytes (or the end) arrived."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from nsproxy.proto.sslv3_hello import RANDOM_TAIL, Verdict, client_hello, judge


def test_client_hello_layout() -> None:
    rec = client_hello(0x5F5E1000)
    assert rec[:3] == b"\x16\x03\x00"  # handshake record, SSLv3
    (rec_len,) = struct.unpack("!H", rec[3:5])
    assert rec_len == len(rec) - 5 == 0x79
    assert rec[5] == 0x01 and int.from_bytes(rec[6:9], "big") == 0x75  # ClientHello
    assert rec[9:11] == b"\x03\x00"
    assert rec[11:15] == struct.pack("!I", 0x5F5E1000)  # gmt_unix_time
    assert rec[15:43] == RANDOM_TAIL and len(RANDOM_TAIL) == 28
    assert rec[43] == 0  # no session id
    (suites_len,) = struct.unpack("!H", rec[44:46])
    suites = [struct.unpack("!H", rec[i : i + 2])[0] for i in range(46, 46 + suites_len, 2)]
    assert suites == [*range(1, 0x1C), *range(0x2F, 0x3B)]
    assert rec[46 + suites_len :] == b"\x01\x00"  # NULL compression only


def test_time_wraps_to_32_bits() -> None:
    assert client_hello(2**32 + 7)[11:15] == struct.pack("!I", 7)


def test_verdicts() -> None:
    alert = b"\x15\x03\x00\x00\x02\x02\x46"  # protocol_version alert
    assert judge(alert, False) is Verdict.PASSED
    assert judge(b"\x16\x03\x03\x00\x5a", False) is Verdict.PASSED
    assert judge(b"\x16\x03", False) is Verdict.NEED_MORE  # fewer than 5 bytes, more may come
    assert judge(b"\x16\x03", True) is Verdict.PASSED  # closed after them: judged as is
    assert judge(b"HTTP/1.1 400 Bad Request\r\n", False) is Verdict.FAILED
    assert judge(b"", False) is Verdict.NEED_MORE
    assert judge(b"", True) is Verdict.EMPTY


@given(st.binary(max_size=64), st.booleans())
def test_judge_is_total_and_first_byte_decides(data: bytes, eof: bool) -> None:
    v = judge(data, eof)
    if not data:
        assert v is (Verdict.EMPTY if eof else Verdict.NEED_MORE)
    elif len(data) < 5 and not eof:
        assert v is Verdict.NEED_MORE
    else:
        assert (v is Verdict.PASSED) == (data[0] in (0x15, 0x16))
        assert v in (Verdict.PASSED, Verdict.FAILED)
