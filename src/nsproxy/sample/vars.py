"""Variable names (`txn.foo`) checked as HAProxy does, and the set-var/unset-var converters."""

from __future__ import annotations

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
