"""Variable names (`txn.foo`) checked as HAProxy does, and the set-var/unset-var converters."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

from nsproxy.sample.types import Sample, SmpType

_SCOPES = ("proc", "sess", "txn", "req", "res", "check")


def parse_var_name(text: str) -> tuple[str, str]:
    """`scope.name` split into (scope, name); raises ValueError with HAProxy's message."""
    if not text:
        raise ValueError("Empty variable name cannot be accepted")
    for scope in _SCOPES:
        if len(text) > len(scope) + 1 and text.startswith(scope + "."):
            name = text[len(scope) + 1 :]
            break
    else:
        raise ValueError(
            f"invalid variable name '{text}'. A variable name must be start by its scope. "
            "The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'"
        )
    for i, c in enumerate(name):
        if not (c.isascii() and c.isalnum()) and c not in "_.":
            raise ValueError(f"invalid syntax at char '{name[i:]}'")
    return scope, name


CONDITIONS = (
    "ifexists",
    "ifnotexists",
    "ifempty",
    "ifnotempty",
    "ifset",
    "ifnotset",
    "ifgt",
    "iflt",
)

# A variable that exists but holds nothing (created by a failed conditional set, or unset).
UNSET = Sample(SmpType.ANY, False)

Store = MutableMapping[str, MutableMapping[str, Sample]]


def parse_conditions(words: Sequence[str]) -> frozenset[str]:
    """set-var conditions (`ifnotexists`, `ifgt`, ...); raises ValueError as HAProxy words it."""
    for w in words:
        if w not in CONDITIONS:
            raise ValueError(f'unknown condition "{w}"')
    return frozenset(words)


def get_var(store: Store, scope: str, name: str) -> Sample | None:
    smp = store.get(scope, {}).get(name)
    return None if smp is None or smp.type is SmpType.ANY else smp


def set_var(
    store: Store, scope: str, name: str, smp: Sample, conds: frozenset[str] = frozenset()
) -> bool:
    """HAProxy's var_set(): stores `smp` unless a condition says no; True when stored."""
    table = store.setdefault(scope, {})
    cur = table.get(name)
    if cur is not None:
        if "ifnotexists" in conds:
            return False
    else:
        if "ifexists" in conds:
            return False
        cur = table[name] = UNSET
    if ("ifset" in conds and cur.type is SmpType.ANY) or (
        "ifnotset" in conds and cur.type is not SmpType.ANY
    ):
        return False
    t = smp.type
    if "ifempty" in conds and t not in (SmpType.ANY, SmpType.STR, SmpType.BIN):
        return False
    if t is SmpType.SINT and cur.type is SmpType.SINT:
        new, old = smp.value, cur.value
        assert isinstance(new, int) and isinstance(old, int)
        if ("ifgt" in conds and not old > new) or ("iflt" in conds and not old < new):
            return False
    if t in (SmpType.STR, SmpType.BIN) and (
        ("ifnotempty" in conds and not smp.value) or ("ifempty" in conds and smp.value)
    ):
        return False
    table[name] = Sample(t, smp.value)
    return True


def unset_var(store: Store, scope: str, name: str) -> None:
    """HAProxy's var_unset(): the variable stays, holding nothing."""
    table = store.get(scope)
    if table is not None and name in table:
        table[name] = UNSET
