"""Tests for the HAProxy 2.6 configuration-line lexer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nsproxy.config.lexer import MAX_LINE_ARGS, LexError, Line, read_lines, split_line

NO_ENV: dict[str, str] = {}


def words(text: str, env: dict[str, str] | None = None) -> list[str]:
    return split_line(text, NO_ENV if env is None else env)


def lex_error(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(LexError) as info:
        words(text, env)
    return str(info.value)


# --- word splitting and comments ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   \t ", []),
        ("# a comment", []),
        ("    # an indented comment", []),
        ("bind :8080", ["bind", ":8080"]),
        ("\t  timeout \t client\v\f30s  ", ["timeout", "client", "30s"]),
        ("mode tcp # trailing comment", ["mode", "tcp"]),
        ("mode tcp#glued comment", ["mode", "tcp"]),
        ("mode tcp\r", ["mode", "tcp"]),
        ("mode tcp\rignored after a bare CR", ["mode", "tcp"]),
        ("naïve 名前", ["naïve", "名前"]),
    ],
)
def test_splitting(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_hash_is_literal_when_escaped_or_quoted() -> None:
    assert words(r"acl a\#b") == ["acl", "a#b"]
    assert words('acl "a#b"') == ["acl", "a#b"]
    assert words("acl 'a#b'") == ["acl", "a#b"]
    assert words(r'acl "a\#b"') == ["acl", "a#b"]


def test_empty_words_inside_are_kept_trailing_ones_dropped() -> None:
    assert words('server "" a') == ["server", "", "a"]
    assert words("server a '' \"\"") == ["server", "a"]


def test_line_with_empty_first_word_is_skipped() -> None:
    assert words('"" listen x') == []
    assert words('"${NOPE}" listen x') == []


# --- quoting and escaping ------------------------------------------------------------------


def test_equivalent_spellings_of_one_word() -> None:
    expected = ["http-response", "set-header", "X-Id", "%ci %cp [%t]"]
    for spelling in [
        r"http-response set-header X-Id %ci\ %cp\ [%t]",
        'http-response set-header X-Id "%ci %cp [%t]"',
        "http-response set-header X-Id '%ci %cp [%t]'",
        "http-response set-header X-Id \"%ci %cp\"' [%t]'",
        "http-response set-header X-Id \"%ci\"' %cp'\\ [%t]",
    ]:
        assert words(spelling) == expected, spelling


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"a\ b", "a b"),
        (r"a\#b", "a#b"),
        (r"a\\b", "a\\b"),
        (r"a\'b", "a'b"),
        (r"a\"b", 'a"b'),
        (r"a\tb", "a\tb"),
        (r"a\nb", "a\nb"),
        (r"a\rb", "a\rb"),
        (r"a\x41b", "aAb"),
        (r"\x7e\x7E", "~~"),
        (r"a\x20b", "a b"),
        (r"a\1b", "a\\1b"),
        (r"a\Xb", "a\\Xb"),
        (r"a\$b", "a\\$b"),
        ("a$b", "a$b"),
    ],
)
def test_escapes_outside_quotes(text: str, expected: str) -> None:
    assert words(text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"a b"', "a b"),
        ('"a\tb"', "a\tb"),
        (r'"a\ b"', "a b"),
        (r'"a\\b"', "a\\b"),
        (r'"a\"b"', 'a"b'),
        (r'"a\'b"', "a'b"),
        ('"a\'b"', "a'b"),
        (r'"a\#b"', "a#b"),
        (r'"a\$b"', "a$b"),
        (r'"a\nb"', "a\nb"),
        (r'"a\x24b"', "a$b"),
        (r'"a\qb"', "a\\qb"),
    ],
)
def test_weak_quoting(text: str, expected: str) -> None:
    assert words(text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'a b'", "a b"),
        ("'a\\b'", "a\\b"),
        (r"'\x41\n\$'", r"\x41\n\$"),
        ("'a\"b'", 'a"b'),
        ("'$HOME'", "$HOME"),
        ("'a#b'", "a#b"),
    ],
)
def test_strong_quoting(text: str, expected: str) -> None:
    assert words(text) == [expected]


def test_backslash_before_a_tab_is_literal_as_in_haproxy_2_6() -> None:
    # The 2.6 documentation table claims otherwise, but parse_line() only knows "\ ".
    assert words("a\\\tb") == ["a\\", "b"]
    assert words('"a\\\tb"') == ["a\\\tb"]


def test_trailing_backslash_is_kept() -> None:
    assert words("path c:\\") == ["path", "c:\\"]


def test_nul_from_hex_escape_ends_the_word() -> None:
    assert words(r"ab\x00cd ef") == ["ab", "ef"]


def test_hex_escapes_form_utf8() -> None:
    assert words(r"caf\xc3\xa9") == ["café"]
    assert words(r"\xff") == ["\udcff"]


def test_second_level_quotes_survive_when_escaped() -> None:
    assert words(r"http-request set-path %[path,regsub(\"(a|b)\",c,g)]") == [
        "http-request",
        "set-path",
        '%[path,regsub("(a|b)",c,g)]',
    ]
    assert words("""http-request set-path '%[path,regsub("^/x(/|$)","y/\\1",g)]'""") == [
        "http-request",
        "set-path",
        '%[path,regsub("^/x(/|$)","y/\\1",g)]',
    ]


# --- environment variables -----------------------------------------------------------------

ENV = {"PORT": "8443", "EMPTY": "", "LIST": "10 weight  5\tcheck", "PADDED": " a b "}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('bind ":$PORT"', ["bind", ":8443"]),
        ('bind ":${PORT}"', ["bind", ":8443"]),
        ('bind ":${PORT}0"', ["bind", ":84430"]),
        ('bind ":$PORT.0"', ["bind", ":8443.0"]),
        ("bind :$PORT", ["bind", ":$PORT"]),
        ("bind ':$PORT'", ["bind", ":$PORT"]),
        (r'bind ":\$PORT"', ["bind", ":$PORT"]),
        ('x "$UNSET" y', ["x", "", "y"]),
        ('x "a${UNSET}b"', ["x", "ab"]),
        ('x "${UNSET-fallback value}"', ["x", "fallback value"]),
        ('x "${PORT-80}"', ["x", "8443"]),
        ('x "${EMPTY-80}" y', ["x", "", "y"]),
        ('x "${UNSET-}" y', ["x", "", "y"]),
        ('x "${UNSET-a\'b"c}"', ["x", "a'b\"c"]),
        ('x "$PORT[*]"', ["x", "8443[*]"]),
        ('x "${LIST[*]}" y', ["x", "10", "weight", "5", "check", "y"]),
        ('x s"${LIST[*]}"e', ["x", "s10", "weight", "5", "checke"]),
        ('x "${LIST}"', ["x", "10 weight  5\tcheck"]),
        ('x "${UNSET[*]-a b}"', ["x", "a", "b"]),
        ('x "${PADDED[*]}" y', ["x", "", "a", "b", "", "y"]),
        ('x "${EMPTY[*]}" y', ["x", "", "y"]),
    ],
)
def test_environment_expansion(text: str, expected: list[str]) -> None:
    assert words(text, ENV) == expected


def test_pseudo_variables_come_from_env() -> None:
    env = {".FILE": "a.cfg", ".LINE": "7", ".SECTION": "web"}
    assert words('x "$.FILE:${.LINE}" "${.SECTION}"', env) == ["x", "a.cfg:7", "web"]
    assert words('x "${.SECTION-none}"') == ["x", "none"]


@pytest.mark.parametrize(
    ("text", "what", "position"),
    [
        ('x "$1"', "forbidden first char in environment variable name", 5),
        ('x "$"', "forbidden first char in environment variable name", 5),
        ('x "cost 5$', "forbidden first char in environment variable name", 11),
        ('x "${}"', "forbidden first char in environment variable name", 6),
        ('x "${.HOST}"', "forbidden first char in environment variable name", 6),
        ('x "$.X"', "forbidden first char in environment variable name", 5),
        ('x "${PORT"', "unmatched brace in environment variable name", 5),
        ('x "${PORT:-1}"', "unmatched brace in environment variable name", 5),
        ('x "${PORT-1"', "unmatched brace in environment variable name", 5),
        ('x "${PORT[]}"', "truncated or invalid word expansion sequence", 10),
        ('x "${PORT[*}"', "truncated or invalid word expansion sequence", 10),
        (r"x a\x4", "truncated or invalid hexadecimal sequence", 4),
        (r"x a\xZZ", "truncated or invalid hexadecimal sequence", 4),
        (r"x '\x4' \x", "truncated or invalid hexadecimal sequence", 9),
        ('x "abc', "unmatched quote", 3),
        ("x 'abc", "unmatched quote", 3),
        ('x "a" \'b"c', "unmatched quote", 7),
        ('x "a # b', "unmatched quote", 3),
    ],
)
def test_located_errors(text: str, what: str, position: int) -> None:
    message = lex_error(text, ENV)
    first, shown, caret = message.split("\n")
    assert first == f"{what} at position {position}:"
    assert shown == "  " + text
    assert caret == "  " + " " * (position - 1) + "^"


def test_error_position_counts_leading_blanks_but_caret_does_not() -> None:
    message = lex_error('    x "abc')
    assert message == 'unmatched quote at position 7:\n  x "abc\n    ^'


def test_long_line_is_shortened_in_error_report() -> None:
    text = "a" * 100 + ' "' + "b" * 100
    first, shown, caret = lex_error(text).split("\n")
    assert first == "unmatched quote at position 102:"
    assert shown.startswith("  ...") and shown.endswith("...")
    assert len(shown) == 2 + 80
    assert shown[len(caret) - 1] == '"'


def test_unprintable_characters_are_masked_in_error_report() -> None:
    message = lex_error('x\x01 "é')
    assert message.split("\n")[1] == '  x? "?'


# --- word limit ----------------------------------------------------------------------------


def test_word_limit() -> None:
    assert len(words(" ".join(["w"] * MAX_LINE_ARGS))) == MAX_LINE_ARGS
    message = lex_error(" ".join(f"w{i}" for i in range(MAX_LINE_ARGS + 1)))
    assert message == "too many words, truncating after word 64, position 243: <w63>."


def test_word_limit_counts_a_trailing_separator_like_haproxy_2_6() -> None:
    assert "too many words" in lex_error(" ".join(["w"] * MAX_LINE_ARGS) + " # note")


def test_word_limit_applies_to_expanded_words() -> None:
    env = {"MANY": " ".join(["v"] * MAX_LINE_ARGS)}
    assert "too many words" in lex_error('x "${MANY[*]}"', env)
    assert len(words('x "${MANY}"', env)) == 2


def test_no_line_length_limit() -> None:
    assert words("x " + "y" * 100_000) == ["x", "y" * 100_000]


# --- scope declarations --------------------------------------------------------------------


def test_scope_declaration_produces_no_words() -> None:
    assert words("[my-engine]") == []
    assert words("  [spoe:1.x]  # comment") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "empty scope name is forbidden."),
        ("[abc", "empty scope name is forbidden."),
        ("[a b]", "character ' ' is not permitted in a scope name."),
        ("[a] b", "character 'b' is not permitted after scope declaration."),
    ],
)
def test_bad_scope_declarations(text: str, message: str) -> None:
    assert lex_error(text) == message


# --- files ---------------------------------------------------------------------------------


def write(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "haproxy.cfg"
    path.write_bytes(content)
    return str(path)


def test_read_lines_skips_blank_and_comment_lines(tmp_path: Path) -> None:
    path = write(tmp_path, b"# head\n\nglobal\r\n    maxconn 10 # limit\n\n")
    assert list(read_lines(path, {})) == [
        Line(path, 3, ("global",)),
        Line(path, 4, ("maxconn", "10")),
    ]


def test_read_lines_provides_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'\nx "${.FILE}" "$.LINE"\n')
    assert list(read_lines(path, {})) == [Line(path, 2, ("x", path, "2"))]


def test_read_lines_sees_section_updates_made_between_lines(tmp_path: Path) -> None:
    path = write(tmp_path, b'a "${.SECTION-none}"\nb "${.SECTION}"\n')
    env: dict[str, str] = {}
    seen = []
    for line in read_lines(path, env):
        seen.append(line.words)
        env[".SECTION"] = "front"
    assert seen == [("a", "none"), ("b", "front")]


def test_read_lines_defaults_to_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NSPROXY_LEXER_TEST", "yes")
    path = write(tmp_path, b'x "$NSPROXY_LEXER_TEST"\n')
    assert [line.words for line in read_lines(path)] == [("x", "yes")]


def test_read_lines_keeps_undecodable_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, b"x caf\xc3\xa9 \xff\n")
    assert [line.words for line in read_lines(path, {})] == [("x", "café", "\udcff")]


def test_read_lines_prefixes_errors_with_location(tmp_path: Path) -> None:
    path = write(tmp_path, b"ok\n\n  x 'open\n")
    lines = read_lines(path, {})
    assert next(lines) == Line(path, 1, ("ok",))
    with pytest.raises(LexError) as info:
        next(lines)
    location = f"parsing [{path}:3]: "
    assert str(info.value) == location + "unmatched quote at position 5:\n  x 'open\n    ^"
    assert (info.value.file, info.value.lineno) == (path, 3)
    assert info.value.reason.startswith("unmatched quote")


def test_read_lines_scope_errors_use_spaced_prefix(tmp_path: Path) -> None:
    path = write(tmp_path, b"[]\n")
    with pytest.raises(LexError, match=r"^parsing \[.*:1\] : empty scope name is forbidden\.$"):
        list(read_lines(path, {}))


def test_missing_final_line_feed_fails_after_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\nbb cc")
    lines = read_lines(path, {})
    assert [next(lines), next(lines)] == [Line(path, 1, ("a",)), Line(path, 2, ("bb", "cc"))]
    with pytest.raises(LexError) as info:
        next(lines)
    assert str(info.value) == (
        f"parsing [{path}:2]: "
        "Missing LF on last line, file might have been truncated at position 6."
    )


def test_stray_nul_stops_reading(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\n  b\x00c\nd\n")
    lines = read_lines(path, {})
    assert [next(lines), next(lines)] == [Line(path, 1, ("a",)), Line(path, 2, ("b",))]
    with pytest.raises(LexError) as info:
        next(lines)
    assert str(info.value) == f"parsing [{path}:2]: Stray NUL character at position 4."


def test_nul_on_last_line_reports_missing_lf(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\x00\n")
    with pytest.raises(LexError, match=r":1\]: Missing LF on last line.*position 2\.$"):
        list(read_lines(path, {}))


def test_empty_file(tmp_path: Path) -> None:
    assert list(read_lines(write(tmp_path, b""), {})) == []


# --- properties ----------------------------------------------------------------------------

plain_words = st.lists(
    st.text(alphabet=st.characters(blacklist_characters="\0"), min_size=1), min_size=1, max_size=20
)


def double_quoted(word: str) -> str:
    inner = "".join("\\" + c if c in '\\"$' else {"\n": r"\n", "\r": r"\r"}.get(c, c) for c in word)
    return f'"{inner}"'


def backslash_escaped(word: str) -> str:
    special = {"\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\x0b", "\f": r"\x0c", "[": r"\x5b"}
    return "".join("\\" + c if c in " #'\"\\" else special.get(c, c) for c in word)


@given(st.text(), st.dictionaries(st.text(min_size=1), st.text()))
def test_any_line_splits_or_raises_lex_error(text: str, env: dict[str, str]) -> None:
    try:
        result = split_line(text, env)
    except LexError as exc:
        assert str(exc)
    else:
        assert all(isinstance(word, str) for word in result)
        assert not result or (result[0] != "" and result[-1] != "")
        assert len(result) <= MAX_LINE_ARGS


@given(plain_words)
def test_double_quoting_round_trips(ws: list[str]) -> None:
    assert words(" ".join(double_quoted(w) for w in ws)) == ws


@given(plain_words)
def test_backslash_escaping_round_trips(ws: list[str]) -> None:
    assert words("\t".join(backslash_escaped(w) for w in ws)) == ws


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters="\0'\n\r"), min_size=1),
        min_size=1,
        max_size=20,
    )
)
def test_single_quoting_round_trips(ws: list[str]) -> None:
    assert words(" ".join(f"'{w}'" for w in ws)) == ws


@given(
    st.lists(
        st.text(alphabet=st.sampled_from("abcXYZ019-_./:,=@%[]{}()+*!?~"), min_size=1),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from([" ", "\t", "  \t ", "\f"]),
)
def test_unspecial_words_need_no_quoting(ws: list[str], separator: str) -> None:
    assume(not ws[0].startswith("["))
    assert words(" " + separator.join(ws) + separator) == ws
