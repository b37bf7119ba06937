"""Sample expressions (`fetch(args),conv(args),...`) parsed as HAProxy does, then compiled."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nsproxy.sample.args import ArgError, ArgType, ArgValue, parse_args
from nsproxy.sample.context import Txn
from nsproxy.sample.conv import ConvDef, find_conv
from nsproxy.sample.fetch import FetchDef, find_fetch
from nsproxy.sample.patref import CompileEnv
from nsproxy.sample.places import Hook, use_names
from nsproxy.sample.types import (
    MISSING,
    FetchResult,
    Missing,
    Sample,
    SampleError,
    SmpType,
    can_cast,
    cast,
)

Getter = Callable[[Txn], FetchResult]


def is_idchar(c: str) -> bool:
    return (c.isascii() and c.isalnum()) or c in "._-+:"


def id_end(text: str, i: int) -> int:
    while i < len(text) and is_idchar(text[i]):
        i += 1
    return i


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed expression: its fetch, converters, and the compiled getter."""

    text: str
    fetch: FetchDef
    fetch_args: tuple[ArgValue, ...]
    convs: tuple[tuple[ConvDef, tuple[ArgValue, ...]], ...]
    get: Getter

    @property
    def out_type(self) -> SmpType:
        return self.convs[-1][0].out if self.convs else self.fetch.out

    @property
    def kw(self) -> str:
        return self.fetch.name


def _fetch_getter(fetch: FetchDef, args: tuple[ArgValue, ...]) -> Getter:
    fn = fetch.fn
    return lambda txn: fn(txn, args)


def apply_convs(
    convs: Sequence[tuple[ConvDef, tuple[ArgValue, ...]]], smp: Sample, txn: Txn
) -> FetchResult:
    """`smp` through the converters (each input cast to its type first). A failure is None,
    or MISSING when the fetched value may still change (HAProxy's MAY_CHANGE survives)."""
    changing = smp.may_change
    for conv, args in convs:
        in_type = conv.in_type
        if smp.type is not in_type and in_type is not SmpType.ANY:
            cur = cast(smp, in_type)
            if cur is None:
                return MISSING if changing else None
            smp = cur
        out = conv.fn(smp, args, txn)
        if out is None:
            return MISSING if changing else None
        smp = out
    return smp


def _chain(first: Getter, convs: Sequence[tuple[ConvDef, tuple[ArgValue, ...]]]) -> Getter:
    if not convs:
        return first
    steps = tuple(convs)

    def run(txn: Txn) -> FetchResult:
        smp = first(txn)
        if not isinstance(smp, Sample):
            return smp
        return apply_convs(steps, smp, txn)

    return run


def parse_expr(
    text: str, env: CompileEnv | None = None, *, until_end: bool = True, acl_kw: str | None = None
) -> tuple[Expr, int]:
    """Parses a sample expression at the start of `text`.

    With `until_end` the whole text must be the expression (HAProxy's messages for what
    follows); otherwise parsing stops at the first character that cannot continue it
    (for `%[...]`) and its index is returned. `acl_kw` names the ACL keyword being parsed
    for HAProxy's ACL-style messages. Raises SampleError.
    """
    env = env or CompileEnv()
    end = id_end(text, 0)
    if end == 0:
        raise SampleError("missing fetch method")
    fkw = text[:end]
    fetch = find_fetch(fkw)
    if fetch is None:
        raise SampleError(f"unknown fetch method '{fkw}'")
    try:
        fargs, used, _ = parse_args(text[end:], fetch.args)
    except ArgError as e:
        if acl_kw:
            raise SampleError(f"ACL keyword '{acl_kw}' : {e}") from None
        raise SampleError(f"fetch method '{fkw}' : {e}") from None
    for pos, kind in enumerate(fetch.args.types):
        if kind is ArgType.BE and pos < len(fargs) and fargs[pos] == "" and env.proxy:
            fargs[pos] = env.proxy  # HAProxy resolves an empty backend to the current proxy
    if fetch.check is not None and fargs:
        try:
            fargs = fetch.check(fargs)
        except ValueError as e:
            if acl_kw:
                raise SampleError(f"in argument to '{acl_kw}', {e}") from None
            raise SampleError(f"invalid args in fetch method '{fkw}' : {e}") from None
    if fetch.prepare is not None:
        fargs = fetch.prepare(fargs, env)
    i = end + used
    prev = fetch.out
    convs: list[tuple[ConvDef, tuple[ArgValue, ...]]] = []
    ckw: str | None = None
    while True:
        if i < len(text) and text[i] != ",":
            if not until_end:
                break
            if acl_kw:
                if ckw:
                    raise SampleError(
                        f"ACL keyword '{acl_kw}' : missing comma after converter '{ckw}'."
                    )
                raise SampleError(f"ACL keyword '{acl_kw}' : missing comma after fetch keyword.")
            if ckw:
                raise SampleError(f"missing comma after converter '{ckw}'")
            raise SampleError(f"missing comma after fetch keyword '{fkw}'")
        while i < len(text) and text[i] == ",":
            i += 1
        if i >= len(text):
            break
        cend = id_end(text, i)
        ckw = text[i:cend]
        conv = find_conv(ckw)
        if conv is None:
            if acl_kw:
                raise SampleError(f"ACL keyword '{acl_kw}' : unknown converter '{ckw}'.")
            raise SampleError(f"unknown converter '{ckw}'")
        if not can_cast(prev, conv.in_type):
            if acl_kw:
                raise SampleError(f"ACL keyword '{acl_kw}' : converter '{ckw}' cannot be applied.")
            raise SampleError(f"converter '{ckw}' cannot be applied")
        prev = conv.out
        try:
            cargs, used, count = parse_args(text[cend:], conv.args)
        except ArgError as e:
            if acl_kw:
                raise SampleError(
                    f"ACL keyword '{acl_kw}' : invalid arg {e.pos + 1} in converter '{ckw}' : {e}."
                ) from None
            raise SampleError(f"invalid arg {e.pos + 1} in converter '{ckw}' : {e}") from None
        if count and not conv.args.types:
            raise SampleError(f"converter '{ckw}' does not support any args")
        try:
            if conv.check is not None:
                cargs = conv.check(cargs)
            if conv.prepare is not None:
                cargs = conv.prepare(cargs, env)
        except ValueError as e:
            if acl_kw:
                raise SampleError(
                    f"ACL keyword '{acl_kw}' : invalid args in converter '{ckw}' : {e}."
                ) from None
            raise SampleError(f"invalid args in converter '{ckw}' : {e}") from None
        convs.append((conv, tuple(cargs)))
        i = cend + used
    targs = tuple(fargs)
    get = _chain(_fetch_getter(fetch, targs), convs)
    return Expr(text[:i], fetch, targs, tuple(convs), get), i


def unavailable(expr: Expr, where: Hook) -> str | None:
    """HAProxy's message when `expr`'s fetch cannot work at `where`, else None."""
    if expr.fetch.val & where:
        return None
    return (
        f"fetch method '{expr.fetch.name}' extracts information from "
        f"'{use_names(expr.fetch.use)}', none of which is available here"
    )


def compile_expr(
    text: str, where: Hook, env: CompileEnv | None = None
) -> Callable[[Txn], Sample | None]:
    """`text` compiled to a callable returning the sample or None.

    Raises SampleError with HAProxy's message (the caller prefixes `'<action>' : `) when the
    text does not parse or when its fetch reads data not available at `where`.
    """
    expr, _ = parse_expr(text, env)
    msg = unavailable(expr, where)
    if msg is not None:
        raise SampleError(msg)
    get = expr.get

    def run(txn: Txn) -> Sample | None:
        r = get(txn)
        return None if isinstance(r, Missing) else r

    return run
