"""The converter registry and the converters (`,lower`, `,ipmask(24)`, `,regsub(...)`, ...).

Another module adds converters with `register_conv(ConvDef(...))` (maps.py adds map*).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from nsproxy.balance import full_hash
from nsproxy.sample.args import NO_ARGS, ArgSpec, ArgType, ArgValue
from nsproxy.sample.context import Txn
from nsproxy.sample.patref import CompileEnv
from nsproxy.sample.types import (
    LLONG_MAX,
    LLONG_MIN,
    Sample,
    SmpType,
    cast,
    clamp64,
    read_int64,
    v6tov4,
)
from nsproxy.sample.vars import get_var, parse_conditions, parse_var_name, set_var, unset_var

ConvFn = Callable[[Sample, Sequence[ArgValue], Txn], Sample | None]
ConvCheck = Callable[[list[ArgValue]], list[ArgValue]]


@dataclass(frozen=True, slots=True)
class ConvDef:
    """One converter: input type it is cast to, output type, arguments, and `fn`."""

    name: str
    fn: ConvFn
    in_type: SmpType
    out: SmpType
    args: ArgSpec = NO_ARGS
    check: ConvCheck | None = None
    prepare: Callable[[list[ArgValue], CompileEnv], list[ArgValue]] | None = None


CONVERTERS: dict[str, ConvDef] = {}


def register_conv(*defs: ConvDef) -> None:
    for d in defs:
        if d.name in CONVERTERS:
            raise RuntimeError(f"converter '{d.name}' registered twice")
        CONVERTERS[d.name] = d


def find_conv(name: str) -> ConvDef | None:
    return CONVERTERS.get(name)


@dataclass(frozen=True, slots=True)
class VarRef:
    """A converter argument naming a variable (instead of a literal)."""

    scope: str
    name: str

    def get(self, txn: Txn, to: SmpType) -> Sample | None:
        smp = get_var(txn.vars, self.scope, self.name)
        return None if smp is None else cast(smp, to)


def _s(smp: Sample) -> str:
    v = smp.value
    assert isinstance(v, str)
    return v


def _b(smp: Sample) -> bytes:
    v = smp.value
    if isinstance(v, str):
        return v.encode("latin-1", "replace")
    assert isinstance(v, bytes)
    return v


def _i(smp: Sample) -> int:
    v = smp.value
    assert isinstance(v, int)
    return int(v)


def _str(smp: Sample, text: str) -> Sample:
    return Sample(SmpType.STR, text, smp.may_change)


def _int(smp: Sample, n: int, t: SmpType = SmpType.SINT) -> Sample:
    return Sample(t, bool(n) if t is SmpType.BOOL else n, smp.may_change)


# ---- strings -------------------------------------------------------------------------------


def _ascii_case(upper: bool) -> ConvFn:
    table = str.maketrans(
        "abcdefghijklmnopqrstuvwxyz" if upper else "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if upper else "abcdefghijklmnopqrstuvwxyz",
    )
    return lambda smp, args, txn: _str(smp, _s(smp).translate(table))


def _field_check(args: list[ArgValue]) -> list[ArgValue]:
    if args[0] == 0:
        raise ValueError("Unexpected value 0 for index")
    if args[1] == "":
        raise ValueError("Empty separators list")
    return args


def _field(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    index, seps = int(args[0]), str(args[1])
    count = int(args[2]) if len(args) > 2 else 1
    text = _s(smp)
    if index > 0:
        parts = re.split("[" + re.escape(seps) + "]", text) if seps else [text]
        if index > len(parts):
            return None
        if count == 0:
            return _str(smp, _join_from(text, seps, index - 1, None))
        return _str(smp, _join_from(text, seps, index - 1, index - 1 + count))
    parts = re.split("[" + re.escape(seps) + "]", text)
    k = len(parts) + index  # index is negative: -1 is the last field
    if k < 0:
        return None
    if count == 0:
        return _str(smp, _join_from(text, seps, 0, k + 1))
    return _str(smp, _join_from(text, seps, max(k - count + 1, 0), k + 1))


def _join_from(text: str, seps: str, first: int, end: int | None) -> str:
    """Fields [first, end) of `text` with their original separators between them."""
    bounds = [-1] + [i for i, c in enumerate(text) if c in seps] + [len(text)]
    nfields = len(bounds) - 1
    last = nfields if end is None else min(end, nfields)
    if first >= last:
        return ""
    return text[bounds[first] + 1 : bounds[last]]


def _word(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    index, seps = int(args[0]), str(args[1])
    count = int(args[2]) if len(args) > 2 else 1
    text = _s(smp)
    spans = [(m.start(), m.end()) for m in re.finditer("[^" + re.escape(seps) + "]+", text)]
    if index > 0:
        k = index - 1
        if k >= len(spans):
            return _str(smp, "")
        if count == 0:
            return _str(smp, text[spans[k][0] :])
        last = min(k + count - 1, len(spans) - 1)
        return _str(smp, text[spans[k][0] : spans[last][1]])
    k = len(spans) + index
    if k < 0:
        return _str(smp, "")
    if count == 0:
        return _str(smp, text[: spans[k][1]])
    first = max(k - count + 1, 0)
    return _str(smp, text[spans[first][0] : spans[k][1]])


def _regsub_check(args: list[ArgValue]) -> list[ArgValue]:
    flags = str(args[2]) if len(args) > 2 else ""
    for ch in flags:
        if ch not in "ig":
            raise ValueError(f"invalid regex flag '{ch}', only 'i' and 'g' are supported")
    try:
        rx = re.compile(str(args[0]), re.IGNORECASE if "i" in flags else 0)
    except re.error as e:
        raise ValueError(f"regex '{args[0]}' is invalid: {e}") from None
    return [rx, str(args[1]), "g" in flags]  # type: ignore[list-item]


_BACKREF = re.compile(r"\\([0-9])")


def expand_backrefs(m: re.Match[str], template: str) -> str:
    def sub(r: re.Match[str]) -> str:
        n = int(r.group(1))
        if n > (m.re.groups or 0):
            return ""
        return m.group(n) or ""

    return _BACKREF.sub(sub, template)


def _regsub(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    rx, template, glob = args[0], str(args[1]), bool(args[2])
    assert isinstance(rx, re.Pattern)
    text = _s(smp)
    out: list[str] = []
    pos = 0
    first = True
    while True:
        # Python's search(text, pos) does not let '^' match at pos: HAProxy's REG_NOTBOL.
        m = rx.search(text, pos) if (glob or first) else None
        if m is None:
            out.append(text[pos:])
            break
        out.append(text[pos : m.start()])
        out.append(expand_backrefs(m, template))
        if pos >= len(text):
            break
        end = m.end()
        if end == pos:
            out.append(text[pos])
            end += 1
        pos = end
        first = False
    return _str(smp, "".join(out))


_JSON_TYPES = ("", "ascii", "utf8", "utf8s", "utf8p", "utf8ps")


def _json_check(args: list[ArgValue]) -> list[ArgValue]:
    if str(args[0]) not in _JSON_TYPES:
        raise ValueError(
            "Unexpected input code type. Allowed value are 'ascii', 'utf8', 'utf8s', 'utf8p' "
            "and 'utf8ps'"
        )
    return [str(args[0]) or "ascii"]


_JSON_ESC = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\r": "\\r",
    "\n": "\\n",
    "\t": "\\t",
}


def _json(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    mode = str(args[0])
    raw = _s(smp)
    if mode == "ascii":
        chars = raw
    else:
        data = raw.encode("latin-1", "replace")
        strict = mode in ("utf8", "utf8p")
        try:
            chars = data.decode("utf-8", "strict" if strict else "ignore")
        except UnicodeDecodeError:
            return None
        if any(ord(c) > 0xFFFF for c in chars):
            if strict:
                return None
            chars = "".join(c for c in chars if ord(c) <= 0xFFFF)
    out = []
    for c in chars:
        o = ord(c)
        if c in _JSON_ESC:
            out.append(_JSON_ESC[c])
        elif o > 0xFF or not 0x20 <= o < 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(c)
    return _str(smp, "".join(out))


def _var_arg_check(index: int, required: bool) -> ConvCheck:
    def check(args: list[ArgValue]) -> list[ArgValue]:
        if index < len(args) and (args[index] != "" or required):
            name = str(args[index])
            try:
                scope, var = parse_var_name(name)
            except ValueError:
                raise ValueError(f"failed to register variable name '{name}'") from None
            args = list(args)
            args[index] = VarRef(scope, var)  # type: ignore[call-overload]
        return args

    return check


def _concat(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    mid = ""
    if len(args) > 1 and isinstance(args[1], VarRef):
        v = args[1].get(txn, SmpType.STR)
        mid = str(v.value) if v is not None else ""
    tail = str(args[2]) if len(args) > 2 else ""
    return _str(smp, _s(smp) + str(args[0]) + mid + tail)


def _strcmp(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    ref = args[0]
    if not isinstance(ref, VarRef):
        return None
    other = ref.get(txn, SmpType.STR)
    if other is None:
        return None
    a, b = _s(smp).encode("latin-1", "replace"), str(other.value).encode("latin-1", "replace")
    n = min(len(a), len(b))
    res = (a[:n] > b[:n]) - (a[:n] < b[:n])
    if res == 0 and len(a) != len(b):
        res = -1 if len(a) < len(b) else 1
    return Sample(SmpType.SINT, res, smp.may_change)


def _trim(left: bool) -> ConvFn:
    def fn(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
        chars = str(args[0])
        text = _s(smp)
        return _str(smp, text.lstrip(chars) if left else text.rstrip(chars)) if chars else smp

    return fn


def _cut_crlf(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    text = _s(smp)
    cut = min((i for i in (text.find("\r"), text.find("\n")) if i >= 0), default=len(text))
    return _str(smp, text[:cut])


# ---- binary --------------------------------------------------------------------------------


def _hex(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    return _str(smp, _b(smp).hex().upper())


def _bytes(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    data = _b(smp)
    off = int(args[0])
    if len(data) <= off:
        return Sample(SmpType.BIN, b"", smp.may_change)
    data = data[off:]
    if len(args) > 1 and int(args[1]) < len(data):
        data = data[: max(int(args[1]), 0)]
    return Sample(SmpType.BIN, data, smp.may_change)


def _base64(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    return _str(smp, base64.b64encode(_b(smp)).decode())


def _b64dec(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    try:
        return Sample(SmpType.BIN, base64.b64decode(_b(smp), validate=True), smp.may_change)
    except ValueError:
        return None


def _hex2i(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    n = 0
    for c in _s(smp):
        if c not in "0123456789abcdefABCDEF":
            return None
        n = clamp64((n << 4) + int(c, 16))
    return Sample(SmpType.SINT, n, smp.may_change)


def _hash(fn: Callable[[bytes], int]) -> ConvFn:
    def conv(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
        h = fn(_b(smp)) & 0xFFFFFFFF
        if args and int(args[0]):
            h = full_hash(h)
        return Sample(SmpType.SINT, h, smp.may_change)

    return conv


def _djb2(data: bytes) -> int:
    h = 5381
    for c in data:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def _sdbm(data: bytes) -> int:
    h = 0
    for c in data:
        h = (c + (h << 6) + (h << 16) - h) & 0xFFFFFFFF
    return h


def _sha1(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    return Sample(SmpType.BIN, hashlib.sha1(_b(smp)).digest(), smp.may_change)


_SHA2 = {224: hashlib.sha224, 256: hashlib.sha256, 384: hashlib.sha384, 512: hashlib.sha512}


def _sha2_check(args: list[ArgValue]) -> list[ArgValue]:
    if args and args[0] not in _SHA2:
        raise ValueError(f"Unsupported number of bits: '{args[0]}'")
    return args


def _sha2(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    bits = args[0] if args else 256
    assert isinstance(bits, int)
    return Sample(SmpType.BIN, _SHA2[bits](_b(smp)).digest(), smp.may_change)


# ---- addresses -----------------------------------------------------------------------------


def _ipmask(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    v = smp.value
    if isinstance(v, IPv6Address):
        v4 = v6tov4(v)
        if v4 is not None:
            v = v4
    if isinstance(v, IPv4Address):
        m4 = args[0]
        assert isinstance(m4, IPv4Address)
        return Sample(SmpType.IPV4, IPv4Address(int(v) & int(m4)), smp.may_change)
    if isinstance(v, IPv6Address):
        if len(args) < 2:
            return None
        m6 = args[1]
        assert isinstance(m6, IPv6Address)
        return Sample(SmpType.IPV6, IPv6Address(int(v) & int(m6)), smp.may_change)
    return None


# ---- arithmetic ----------------------------------------------------------------------------


def _operand_check(args: list[ArgValue]) -> list[ArgValue]:
    text = str(args[0])
    try:
        scope, var = parse_var_name(text)
        return [VarRef(scope, var)]  # type: ignore[list-item]
    except ValueError:
        pass
    value, used = read_int64(text)
    if used != len(text):
        raise ValueError("expects an integer or a variable name")
    return [value]


def _operand(args: Sequence[ArgValue], txn: Txn) -> int | None:
    a = args[0]
    if isinstance(a, VarRef):
        v = a.get(txn, SmpType.SINT)
        return None if v is None else _i(v)
    assert isinstance(a, int)
    return a


def _add(a: int, b: int) -> int:
    """HAProxy's arith_add(), including its C wrap-around in the overflow checks (two
    negative operands saturate to LLONG_MAX there, and so here)."""
    if (a ^ b) >= 0:
        if a < 0 and clamp64(LLONG_MIN - a) > b:
            return LLONG_MIN
        if clamp64(LLONG_MAX - a) < b:
            return LLONG_MAX
    return clamp64(a + b)


def _arith(op: Callable[[int, int], int]) -> ConvFn:
    def fn(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
        b = _operand(args, txn)
        if b is None:
            return None
        return Sample(SmpType.SINT, op(_i(smp), b), smp.may_change)

    return fn


def _sub(a: int, b: int) -> int:
    if b == LLONG_MIN:
        r = _add(a, LLONG_MAX)
        return r + 1 if r < LLONG_MAX else r
    return _add(a, -b)


def _mul(a: int, b: int) -> int:
    return max(LLONG_MIN, min(LLONG_MAX, a * b))


def _div(a: int, b: int) -> int:
    if b == 0 or (a == LLONG_MIN and b == -1):
        return LLONG_MAX
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _mod(a: int, b: int) -> int:
    if b == 0 or (a == LLONG_MIN and b == -1):
        return 0
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _unary(op: Callable[[int], int], out: SmpType = SmpType.SINT) -> ConvFn:
    return lambda smp, args, txn: _int(smp, op(_i(smp)), out)


# ---- variables -----------------------------------------------------------------------------


def _set_var_check(args: list[ArgValue]) -> list[ArgValue]:
    name = str(args[0])
    try:
        scope, var = parse_var_name(name)
    except ValueError:
        raise ValueError(f"failed to register variable name '{name}'") from None
    conds = parse_conditions([str(a) for a in args[1:]])
    return [VarRef(scope, var), conds]  # type: ignore[list-item]


def _set_var(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    ref, conds = args[0], args[1]
    assert isinstance(ref, VarRef) and isinstance(conds, frozenset)
    return smp if set_var(txn.vars, ref.scope, ref.name, smp, conds) else None


def _unset_var(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    ref = args[0]
    assert isinstance(ref, VarRef)
    unset_var(txn.vars, ref.scope, ref.name)
    return smp


def _nbsrv(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    n = txn.nbsrv(_s(smp))
    return None if n is None else Sample(SmpType.SINT, n, smp.may_change)


def _iif(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    return _str(smp, str(args[0] if smp.value else args[1]))


def _be2_check(dec: bool) -> ConvCheck:
    def check(args: list[ArgValue]) -> list[ArgValue]:
        sep = str(args[0])
        size = int(args[1]) if len(args) > 1 else 0
        trunc = int(args[2]) if len(args) > 2 else 0
        if dec and not 0 < size <= 8:
            raise ValueError(f"chunk_size out of [1..8] range ({size})")
        if not dec and size <= 0 and (sep or trunc):
            raise ValueError(f"chunk_size needs to be positive ({size})")
        if trunc not in (0, 1):
            raise ValueError(f"Unsupported truncate value ({trunc})")
        return [sep, size, trunc]

    return check


def _be2(dec: bool) -> ConvFn:
    def fn(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
        data = _b(smp)
        sep, size, trunc = str(args[0]), int(args[1]), int(args[2])
        if not dec and not sep and not trunc:
            size = len(data)
        last = len(data) - size + 1 if trunc else len(data)
        out: list[str] = []
        ptr = 0
        while ptr < last:
            chunk = data[ptr : ptr + max(size, 0)]
            ptr += len(chunk) if chunk else 1
            out.append(str(int.from_bytes(chunk, "big")) if dec else chunk.hex().upper())
        return _str(smp, sep.join(out))

    return fn


def _htonl(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    return Sample(SmpType.BIN, (_i(smp) & 0xFFFFFFFF).to_bytes(4, "big"), smp.may_change)


def _time_fmt(local: bool) -> ConvFn:
    def fn(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
        when = _i(smp) & 0x007FFFFFFFFFFFFF
        if len(args) > 1:
            when += int(args[1])
        try:
            tm = time.localtime(when) if local else time.gmtime(when)
            return _str(smp, time.strftime(str(args[0]), tm))
        except (OverflowError, OSError, ValueError):
            return None

    return fn


def _ub64enc(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    return _str(smp, base64.urlsafe_b64encode(_b(smp)).decode().rstrip("="))


def _ub64dec(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
    raw = _b(smp)
    if any(c in b"+/=" for c in raw):
        return None
    raw = raw.translate(bytes.maketrans(b"-_", b"+/"))
    try:
        data = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except ValueError:
        return None
    return Sample(SmpType.BIN, data, smp.may_change)


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


_S, _I = ArgType.STR, ArgType.SINT
_ONE_STR = ArgSpec((_S,), 1)
_OPT_INT = ArgSpec((_I,), 0)
_STR, _BIN, _INT, _BOOL = SmpType.STR, SmpType.BIN, SmpType.SINT, SmpType.BOOL

register_conv(
    ConvDef("lower", _ascii_case(False), _STR, _STR),
    ConvDef("upper", _ascii_case(True), _STR, _STR),
    ConvDef("length", lambda smp, a, t: _int(smp, len(_s(smp))), _STR, _INT),
    ConvDef("field", _field, _STR, _STR, ArgSpec((_I, _S, _I), 2), _field_check),
    ConvDef("word", _word, _STR, _STR, ArgSpec((_I, _S, _I), 2), _field_check),
    ConvDef("regsub", _regsub, _STR, _STR, ArgSpec((ArgType.REG, _S, _S), 2), _regsub_check),
    ConvDef("json", _json, _STR, _STR, ArgSpec((_S,), 1), _json_check),
    ConvDef("concat", _concat, _STR, _STR, ArgSpec((_S, _S, _S), 1), _var_arg_check(1, False)),
    ConvDef("strcmp", _strcmp, _STR, _INT, _ONE_STR, _var_arg_check(0, True)),
    ConvDef("ltrim", _trim(True), _STR, _STR, _ONE_STR),
    ConvDef("rtrim", _trim(False), _STR, _STR, _ONE_STR),
    ConvDef("cut_crlf", _cut_crlf, _STR, _STR),
    ConvDef("hex", _hex, _BIN, _STR),
    ConvDef("hex2i", _hex2i, _STR, _INT),
    ConvDef("bytes", _bytes, _BIN, _BIN, ArgSpec((_I, _I), 1)),
    ConvDef("base64", _base64, _BIN, _STR),
    ConvDef("b64dec", _b64dec, _STR, _BIN),
    ConvDef("sha1", _sha1, _BIN, _BIN),
    ConvDef("sha2", _sha2, _BIN, _BIN, _OPT_INT, _sha2_check),
    ConvDef("crc32", _hash(zlib.crc32), _BIN, _INT, _OPT_INT),
    ConvDef("djb2", _hash(_djb2), _BIN, _INT, _OPT_INT),
    ConvDef("sdbm", _hash(_sdbm), _BIN, _INT, _OPT_INT),
    ConvDef(
        "ipmask", _ipmask, SmpType.ADDR, SmpType.IPV4, ArgSpec((ArgType.MSK4, ArgType.MSK6), 1)
    ),
    ConvDef("add", _arith(_add), _INT, _INT, _ONE_STR, _operand_check),
    ConvDef("sub", _arith(_sub), _INT, _INT, _ONE_STR, _operand_check),
    ConvDef("mul", _arith(_mul), _INT, _INT, _ONE_STR, _operand_check),
    ConvDef("div", _arith(_div), _INT, _INT, _ONE_STR, _operand_check),
    ConvDef("mod", _arith(_mod), _INT, _INT, _ONE_STR, _operand_check),
    ConvDef("and", _arith(lambda a, b: a & b), _INT, _INT, _ONE_STR, _operand_check),
    ConvDef("or", _arith(lambda a, b: a | b), _INT, _INT, _ONE_STR, _operand_check),
    ConvDef("xor", _arith(lambda a, b: a ^ b), _INT, _INT, _ONE_STR, _operand_check),
    ConvDef("neg", _unary(lambda a: LLONG_MAX if a == LLONG_MIN else -a), _INT, _INT),
    ConvDef("cpl", _unary(lambda a: ~a), _INT, _INT),
    ConvDef("bool", _unary(lambda a: int(a != 0), _BOOL), _INT, _BOOL),
    ConvDef("not", _unary(lambda a: int(a == 0), _BOOL), _INT, _BOOL),
    ConvDef("odd", _unary(lambda a: a & 1, _BOOL), _INT, _BOOL),
    ConvDef("even", _unary(lambda a: int(not a & 1), _BOOL), _INT, _BOOL),
    ConvDef("iif", _iif, _BOOL, _STR, ArgSpec((_S, _S), 2)),
    ConvDef("nbsrv", _nbsrv, _STR, _INT),
    ConvDef("be2dec", _be2(True), _BIN, _STR, ArgSpec((_S, _I, _I), 1), _be2_check(True)),
    ConvDef("be2hex", _be2(False), _BIN, _STR, ArgSpec((_S, _I, _I), 1), _be2_check(False)),
    ConvDef("htonl", _htonl, _INT, _BIN),
    ConvDef("ltime", _time_fmt(True), _INT, _STR, ArgSpec((_S, _I), 1)),
    ConvDef("utime", _time_fmt(False), _INT, _STR, ArgSpec((_S, _I), 1)),
    ConvDef("ub64enc", _ub64enc, _BIN, _STR),
    ConvDef("ub64dec", _ub64dec, _STR, _BIN),
    ConvDef("crc32c", _hash(_crc32c), _BIN, _INT, _OPT_INT),
    ConvDef(
        "set-var",
        _set_var,
        SmpType.ANY,
        SmpType.ANY,
        ArgSpec((_S, _S, _S, _S, _S), 1),
        _set_var_check,
    ),
    ConvDef("unset-var", _unset_var, SmpType.ANY, SmpType.ANY, _ONE_STR, _set_var_check),
)
