"""atheris harness for the configuration lexer and parser (not run in CI; see docs/fuzzing.md)."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from nsproxy.config.lexer import LexError, split_line
    from nsproxy.config.model import Where
    from nsproxy.config.parser import ParseState, parse_lines

ENV = {"HOME": "/root", "EMPTY": "", "SPACES": "a b  c"}


def test_one_input(data: bytes) -> None:
    """Any text: words or a LexError per line; the parser only ever collects errors."""
    text = data.decode("utf-8", "surrogateescape")
    lines = []
    for n, line in enumerate(text.split("\n"), start=1):
        try:
            words = split_line(line, ENV)
        except LexError as exc:
            assert str(exc)
            continue
        assert all(isinstance(w, str) for w in words)
        if words:
            lines.append((Where("fuzz.cfg", n), words))
    config, state = parse_lines(lines, ParseState(netns_dir="/nonexistent-nsproxy-fuzz"))
    assert (config is None) == bool(state.errors)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
