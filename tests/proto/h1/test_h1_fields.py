"""The direct header-line split agrees with the pattern path on every input: the same fields,
or the same error (status and reason)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import Header, parse_fields, parse_fields_by_pattern

PIECES = st.sampled_from(
    [b"Host", b"x-a", b"A_B", b"na me", b"", b":", b": ", b" ", b"\t", b"v", b"v v", b"\r",
     b"\r\n", b"\n", b"\r\r\n", b"\x00", b"(", b"\xff", b"Content-Length", b"12", b",", b"\n "]
)  # fmt: skip


def _outcome(fn: object, head: bytes) -> list[Header] | tuple[int, str]:
    try:
        return fn(head, 0, 400)  # type: ignore[operator, no-any-return]
    except H1Error as exc:
        return exc.status, str(exc)


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=14))
@example([b"Host", b": ", b"v", b"\r\n", b"x-a", b":", b"v v", b" ", b"\r\n"])
@example([b"Host", b":", b"v", b"\r\n", b"\n ", b"v", b"\r\n"])
@example([b"Host", b":", b"v", b"\r", b"v", b"\r\n"])
def test_split_agrees_with_pattern(parts: list[bytes]) -> None:
    head = b"".join(parts)
    if not head.endswith(b"\n"):
        head += b"\r\n"
    assert _outcome(parse_fields, head) == _outcome(parse_fields_by_pattern, head)


def test_plain_lines() -> None:
    head = b"Host: a.example\r\nX-Empty:\r\nX-Pad: \t v w \t\r\nBare: lf\n"
    assert parse_fields(head, 0, 400) == [
        (b"host", b"a.example"),
        (b"x-empty", b""),
        (b"x-pad", b"v w"),
        (b"bare", b"lf"),
    ]
