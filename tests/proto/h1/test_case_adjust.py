"""proto.h1.case_adjust: header names respelled, nothing else touched."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nsproxy.proto.h1.case_adjust import adjust_head, case_map

TABLE = case_map((("content-type", "Content-Type"), ("x-a", "X-A")))
NAMES = st.sampled_from([b"content-type", b"x-a", b"x-b", b"Content-TYPE", b"host"])
VALUES = st.from_regex(rb"\A[a-z:; ]{0,6}\Z")


def test_known_names_are_respelled() -> None:
    data = b"HTTP/1.1 200 OK\r\ncontent-type: a:b\r\nx-b: c\r\nX-a: d\r\n\r\nbody: x\r\n"
    assert adjust_head(data, TABLE) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: a:b\r\nx-b: c\r\nX-A: d\r\n\r\nbody: x\r\n"
    )
    assert adjust_head(b"HTTP/1.1 204 No Content\r\n\r\n", TABLE) == (
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )


@given(st.lists(st.tuples(NAMES, VALUES), max_size=6), st.binary(max_size=20))
def test_only_the_case_of_names_changes(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    head = b"GET / HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers)
    data = head + b"\r\n" + body
    out = adjust_head(data, TABLE)
    assert out.lower() == data.lower() and out.endswith(b"\r\n\r\n" + body)
    assert len(out) == len(data)
    for line in out[len(b"GET / HTTP/1.1\r\n") : len(head)].split(b"\r\n")[:-1]:
        name = line.split(b":", 1)[0]
        assert name in (b"Content-Type", b"X-A", b"x-b", b"host")
