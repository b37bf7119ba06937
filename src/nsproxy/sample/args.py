"""Arguments of fetches and converters: `kw(a,b)` parsed as HAProxy's make_arg_list() does."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv6Address

from nsproxy.sample.types import read_int64


class ArgType(Enum):
    """An argument's type; the value is HAProxy's name for it in messages."""

    SINT = "integer"
    STR = "string"
    IPV4 = "IPv4 address"
    MSK4 = "IPv4 mask"
    IPV6 = "IPv6 address"
    MSK6 = "IPv6 mask"
    TIME = "delay"
    SIZE = "size"
    FE = "frontend"
    BE = "backend"
    TAB = "table"
    SRV = "server"
    REG = "regex"


ArgValue = int | str | IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """Argument types in order; the first `min` are mandatory."""

    types: tuple[ArgType, ...] = ()
    min: int = 0


NO_ARGS = ArgSpec()


class ArgError(Exception):
    """A bad argument list; `pos` is the 0-based argument being parsed (for messages)."""

    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(msg)
        self.pos = pos


_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}


def _mask4(text: str) -> IPv4Address | None:
    if text.isdigit():
        bits = int(text)
        if bits > 32:
            return None
        return IPv4Address((0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF)
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def _mask6(text: str) -> IPv6Address | None:
    if text.isdigit():
        bits = int(text)
        if bits > 128:
            return None
        return IPv6Address(((1 << 128) - 1) ^ ((1 << (128 - bits)) - 1))
    return None


def _convert(kind: ArgType, word: str) -> ArgValue | None:
    """The typed value of `word`, or None when it does not parse."""
    if kind is ArgType.SINT:
        value, used = read_int64(word)
        return value if used == len(word) else None
    if kind in (ArgType.IPV4, ArgType.IPV6):
        try:
            return IPv4Address(word) if kind is ArgType.IPV4 else IPv6Address(word)
        except ValueError:
            return None
    if kind is ArgType.MSK4:
        return _mask4(word)
    if kind is ArgType.MSK6:
        return _mask6(word)
    if kind is ArgType.TIME:
        digits = len(word) - len(word.lstrip("0123456789"))
        unit = word[digits:] or "ms"
        if not digits or unit not in _TIME_UNITS:
            return None
        return int(int(word[:digits]) * _TIME_UNITS[unit])
    if kind is ArgType.SIZE:
        digits = len(word) - len(word.lstrip("0123456789"))
        mult = {"": 1, "k": 1024, "m": 1 << 20, "g": 1 << 30}.get(word[digits:].lower())
        return None if not digits or mult is None else int(word[:digits]) * mult
    return word


def parse_args(text: str, spec: ArgSpec) -> tuple[list[ArgValue], int, int]:
    """Parses `(a,b,...)` at the start of `text` against `spec`.

    Returns (values, characters consumed, number of arguments seen). With no `(` nothing is
    consumed; HAProxy then still creates an empty first argument if it is mandatory.
    """
    empty = not text.startswith("(")
    i = 0 if empty else 1
    n = len(text)
    nbarg = len(spec.types)
    values: list[ArgValue] = []
    pos = 0
    if nbarg and not (empty and not spec.min):
        while pos < nbarg:
            out: list[str] = []
            squote = dquote = False
            while not empty and i < n:
                c = text[i]
                if c == '"' and not squote:
                    dquote = not dquote
                    i += 1
                    continue
                if c == "'" and not dquote:
                    squote = not squote
                    i += 1
                    continue
                if c == "\\" and not squote and i + 1 < n:
                    nxt = text[i + 1]
                    if nxt in "\\ \"'":
                        out.append(nxt)
                        i += 1
                    elif nxt in "rnt":
                        out.append({"r": "\r", "n": "\n", "t": "\t"}[nxt])
                        i += 1
                    else:
                        out.append(c)
                    i += 1
                    continue
                if not squote and not dquote and c in ",)":
                    break
                out.append(c)
                i += 1
            word = "".join(out)
            kind = spec.types[pos]
            if not word and kind in (
                ArgType.SINT,
                ArgType.IPV4,
                ArgType.MSK4,
                ArgType.IPV6,
                ArgType.MSK6,
                ArgType.TIME,
                ArgType.SIZE,
            ):
                if pos >= spec.min:
                    break
                raise ArgError(
                    f"expected type '{kind.value}' at position {pos + 1}, but got nothing", pos
                )
            value = _convert(kind, word)
            if value is None:
                raise ArgError(
                    f"failed to parse '{word}' as type '{kind.value}' at position {pos + 1}", pos
                )
            values.append(value)
            pos += 1
            if empty or i >= n or text[i] == ")" or pos >= nbarg:
                break
            i += 1  # the comma
    if pos < spec.min:
        kind_name = spec.types[pos].value if pos < nbarg else "end of arguments"
        raise ArgError(
            f"missing arguments (got {pos}/{spec.min}), type '{kind_name}' expected", pos
        )
    if not empty:
        if i < n and text[i] == ")":
            i += 1
        else:
            rest = text[i:]
            msg = f"expected ')' before '{rest}'" if rest else "expected ')'"
            raise ArgError(msg, pos - 1 if pos > 1 else pos)
    return values, i, pos
