"""The fetch registry, and the fetches that read layer-4 facts, names, variables and constants.

Another module adds fetches with `register_fetch(FetchDef(...))` (payload.py does; the HTTP
fetches will). Each fetch is declared once: name, arguments, output type, and the data it
reads (`Use`), from which the places it can run are derived as HAProxy does.
"""

from __future__ import annotations

import functools
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address

from nsproxy.sample.args import NO_ARGS, ArgSpec, ArgType, ArgValue
from nsproxy.sample.context import Addr, Txn
from nsproxy.sample.patref import CompileEnv
from nsproxy.sample.places import Hook, Use, valid_hooks
from nsproxy.sample.types import FetchResult, Sample, SmpType
from nsproxy.sample.vars import get_var, parse_var_name

FetchFn = Callable[[Txn, Sequence[ArgValue]], FetchResult]
ArgCheck = Callable[[list[ArgValue]], list[ArgValue]]


@dataclass(frozen=True, slots=True)
class FetchDef:
    """One sample fetch keyword.

    `fn(txn, args)` returns a Sample, None (nothing, final) or MISSING (nothing yet).
    `iterate`, when set, returns every occurrence for ACL matching (HAProxy SMP_OPT_ITERATE).
    `check` validates/normalises arguments at configuration time, raising ValueError(msg).
    """

    name: str
    fn: FetchFn
    out: SmpType
    use: Use
    args: ArgSpec = NO_ARGS
    check: ArgCheck | None = None
    iterate: Callable[[Txn, Sequence[ArgValue]], list[Sample] | None] | None = None
    # binds configuration objects to the arguments at compile time (as converters' prepare)
    prepare: Callable[[list[ArgValue], CompileEnv], list[ArgValue]] | None = None
    val: Hook = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "val", valid_hooks(self.use))


FETCHES: dict[str, FetchDef] = {}


def register_fetch(*defs: FetchDef) -> None:
    """Adds fetch keywords; a name registered twice is a programming error."""
    for d in defs:
        if d.name in FETCHES:
            raise RuntimeError(f"fetch '{d.name}' registered twice")
        FETCHES[d.name] = d


def find_fetch(name: str) -> FetchDef | None:
    return FETCHES.get(name)


@functools.lru_cache(maxsize=8192)
def ip_sample(host: str) -> Sample:
    """The sample of an address text (parsed once per distinct address)."""
    a = ip_address(host.split("%", 1)[0])
    return Sample(SmpType.IPV4 if isinstance(a, IPv4Address) else SmpType.IPV6, a)


def addr_sample(addr: Addr) -> Sample | None:
    """An address as an IPV4/IPV6 sample (None for UNIX sockets or unknown)."""
    if not isinstance(addr, tuple):
        return None
    return ip_sample(addr[0])


def port_sample(addr: Addr) -> Sample | None:
    if not isinstance(addr, tuple):
        return None
    return Sample(SmpType.SINT, int(addr[1]))


def _str_or_none(v: str | None) -> Sample | None:
    return None if v is None else Sample(SmpType.STR, v)


def _nbsrv(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    name = str(args[0]) if args and args[0] != "" else txn.backend_name
    if name is None:
        return None
    n = txn.nbsrv(name)
    return None if n is None else Sample(SmpType.SINT, n)


def _var(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    scope, name = parse_var_name(str(args[0]))
    smp = get_var(txn.vars, scope, name)
    if smp is None and len(args) > 1:
        return Sample(SmpType.STR, str(args[1]))
    return smp


def _check_var(args: list[ArgValue]) -> list[ArgValue]:
    parse_var_name(str(args[0]))
    return args


def _env(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    v = os.environ.get(str(args[0]))
    return None if v is None else Sample(SmpType.STR, v)


def _const_bool(args: list[ArgValue]) -> list[ArgValue]:
    text = str(args[0])
    if text not in ("true", "false", "0", "1"):
        raise ValueError("Expects 'true', 'false', '0' or '1'")
    return [text in ("true", "1")]


def _const_bin(args: list[ArgValue]) -> list[ArgValue]:
    text = str(args[0])
    if len(text) % 2:
        raise ValueError("an even number of hex digit is expected")
    bad = next((c for c in text if c not in "0123456789abcdefABCDEF"), None)
    if bad is not None:
        raise ValueError(f"an hex digit is expected (found '{bad}')")
    return [bytes.fromhex(text)]  # type: ignore[list-item]


_HTTP_METHODS = ("OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT")


def _const_meth(args: list[ArgValue]) -> list[ArgValue]:
    text = str(args[0])
    if text.upper() in _HTTP_METHODS:
        return [text.upper()]
    if not text or any(not (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in text):
        raise ValueError("expects valid method.")
    return [text]


def _fixed(smp_type: SmpType) -> FetchFn:
    def fetch(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
        v = args[0]
        return Sample(smp_type, v)

    return fetch


def _const(value: bool) -> FetchFn:
    smp = Sample(SmpType.BOOL, value)
    return lambda txn, args: smp


_UNITS = {"s": 0, "ms": 1, "us": 2}


def _date_check(args: list[ArgValue]) -> list[ArgValue]:
    if len(args) > 1:
        unit = str(args[1])
        if unit not in _UNITS:
            raise ValueError(f"expects 's', 'ms' or 'us', got '{unit}'")
        return [args[0], _UNITS[unit]]
    return args


def _date(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    now = time.time()
    unit = int(args[1]) if len(args) > 1 else 0
    value = int(now) if unit == 0 else int(now * 1000) if unit == 1 else int(now * 1000000)
    if args:
        value += int(args[0])
    return Sample(SmpType.SINT, value, not txn.req_final)


def _rand(txn: Txn, args: Sequence[ArgValue]) -> FetchResult:
    r = random.getrandbits(32)
    if args:
        r = (r * (int(args[0]) & 0xFFFFFFFFFFFFFFFF)) >> 32
    return Sample(SmpType.SINT, r, not txn.req_final)


def _uuid_check(args: list[ArgValue]) -> list[ArgValue]:
    if args and int(args[0]) != 4:
        raise ValueError(f"Unsupported UUID version: '{args[0]}'")
    return args


_S = ArgType.STR
_BE = ArgSpec((ArgType.BE,), 1)

register_fetch(
    FetchDef("src", lambda t, a: addr_sample(t.src), SmpType.IPV4, Use.L4CLI),
    FetchDef("src_port", lambda t, a: port_sample(t.src), SmpType.SINT, Use.L4CLI),
    FetchDef("dst", lambda t, a: addr_sample(t.dst), SmpType.IPV4, Use.L4CLI),
    FetchDef("dst_port", lambda t, a: port_sample(t.dst), SmpType.SINT, Use.L4CLI),
    FetchDef("fc_src", lambda t, a: addr_sample(t.src), SmpType.IPV4, Use.L4CLI),
    FetchDef("fc_src_port", lambda t, a: port_sample(t.src), SmpType.SINT, Use.L4CLI),
    FetchDef("fc_dst", lambda t, a: addr_sample(t.dst), SmpType.IPV4, Use.L4CLI),
    FetchDef("fc_dst_port", lambda t, a: port_sample(t.dst), SmpType.SINT, Use.L4CLI),
    FetchDef("bc_src", lambda t, a: addr_sample(t.backend_local), SmpType.IPV4, Use.L4SRV),
    FetchDef("bc_src_port", lambda t, a: port_sample(t.backend_local), SmpType.SINT, Use.L4SRV),
    FetchDef("bc_dst", lambda t, a: addr_sample(t.server_addr), SmpType.IPV4, Use.L4SRV),
    FetchDef("bc_dst_port", lambda t, a: port_sample(t.server_addr), SmpType.SINT, Use.L4SRV),
    FetchDef("so_id", lambda t, a: Sample(SmpType.SINT, t.so_id), SmpType.SINT, Use.FTEND),
    FetchDef("so_name", lambda t, a: _str_or_none(t.so_name), SmpType.STR, Use.FTEND),
    FetchDef("fe_name", lambda t, a: Sample(SmpType.STR, t.frontend_name), SmpType.STR, Use.FTEND),
    FetchDef("fe_id", lambda t, a: Sample(SmpType.SINT, t.frontend_id), SmpType.SINT, Use.FTEND),
    FetchDef("be_name", lambda t, a: _str_or_none(t.backend_name), SmpType.STR, Use.BKEND),
    FetchDef(
        "be_id",
        lambda t, a: None if t.backend_name is None else Sample(SmpType.SINT, t.backend_id),
        SmpType.SINT,
        Use.BKEND,
    ),
    FetchDef("srv_name", lambda t, a: _str_or_none(t.server_name), SmpType.STR, Use.SERVR),
    FetchDef(
        "srv_id",
        lambda t, a: None if t.server_name is None else Sample(SmpType.SINT, t.server_id),
        SmpType.SINT,
        Use.SERVR,
    ),
    # nsproxy's own: the namespace of the client / server connection (HAProxy has none).
    FetchDef("fc_netns", lambda t, a: _str_or_none(t.fc_netns), SmpType.STR, Use.L4CLI),
    FetchDef("bc_netns", lambda t, a: _str_or_none(t.bc_netns), SmpType.STR, Use.L4SRV),
    FetchDef("nbsrv", _nbsrv, SmpType.SINT, Use.INTRN, _BE),
    FetchDef("var", _var, SmpType.ANY, Use.CONST, ArgSpec((_S, _S), 1), _check_var),
    FetchDef("env", _env, SmpType.STR, Use.CONST, ArgSpec((_S,), 1)),
    FetchDef("always_true", _const(True), SmpType.BOOL, Use.CONST),
    FetchDef("always_false", _const(False), SmpType.BOOL, Use.CONST),
    FetchDef("str", _fixed(SmpType.STR), SmpType.STR, Use.CONST, ArgSpec((_S,), 1)),
    FetchDef("int", _fixed(SmpType.SINT), SmpType.SINT, Use.CONST, ArgSpec((ArgType.SINT,), 1)),
    FetchDef("bool", _fixed(SmpType.BOOL), SmpType.BOOL, Use.CONST, ArgSpec((_S,), 1), _const_bool),
    FetchDef("ipv4", _fixed(SmpType.IPV4), SmpType.IPV4, Use.CONST, ArgSpec((ArgType.IPV4,), 1)),
    FetchDef("ipv6", _fixed(SmpType.IPV6), SmpType.IPV6, Use.CONST, ArgSpec((ArgType.IPV6,), 1)),
    FetchDef("bin", _fixed(SmpType.BIN), SmpType.BIN, Use.CONST, ArgSpec((_S,), 1), _const_bin),
    FetchDef("meth", _fixed(SmpType.METH), SmpType.METH, Use.CONST, ArgSpec((_S,), 1), _const_meth),
    FetchDef("date", _date, SmpType.SINT, Use.CONST, ArgSpec((ArgType.SINT, _S), 0), _date_check),
    FetchDef("rand", _rand, SmpType.SINT, Use.CONST, ArgSpec((ArgType.SINT,), 0)),
    FetchDef(
        "uuid",
        lambda t, a: Sample(SmpType.STR, str(uuid.uuid4())),
        SmpType.STR,
        Use.CONST,
        ArgSpec((ArgType.SINT,), 0),
        _uuid_check,
    ),
    FetchDef("nbproc", lambda t, a: Sample(SmpType.SINT, 1), SmpType.SINT, Use.CONST),
    FetchDef("proc", lambda t, a: Sample(SmpType.SINT, 1), SmpType.SINT, Use.CONST),
    FetchDef("thread", lambda t, a: Sample(SmpType.SINT, 0), SmpType.SINT, Use.CONST),
    FetchDef(
        "hostname", lambda t, a: Sample(SmpType.STR, socket.gethostname()), SmpType.STR, Use.CONST
    ),
)
