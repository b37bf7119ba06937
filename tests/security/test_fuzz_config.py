"""Property tests: no input makes the configuration parser raise; every failure is collected."""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsproxy.config.model import Config, Where
from nsproxy.config.parser import ParseState, parse_files, parse_lines
from nsproxy.config.registry import (
    BIND_OPTIONS,
    KEYWORDS,
    OPTIONS,
    SECTIONS,
    SERVER_OPTIONS,
    TIMEOUTS,
)

NO_NETNS_DIR = "/nonexistent-nsproxy-fuzz"
KEYWORD_WORDS = sorted(
    {
        *SECTIONS.names(),
        *KEYWORDS.names(),
        *OPTIONS.names(),
        *TIMEOUTS.names(),
        *BIND_OPTIONS.names(),
        *SERVER_OPTIONS.names(),
        "option",
        "no",
        "timeout",
        "namespace",
        "*",
    }
)
TRICKY_WORDS = [
    "",
    "0",
    "-1",
    "1s",
    "10x",
    "99999999999999999999999",
    "127.0.0.1:80",
    "127.0.0.1:0-65536",
    "0.0.0.0:1-",
    "[::1]:80",
    ":::",
    "::ffff:1.2.3.4:8",
    "*:+1",
    "*:-1",
    "unix@/tmp/x",
    "abns@x",
    "ipv4@",
    "fd@3",
    "..",
    "a/b",
    "x\x00y",
    "%[fc_netns]",
    "${NOPE}",
    "é",
    "a" * 300,
    "if",
    "unless",
    "src",
    "10.0.0.0/33",
]
# a file is read with errors="surrogateescape": invalid UTF-8 reaches the parser as surrogates
RAW_WORDS = st.binary(min_size=1, max_size=6).map(lambda b: b.decode("utf-8", "surrogateescape"))
WORDS = st.one_of(
    st.sampled_from(KEYWORD_WORDS),
    st.sampled_from(TRICKY_WORDS),
    st.text(max_size=12),
    RAW_WORDS,
)
LINE = st.tuples(st.sampled_from(KEYWORD_WORDS), st.lists(WORDS, max_size=8)).map(
    lambda t: [t[0], *t[1]]
)
FUZZ = settings(
    max_examples=int(os.environ.get("NSP_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def check_outcome(config: Config | None, state: ParseState) -> None:
    assert all(isinstance(e, str) and e for e in state.errors)
    if config is None:
        assert state.errors
    else:
        assert not state.errors


@FUZZ
@given(st.lists(LINE, max_size=25))
def test_random_keyword_lines_never_raise(lines: list[list[str]]) -> None:
    numbered = [(Where("fuzz.cfg", i), words) for i, words in enumerate(lines, start=1)]
    config, state = parse_lines(numbered, ParseState(netns_dir=NO_NETNS_DIR))
    check_outcome(config, state)


@FUZZ
@given(
    st.lists(
        st.one_of(
            LINE.map(" ".join),
            st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
            st.sampled_from(["global", "defaults", "listen l", "frontend f", "backend b"]),
        ),
        max_size=25,
    )
)
def test_random_text_files_never_raise(lines: list[str]) -> None:
    fd, path = tempfile.mkstemp(suffix=".cfg", prefix="nsp-fuzz-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("\n".join(lines))
        config, state = parse_files([path], env={}, netns_dir=NO_NETNS_DIR)
    finally:
        os.unlink(path)
    check_outcome(config, state)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_files_never_raise(data: bytes) -> None:
    fd, path = tempfile.mkstemp(suffix=".cfg", prefix="nsp-fuzz-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        config, state = parse_files([path], env={}, netns_dir=NO_NETNS_DIR)
    finally:
        os.unlink(path)
    check_outcome(config, state)


def test_invalid_utf8_namespace_name_is_an_error_not_a_crash() -> None:
    """Found by atheris: a namespace name with invalid UTF-8 made check_name raise."""
    fd, path = tempfile.mkstemp(suffix=".cfg", prefix="nsp-fuzz-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"frontend f\n bind 127.0.0.1:1 namespace a\x99b\nbackend b\n")
            f.write(b" server s 127.0.0.1:2 namespace \xff\n")
        config, state = parse_files([path], env={}, netns_dir=NO_NETNS_DIR)
    finally:
        os.unlink(path)
    assert config is None
    assert any(":2]" in e for e in state.errors) and any(":4]" in e for e in state.errors)
