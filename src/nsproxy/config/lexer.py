"""Splits HAProxy configuration lines into words the way HAProxy 2.6 does."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from string import ascii_letters, digits
from typing import ClassVar

MAX_LINE_ARGS = 64
PSEUDO_VARIABLES = frozenset({".FILE", ".LINE", ".SECTION"})

# C isspace() in the "C" locale; of these, "\n" and "\r" end the line rather than split words.
_C_SPACE = frozenset(" \t\v\f\n\r")
_SEPARATORS = frozenset(" \t\v\f")
_LINE_END = frozenset("\n\r")
_HEX = frozenset("0123456789abcdefABCDEF")
_NAME_START = frozenset(ascii_letters + "_")
_NAME_CHARS = frozenset(ascii_letters + digits + "_")
_SCOPE_CHARS = frozenset(ascii_letters + digits + ".:_-")
_SIMPLE_ESCAPES = {
    " ": " ",
    "\\": "\\",
    "t": "\t",
    "n": "\n",
    "r": "\r",
    "#": "#",
    "'": "'",
    '"': '"',
}
_SHOWN_WIDTH = 80


class LexError(ValueError):
    """A configuration line HAProxy would refuse; str() is HAProxy's alert text."""

    location_separator: ClassVar[str] = ": "

    def __init__(self, reason: str, *, file: str | None = None, lineno: int | None = None) -> None:
        self.reason = reason
        self.file = file
        self.lineno = lineno
        if file is None:
            super().__init__(reason)
        else:
            super().__init__(f"parsing [{file}:{lineno}]{self.location_separator}{reason}")

    def located(self, file: str, lineno: int) -> LexError:
        """The same error, prefixed with the file and line it comes from."""
        return type(self)(self.reason, file=file, lineno=lineno)


class _ScopeError(LexError):
    location_separator = " : "


@dataclass(frozen=True, slots=True)
class Line:
    file: str
    lineno: int
    words: tuple[str, ...]


def _sanitize(line: str, pos: int, width: int = _SHOWN_WIDTH) -> tuple[str, int]:
    """Shortens a line around pos for an error report; returns it and pos's new offset."""
    shift = 0
    if pos >= width:
        shift = pos - width // 2
        shown = line[shift + 3 : shift + width - 3]
        prefix, suffix = "...", "..."
    else:
        shown = line[:width]
        prefix = suffix = ""
    cleaned = "".join(" " if c in _C_SPACE else c if " " <= c <= "~" else "?" for c in shown)
    return prefix + cleaned + suffix, pos - shift


def _located_error(what: str, text: str, start: int, at: int) -> LexError:
    shown, caret = _sanitize(text[start:], at - start)
    return LexError(f"{what} at position {at + 1}:\n  {shown}\n  {' ' * caret}^")


class _Words:
    """HAProxy's output buffer: words separated by NULs, counted against MAX_LINE_ARGS."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.current: list[str] = []
        self.outpos = 0
        self.starts = [0]
        self.too_many = False

    def emit(self, chars: str) -> None:
        self.current.append(chars)
        self.outpos += len(chars)

    def separate(self) -> None:
        self.done.append("".join(self.current))
        self.current = []
        self.outpos += 1
        if len(self.done) < MAX_LINE_ARGS:
            self.starts.append(self.outpos)
        else:
            self.too_many = True

    def finish(self) -> list[str]:
        self.done.append("".join(self.current))
        self.current = []
        return [_c_string(word) for word in self.done]


def _c_string(word: str) -> str:
    """What C sees of a word: it stops at a NUL, and escaped bytes regroup into UTF-8."""
    word = word.split("\0", 1)[0]
    if any("\udc80" <= c <= "\udcff" for c in word):
        try:
            return word.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return word
    return word


def _byte_char(value: int) -> str:
    return chr(value) if value < 0x80 else chr(0xDC00 + value)


def _expand(text: str, i: int, start: int, env: Mapping[str, str], out: _Words) -> int:
    """Expands the variable whose '$' is at text[i]; returns the index just after it."""
    n = len(text)
    i += 1
    brace = -1
    if i < n and text[i] == "{":
        brace = i
        i += 1
    if i >= n or not (text[i] in _NAME_START or text[i] == "."):
        raise _located_error("forbidden first char in environment variable name", text, start, i)
    name_start = i
    if text[i] == ".":
        i += 1
    while i < n and text[i] in _NAME_CHARS:
        i += 1
    name = text[name_start:i]
    if name.startswith(".") and name not in PSEUDO_VARIABLES:
        raise _located_error(
            "forbidden first char in environment variable name", text, start, name_start
        )
    value = env.get(name)

    split_words = False
    if brace >= 0 and i < n and text[i] == "[":
        if text[i + 1 : i + 3] != "*]":
            raise _located_error("truncated or invalid word expansion sequence", text, start, i)
        split_words = True
        i += 3

    if brace >= 0:
        if i < n and text[i] == "-":
            close = text.find("}", i)
            if close < 0:
                raise _located_error(
                    "unmatched brace in environment variable name", text, start, brace
                )
            if value is None:
                value = text[i + 1 : close]
            i = close
        elif i >= n or text[i] != "}":
            raise _located_error("unmatched brace in environment variable name", text, start, brace)
        i += 1

    if value:
        if not split_words:
            out.emit(value)
        else:
            j = 0
            while j < len(value):
                if value[j] in _C_SPACE:
                    out.separate()
                    while j < len(value) and value[j] in _C_SPACE:
                        j += 1
                else:
                    out.emit(value[j])
                    j += 1
    return i


def _unescape(text: str, i: int, start: int, in_dquote: bool, out: _Words) -> int:
    """Handles the backslash at text[i]; returns the index of the next unread character."""
    nxt = text[i + 1 : i + 2]
    if nxt in _SIMPLE_ESCAPES:
        out.emit(_SIMPLE_ESCAPES[nxt])
        return i + 2
    if nxt == "$" and in_dquote:
        out.emit("$")
        return i + 2
    if nxt == "x":
        digits_ = text[i + 2 : i + 4]
        if len(digits_) != 2 or not all(c in _HEX for c in digits_):
            raise _located_error("truncated or invalid hexadecimal sequence", text, start, i)
        out.emit(_byte_char(int(digits_, 16)))
        return i + 4
    out.emit("\\")
    return i + 1


def _check_scope(text: str, start: int) -> None:
    close = text.find("]", start + 1)
    if close <= start + 1:
        raise _ScopeError("empty scope name is forbidden.")
    for c in text[start + 1 : close]:
        if c not in _SCOPE_CHARS:
            raise _ScopeError(f"character '{c}' is not permitted in a scope name.")
    rest = text[close + 1 :].lstrip("".join(_C_SPACE))
    if rest and rest[0] not in "#\n\r":
        raise _ScopeError(f"character '{rest[0]}' is not permitted after scope declaration.")


def split_line(text: str, env: Mapping[str, str]) -> list[str]:
    """Splits one physical line into words, removing comments, quotes and escapes.

    Environment variables are looked up in env, which is also where the pseudo-variables
    .FILE, .LINE and .SECTION come from. A line whose first word is empty yields no words,
    as do blank lines, comments and "[scope]" declarations (HAProxy uses those for SPOE only).
    Empty words in the middle are kept; trailing empty words are dropped.
    """
    text = text.split("\0", 1)[0]
    n = len(text)
    start = 0
    while start < n and text[start] in _C_SPACE:
        start += 1
    if text[start : start + 1] == "[":
        _check_scope(text, start)
        return []

    out = _Words()
    in_squote = in_dquote = False
    quote_at = -1
    i = start
    while i < n:
        c = text[i]
        if c in _LINE_END or (c == "#" and not in_squote and not in_dquote):
            break
        if c == '"' and not in_squote:
            in_dquote = not in_dquote
            quote_at = i if in_dquote else -1
            i += 1
        elif c == "'" and not in_dquote:
            in_squote = not in_squote
            quote_at = i if in_squote else -1
            i += 1
        elif c == "\\" and not in_squote:
            i = _unescape(text, i, start, in_dquote, out)
        elif c in _SEPARATORS and not in_squote and not in_dquote:
            while i < n and text[i] in _C_SPACE:
                i += 1
            out.separate()
        elif c == "$" and in_dquote:
            i = _expand(text, i, start, env, out)
        else:
            out.emit(c)
            i += 1

    if quote_at >= 0:
        raise _located_error("unmatched quote", text, start, quote_at)
    words = out.finish()
    if out.too_many:
        last = MAX_LINE_ARGS - 1
        raise LexError(
            f"too many words, truncating after word {MAX_LINE_ARGS}, "
            f"position {out.starts[last] + 1}: <{words[last]}>."
        )
    if not words[0]:
        return []
    while not words[-1]:
        words.pop()
    return words


class _LineEnv(Mapping[str, str]):
    """The caller's environment with this line's .FILE and .LINE on top, read live."""

    def __init__(self, base: Mapping[str, str], file: str, lineno: int) -> None:
        self._base = base
        self._own = {".FILE": file, ".LINE": str(lineno)}

    def __getitem__(self, key: str) -> str:
        if key in self._own:
            return self._own[key]
        return self._base[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._own
        yield from (key for key in self._base if key not in self._own)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def read_lines(path: str, env: Mapping[str, str] | None = None) -> Iterator[Line]:
    """Yields the non-empty lines of a configuration file, split into words.

    env defaults to the process environment; .FILE and .LINE are supplied here, and a
    ".SECTION" key the caller keeps up to date in env is seen by the following lines.
    Errors raise LexError located at "parsing [FILE:LINE]"; like HAProxy, a NUL byte or
    a missing final line feed is an error once the lines before it have been yielded.
    """
    base: Mapping[str, str] = os.environ if env is None else env
    with open(path, "rb") as f:
        data = f.read()

    pos = lineno = 0
    missing_lf = -1
    while pos < len(data):
        if missing_lf >= 0:
            raise LexError(
                f"Stray NUL character at position {missing_lf + 1}.", file=path, lineno=lineno
            )
        newline = data.find(b"\n", pos)
        if newline < 0:
            raw, pos, has_lf = data[pos:], len(data), False
        else:
            raw, pos, has_lf = data[pos:newline], newline + 1, True
        lineno += 1
        nul = raw.find(b"\0")
        if nul >= 0:
            raw, missing_lf = raw[:nul], nul
        elif not has_lf:
            missing_lf = len(raw)

        try:
            text = raw.decode("utf-8", "surrogateescape")
            words = split_line(text, _LineEnv(base, path, lineno))
        except LexError as exc:
            raise exc.located(path, lineno) from None
        if words:
            yield Line(path, lineno, tuple(words))

    if missing_lf >= 0:
        raise LexError(
            "Missing LF on last line, file might have been truncated at position "
            f"{missing_lf + 1}.",
            file=path,
            lineno=lineno,
        )
