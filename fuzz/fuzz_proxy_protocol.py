"""atheris harness for the PROXY v1/v2 decoder (not run in CI; see docs/fuzzing.md)."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from nsproxy import proxy_protocol as pp


def test_one_input(data: bytes) -> None:
    """Any bytes: a header and its length, NEED_MORE, or the codec's own error; nothing else."""
    try:
        result = pp.decode(data, allow_unix=bool(data[-1:] == b"\x31"))
    except pp.ProxyProtocolError:
        return
    if result is pp.NEED_MORE:
        if len(data) >= pp.MAX_V2_LEN:
            raise AssertionError("asked for more bytes past the largest possible header")
        return
    assert isinstance(result, tuple)
    header, used = result
    assert 0 < used <= len(data), "used more bytes than it was given"
    assert used <= (pp.MAX_V1_LEN if header.version == 1 else pp.MAX_V2_LEN)
    again = pp.decode(data[:used], allow_unix=True)
    assert isinstance(again, tuple) and again[0] == header and again[1] == used, "prefix differs"
    for cut in (used - 1, used // 2):
        if cut > 0:
            try:
                short = pp.decode(data[:cut], allow_unix=True)
            except pp.ProxyProtocolError:
                continue
            assert short is pp.NEED_MORE, "decoded a header from a strict prefix"


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
