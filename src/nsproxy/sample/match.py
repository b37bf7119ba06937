"""Match methods (-m str|beg|end|sub|reg|dom|dir|len|int|ip|bin|found|bool) over pattern lists.

`PatternExpr` compiles the current entries of a `PatRef` for one method and flags, and
finds the entry a sample matches, with HAProxy's precedence: exact string and ip lookups
are indexed (longest prefix wins for ip and for beg without -i), other methods try the
entries in order and the first match wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv6Address

from nsproxy.sample.patref import PatElt, PatRef
from nsproxy.sample.types import Sample, SmpType, cast


class Method(Enum):
    """A match method; the value is HAProxy's name."""

    FOUND = "found"
    BOOL = "bool"
    INT = "int"
    IP = "ip"
    BIN = "bin"
    LEN = "len"
    STR = "str"
    BEG = "beg"
    SUB = "sub"
    DIR = "dir"
    DOM = "dom"
    END = "end"
    REG = "reg"
    REGM = "regm"


# The sample type each method compares (HAProxy's pat_match_types).
EXPECT: dict[Method, SmpType] = {
    Method.FOUND: SmpType.SINT,
    Method.BOOL: SmpType.SINT,
    Method.INT: SmpType.SINT,
    Method.IP: SmpType.ADDR,
    Method.BIN: SmpType.BIN,
    Method.LEN: SmpType.STR,
    Method.STR: SmpType.STR,
    Method.BEG: SmpType.STR,
    Method.SUB: SmpType.STR,
    Method.DIR: SmpType.STR,
    Method.DOM: SmpType.STR,
    Method.END: SmpType.STR,
    Method.REG: SmpType.STR,
    Method.REGM: SmpType.STR,
}

# The method used when none is given, by the fetch's output type.
DEFAULT_METHOD: dict[SmpType, Method] = {
    SmpType.BOOL: Method.BOOL,
    SmpType.SINT: Method.INT,
    SmpType.ADDR: Method.IP,
    SmpType.IPV4: Method.IP,
    SmpType.IPV6: Method.IP,
    SmpType.STR: Method.STR,
}

METHODS = {m.value: m for m in Method}


class PatternError(ValueError):
    """A pattern that does not parse for its method; the message is HAProxy's."""


@dataclass(frozen=True, slots=True)
class IntRange:
    lo: int | None
    hi: int | None

    def __contains__(self, v: int) -> bool:
        return (self.lo is None or self.lo <= v) and (self.hi is None or v <= self.hi)


def _strict_int(text: str) -> int | None:
    body = text[1:] if text[:1] in "+-" else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    return int(text)


def parse_int_range(text: str) -> IntRange:
    """`N`, `N:M`, `:M`, `N:` (or '-' instead of ':'), as HAProxy's pat_parse_int()."""
    if not text:
        raise PatternError(f"'{text}' is not a valid number range")
    sep = next((i for i, c in enumerate(text) if c in ":-"), -1)
    if sep < 0:
        v = _strict_int(text)
        if v is None:
            raise PatternError(f"'{text}' is not a number")
        return IntRange(v, v)
    lo_t, hi_t = text[:sep], text[sep + 1 :]
    lo = _strict_int(lo_t) if lo_t else None
    hi = _strict_int(hi_t) if hi_t else None
    if (lo_t and lo is None) or (hi_t and hi is None) or (not lo_t and not hi_t):
        raise PatternError(f"'{text}' is not a valid number range")
    if lo is not None and hi is not None and lo > hi:
        raise PatternError(f"'{text}' is not a valid number range")
    return IntRange(lo, hi)


def parse_dotted_ver(text: str) -> IntRange:
    """`major.minor` versions as HAProxy's pat_parse_dotted_ver() (value = major<<16|minor)."""

    def one(t: str) -> int | None:
        major, _, minor = t.partition(".")
        mj, mn = _strict_int(major), _strict_int(minor) if minor else 0
        if mj is None or mn is None or not 0 <= mj < 65536 or not 0 <= mn < 65536:
            return None
        return (mj << 16) | mn

    sep = text.find(":")
    if sep < 0:
        v = one(text)
        if v is None:
            raise PatternError(f"'{text}' is not a dotted number")
        return IntRange(v, v)
    lo_t, hi_t = text[:sep], text[sep + 1 :]
    lo = one(lo_t) if lo_t else None
    hi = one(hi_t) if hi_t else None
    if (lo_t and lo is None) or (hi_t and hi is None) or (not lo_t and not hi_t):
        raise PatternError(f"'{text}' is not a valid dotted number range")
    return IntRange(lo, hi)


def _contiguous(mask: int, bits: int) -> int | None:
    inv = (~mask) & ((1 << bits) - 1)
    if inv & (inv + 1):
        return None
    return bits - inv.bit_length()


@dataclass(frozen=True, slots=True)
class Net:
    """An IPv4 or IPv6 network pattern: address, mask (as an int) and prefix length if any."""

    v6: bool
    addr: int
    mask: int
    plen: int | None


def parse_net(text: str) -> Net:
    """`a.b.c.d[/len|/mask]` or `ipv6[/len]` as HAProxy's str2net()/str62net() (no DNS)."""
    addr_t, slash, mask_t = text.partition("/")
    try:
        a4 = IPv4Address(addr_t)
        if not slash:
            mask = 0xFFFFFFFF
        elif mask_t.isdigit() and int(mask_t) <= 32:
            mask = (0xFFFFFFFF << (32 - int(mask_t))) & 0xFFFFFFFF
        else:
            mask = int(IPv4Address(mask_t))
        return Net(False, int(a4) & mask, mask, _contiguous(mask, 32))
    except ValueError:
        pass
    try:
        a6 = IPv6Address(addr_t)
        if slash and not (mask_t.isdigit() and int(mask_t) <= 128):
            raise ValueError
        plen = int(mask_t) if slash else 128
        mask = ((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1)
        return Net(True, int(a6) & mask, mask, plen)
    except ValueError:
        raise PatternError(f"'{text}' is not a valid IPv4 or IPv6 address") from None


def parse_bin(text: str) -> bytes:
    if len(text) % 2:
        raise PatternError("an even number of hex digit is expected")
    for c in text:
        if c not in "0123456789abcdefABCDEF":
            raise PatternError(f"an hex digit is expected (found '{c}')")
    return bytes.fromhex(text)


def compile_regex(text: str, icase: bool) -> re.Pattern[str]:
    try:
        return re.compile(text, re.IGNORECASE if icase else 0)
    except re.error as e:
        raise PatternError(f"regex '{text}' is invalid ({e})") from None


def parse_pattern(method: Method, text: str, icase: bool = False) -> object:
    """The compiled form of one pattern for `method`; raises PatternError."""
    if method in (Method.INT, Method.LEN):
        return parse_int_range(text)
    if method is Method.IP:
        return parse_net(text)
    if method is Method.BIN:
        return parse_bin(text)
    if method in (Method.REG, Method.REGM):
        return compile_regex(text, icase)
    return text


_DOM_DELIMS = "/?.:"
_DIR_DELIMS = "/?"


def match_word(sample: str, pattern: str, delims: str, icase: bool) -> bool:
    """HAProxy's match_word(): `pattern` (stripped of delimiters) found between delimiters.

    Like the C code, the position just past the sample reads as a NUL, so an empty pattern
    matches an empty sample or one ending with a delimiter.
    """
    ps = pattern.strip(delims)
    pl = len(ps)
    if pl > len(sample):
        return False
    if icase:
        sample, ps = sample.lower(), ps.lower()
    may_match = True
    last = len(sample) - pl
    for i in range(last + 1):
        c = sample[i] if i < len(sample) else "\0"
        if c in delims:
            may_match = True
            continue
        if not may_match:
            continue
        if pl == 0:
            if i == len(sample):
                return True
        elif sample.startswith(ps, i) and (i == last or sample[i + pl] in delims):
            return True
        may_match = False
    return False


Matcher = Callable[[Sample], PatElt | None]


class PatternExpr:
    """The entries of one reference compiled for a method; rebuilt when the reference changes."""

    def __init__(
        self, ref: PatRef, method: Method, icase: bool = False, value_type: SmpType | None = None
    ) -> None:
        self.ref = ref
        self.method = method
        self.icase = icase
        self.value_type = value_type  # maps: the type values are parsed to
        self._revision = -1
        self._match: Matcher = lambda smp: None
        self._want = EXPECT[method]
        # Sample types this method reads without a cast.
        self._direct: frozenset[SmpType] = {
            Method.FOUND: frozenset(SmpType),
            Method.BOOL: frozenset({SmpType.BOOL}),
            Method.IP: frozenset({SmpType.IPV4, SmpType.IPV6}),
        }.get(method, frozenset())
        # HAProxy indexes a reference once per (index, parser, value type, flags); expressions
        # that agree share that storage, which the runtime API lists and counts once.
        self.storage = (_INDEX.get(method, method), _PARSER.get(method, method), value_type, icase)
        if not any(isinstance(u, PatternExpr) and u.storage == self.storage for u in ref.users):
            ref.users.append(self)
            ref.entry_cnt += len(ref.entries)

    def lookup(self, smp: Sample) -> PatElt | None:
        """The entry `smp` matches (None: no match). Casts `smp` to the method's type first."""
        if self._revision != self.ref.revision:
            self._match = self._build()
            self._revision = self.ref.revision
        t = smp.type
        if t is self._want or t in self._direct:
            return self._match(smp)
        c = cast(smp, self._want)
        return None if c is None else self._match(c)

    def check(self, text: str) -> None:
        """Raises PatternError when `text` is not a valid pattern for this expression."""
        parse_pattern(self.method, text, self.icase)

    def _build(self) -> Matcher:
        entries = self.ref.current()
        m, icase = self.method, self.icase
        compiled: list[tuple[object, PatElt]] = []
        for e in entries:
            try:
                compiled.append((parse_pattern(m, e.pattern, icase), e))
            except PatternError:
                continue  # rejected when added; older generations may hold anything
        if m is Method.FOUND:
            first = entries[0] if entries else _ANY
            return lambda smp: first
        if m is Method.BOOL:
            return lambda smp: _ANY if smp.value else None
        if m is Method.STR:
            return _exact(compiled, icase)
        if m is Method.BEG and not icase:
            return _longest_prefix(compiled)
        if m is Method.IP:
            return _ip_matcher(compiled)
        test = _LIST_TESTS[m]
        pats = [(p, e) for p, e in compiled]

        def scan(smp: Sample) -> PatElt | None:
            v = smp.value
            for p, e in pats:
                if test(v, p, icase):
                    return e
            return None

        return scan


_ANY = PatElt("", None, 0)
_LIST_STR = "list_str"
_INDEX: dict[Method, str] = {
    Method.SUB: _LIST_STR,
    Method.DIR: _LIST_STR,
    Method.DOM: _LIST_STR,
    Method.END: _LIST_STR,
    Method.FOUND: "list_val",
    Method.BOOL: "list_val",
    Method.INT: "list_val",
    Method.LEN: "list_val",
}
_PARSER: dict[Method, str] = {
    m: "str" for m in (Method.STR, Method.BEG, Method.SUB, Method.DIR, Method.DOM, Method.END)
} | {Method.FOUND: "none", Method.BOOL: "none", Method.LEN: "int", Method.INT: "int"}


def _exact(compiled: list[tuple[object, PatElt]], icase: bool) -> Matcher:
    table: dict[str, PatElt] = {}
    for p, e in compiled:
        key = str(p).lower() if icase else str(p)
        table.setdefault(key, e)
    if icase:
        return lambda smp: table.get(str(smp.value).lower())
    return lambda smp: table.get(str(smp.value))


def _longest_prefix(compiled: list[tuple[object, PatElt]]) -> Matcher:
    table: dict[str, PatElt] = {}
    for p, e in compiled:
        table.setdefault(str(p), e)
    lengths = sorted({len(k) for k in table}, reverse=True)

    def match(smp: Sample) -> PatElt | None:
        s = str(smp.value)
        for n in lengths:
            if n <= len(s):
                e = table.get(s[:n])
                if e is not None:
                    return e
        return None

    return match


def _ip_matcher(compiled: list[tuple[object, PatElt]]) -> Matcher:
    v4: dict[int, dict[int, PatElt]] = {}
    v6: dict[int, dict[int, PatElt]] = {}
    odd: list[tuple[Net, PatElt]] = []
    for p, e in compiled:
        assert isinstance(p, Net)
        if p.plen is None:
            odd.append((p, e))
        else:
            (v6 if p.v6 else v4).setdefault(p.plen, {}).setdefault(p.addr, e)
    l4 = sorted(v4, reverse=True)
    l6 = sorted(v6, reverse=True)

    def look4(a: int) -> PatElt | None:
        for plen in l4:
            e = v4[plen].get(a & ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF))
            if e is not None:
                return e
        return None

    def look6(a: int) -> PatElt | None:
        full = (1 << 128) - 1
        for plen in l6:
            e = v6[plen].get(a & (full ^ ((1 << (128 - plen)) - 1)))
            if e is not None:
                return e
        return None

    def match(smp: Sample) -> PatElt | None:
        v = smp.value
        a4: int | None = None
        if isinstance(v, IPv4Address):
            a4 = int(v)
            e = look4(a4) or look6((0xFFFF << 32) | a4)
            if e is not None:
                return e
        elif isinstance(v, IPv6Address):
            a6 = int(v)
            e = look6(a6)
            if e is not None:
                return e
            top = a6 >> 64
            mid = (a6 >> 32) & 0xFFFFFFFF
            if top == 0 and mid in (0, 0xFFFF):
                a4 = a6 & 0xFFFFFFFF
            elif a6 >> 112 == 0x2002:
                a4 = (a6 >> 80) & 0xFFFFFFFF
            if a4 is not None:
                e = look4(a4)
                if e is not None:
                    return e
        if a4 is None:
            return None
        for net, e in odd:
            if (a4 ^ net.addr) & net.mask == 0:
                return e
        return None

    return match


def _t_int(v: object, p: object, icase: bool) -> bool:
    assert isinstance(p, IntRange) and isinstance(v, int)
    return v in p


def _t_len(v: object, p: object, icase: bool) -> bool:
    assert isinstance(p, IntRange)
    return len(str(v)) in p


def _t_bin(v: object, p: object, icase: bool) -> bool:
    return v == p


def _lowered(v: object, p: object, icase: bool) -> tuple[str, str]:
    s, t = str(v), str(p)
    return (s.lower(), t.lower()) if icase else (s, t)


def _t_beg(v: object, p: object, icase: bool) -> bool:
    s, t = _lowered(v, p, icase)
    return s.startswith(t)


def _t_end(v: object, p: object, icase: bool) -> bool:
    s, t = _lowered(v, p, icase)
    return s.endswith(t)


def _t_sub(v: object, p: object, icase: bool) -> bool:
    s, t = _lowered(v, p, icase)
    return t in s


def _t_dom(v: object, p: object, icase: bool) -> bool:
    return match_word(str(v), str(p), _DOM_DELIMS, icase)


def _t_dir(v: object, p: object, icase: bool) -> bool:
    return match_word(str(v), str(p), _DIR_DELIMS, icase)


def _t_reg(v: object, p: object, icase: bool) -> bool:
    assert isinstance(p, re.Pattern)
    return p.search(str(v)) is not None


_LIST_TESTS: dict[Method, Callable[[object, object, bool], bool]] = {
    Method.INT: _t_int,
    Method.LEN: _t_len,
    Method.BIN: _t_bin,
    Method.STR: lambda v, p, i: _lowered(v, p, i)[0] == _lowered(v, p, i)[1],
    Method.BEG: _t_beg,
    Method.END: _t_end,
    Method.SUB: _t_sub,
    Method.DOM: _t_dom,
    Method.DIR: _t_dir,
    Method.REG: _t_reg,
    Method.REGM: _t_reg,
}
