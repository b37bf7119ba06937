"""Samples: typed values with HAProxy's type names and cast matrix, and the engine's errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Final


class SmpType(IntEnum):
    """HAProxy's sample types (SMP_T_*), in its order."""

    ANY = 0
    BOOL = 1
    SINT = 2
    ADDR = 3
    IPV4 = 4
    IPV6 = 5
    STR = 6
    BIN = 7
    METH = 8


TYPE_NAMES = ("any", "bool", "sint", "addr", "ipv4", "ipv6", "str", "bin", "meth")

Value = bool | int | str | bytes | IPv4Address | IPv6Address


@dataclass(slots=True)
class Sample:
    """A fetched value. `may_change`: more input may still change it (HAProxy SMP_F_MAY_CHANGE).

    Samples are shared (cached address samples, variables): treat them as immutable (not
    frozen only because frozen dataclasses are slower to build, on the hot path).

    Representation per type: BOOL bool, SINT int, IPV4/IPV6 ipaddress objects, STR str
    (latin-1 text: one character per byte, so every byte string round-trips), BIN bytes,
    METH str (the method name).
    """

    type: SmpType
    value: Value
    may_change: bool = False


class Missing:
    """A fetch found nothing *yet*: more input may bring it (HAProxy returns 0 + MAY_CHANGE)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing()

FetchResult = Sample | None | Missing


class SampleError(Exception):
    """A configuration-time error in an expression, ACL or log-format, with HAProxy's text."""


class Verdict(IntEnum):
    """A condition's outcome, HAProxy's ACL_TEST_*: MISS = may still change with more data."""

    FAIL = 0
    MISS = 1
    PASS = 3


LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)


def clamp64(v: int) -> int:
    """Wraps `v` to a signed 64-bit integer, as C arithmetic on long long does."""
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >> 63 else v


def read_int64(text: str) -> tuple[int, int]:
    """HAProxy's read_int64(): optional sign then digits; returns (value, chars consumed)."""
    i = 0
    neg = False
    if text[:1] == "-":
        neg, i = True, 1
    elif text[:1] == "+":
        i = 1
    value = 0
    while i < len(text) and "0" <= text[i] <= "9":
        value = value * 10 + ord(text[i]) - 48
        i += 1
    value = min(value, 0xFFFFFFFFFFFFFFFF)
    if neg:
        return (LLONG_MIN if value > 1 << 63 else -value), i
    return min(value, LLONG_MAX), i


_IPV4_HEAD = re.compile(r"[0-9.]*")


def buf2ip(text: str) -> IPv4Address | None:
    """HAProxy's buf2ip(): a dotted quad at the start of `text` (trailing text is ignored)."""
    head = _IPV4_HEAD.match(text)
    assert head is not None
    parts = head.group().split(".")
    if len(parts) != 4 or any(not p for p in parts):
        return None
    octets = []
    for p in parts:
        v = 0
        for ch in p:
            v = v * 10 + ord(ch) - 48
            if v > 255:
                return None
        octets.append(v)
    return IPv4Address(bytes(octets))


def parse_ipv6(text: str) -> IPv6Address | None:
    try:
        return IPv6Address(text)
    except ValueError:
        return None


_V4MAPPED = b"\x00" * 10 + b"\xff\xff"


def v4tov6(a: IPv4Address) -> IPv6Address:
    return IPv6Address(_V4MAPPED + a.packed)


def v6tov4(a: IPv6Address) -> IPv4Address | None:
    packed = a.packed
    return IPv4Address(packed[12:]) if packed[:12] == _V4MAPPED else None


def ipv6_text(a: IPv6Address) -> str:
    """inet_ntop() text: like Python's, but v4-mapped addresses end in dotted form."""
    v4 = v6tov4(a)
    if v4 is not None:
        return f"::ffff:{v4}"
    return a.compressed


def _as_text(smp: Sample) -> Sample | None:
    t, v = smp.type, smp.value
    if t is SmpType.STR:
        return smp
    if t in (SmpType.BOOL, SmpType.SINT):
        return Sample(SmpType.STR, str(int(v)), smp.may_change)
    if t is SmpType.IPV4:
        return Sample(SmpType.STR, str(v), smp.may_change)
    if t is SmpType.IPV6:
        assert isinstance(v, IPv6Address)
        return Sample(SmpType.STR, ipv6_text(v), smp.may_change)
    if t is SmpType.BIN:
        assert isinstance(v, bytes)
        cut = v.find(b"\x00")
        return Sample(SmpType.STR, (v if cut < 0 else v[:cut]).decode("latin-1"), smp.may_change)
    if t is SmpType.METH:
        return Sample(SmpType.STR, v, smp.may_change)
    return None


def _cast(smp: Sample, to: SmpType) -> Sample | None:
    t, v = smp.type, smp.value
    mc = smp.may_change
    if to is SmpType.ANY or t is to:
        return smp
    if to is SmpType.STR:
        return _as_text(smp)
    if t is SmpType.BOOL:
        if to is SmpType.SINT:
            return Sample(SmpType.SINT, int(v), mc)
        if to is SmpType.BIN:
            return Sample(SmpType.BIN, int(bool(v)).to_bytes(8, "big"), mc)
        return None
    if t is SmpType.SINT:
        assert isinstance(v, int)
        if to is SmpType.BOOL:
            return Sample(SmpType.BOOL, bool(v), mc)
        if to in (SmpType.ADDR, SmpType.IPV4):
            return Sample(SmpType.IPV4, IPv4Address(v & 0xFFFFFFFF), mc)
        if to is SmpType.IPV6:
            return Sample(SmpType.IPV6, v4tov6(IPv4Address(v & 0xFFFFFFFF)), mc)
        if to is SmpType.BIN:
            return Sample(SmpType.BIN, (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"), mc)
        return None
    if t is SmpType.IPV4:
        assert isinstance(v, IPv4Address)
        if to is SmpType.SINT:
            return Sample(SmpType.SINT, int(v), mc)
        if to is SmpType.ADDR:
            return smp
        if to is SmpType.IPV6:
            return Sample(SmpType.IPV6, v4tov6(v), mc)
        if to is SmpType.BIN:
            return Sample(SmpType.BIN, v.packed, mc)
        return None
    if t is SmpType.IPV6:
        assert isinstance(v, IPv6Address)
        if to is SmpType.ADDR:
            return smp
        if to is SmpType.IPV4:
            v4 = v6tov4(v)
            return None if v4 is None else Sample(SmpType.IPV4, v4, mc)
        if to is SmpType.BIN:
            return Sample(SmpType.BIN, v.packed, mc)
        return None
    if t is SmpType.STR:
        assert isinstance(v, str)
        if to in (SmpType.BOOL, SmpType.SINT):
            if not v:
                return None
            n = read_int64(v)[0]
            return Sample(to, bool(n) if to is SmpType.BOOL else n, mc)
        if to in (SmpType.ADDR, SmpType.IPV4, SmpType.IPV6):
            if to is not SmpType.IPV6:
                a4 = buf2ip(v)
                if a4 is not None:
                    return Sample(SmpType.IPV4, a4, mc)
                if to is SmpType.IPV4:
                    return None
            a6 = parse_ipv6(v)
            return None if a6 is None else Sample(SmpType.IPV6, a6, mc)
        if to is SmpType.BIN:
            return Sample(SmpType.BIN, v.encode("latin-1", "replace"), mc)
        if to is SmpType.METH:
            return Sample(SmpType.METH, v, mc)
        return None
    if t is SmpType.BIN:
        assert isinstance(v, bytes)
        if to is SmpType.METH:
            return Sample(SmpType.METH, v.decode("latin-1"), mc)
        return None
    if t is SmpType.METH:
        if to is SmpType.BIN:
            assert isinstance(v, str)
            return Sample(SmpType.BIN, v.encode("latin-1"), mc)
        return None
    return None


# HAProxy 2.6's sample_casts: which (from, to) pairs have a cast at all (None = impossible).
_NO: dict[SmpType, set[SmpType]] = {
    SmpType.BOOL: {SmpType.ADDR, SmpType.IPV4, SmpType.IPV6, SmpType.METH},
    SmpType.SINT: {SmpType.METH},
    SmpType.ADDR: {t for t in SmpType if t is not SmpType.ANY},
    SmpType.IPV4: {SmpType.BOOL, SmpType.METH},
    SmpType.IPV6: {SmpType.BOOL, SmpType.SINT, SmpType.METH},
    SmpType.STR: set(),
    SmpType.BIN: {SmpType.BOOL, SmpType.SINT, SmpType.ADDR, SmpType.IPV4, SmpType.IPV6},
    SmpType.METH: {SmpType.BOOL, SmpType.SINT, SmpType.ADDR, SmpType.IPV4, SmpType.IPV6},
    SmpType.ANY: set(),
}


def can_cast(frm: SmpType, to: SmpType) -> bool:
    """True when HAProxy has a cast from `frm` to `to` (it may still fail on a given value)."""
    return to not in _NO[frm]


def cast(smp: Sample, to: SmpType) -> Sample | None:
    """`smp` converted to type `to` as HAProxy's casts do, or None when the value does not fit."""
    if smp.type is to or to is SmpType.ANY:
        return smp
    if not can_cast(smp.type, to):
        return None
    return _cast(smp, to)


def text_of(smp: Sample) -> str | None:
    """The sample as a string (HAProxy's cast to str), or None when it has none."""
    s = cast(smp, SmpType.STR)
    return None if s is None else str(s.value)
