"""Runtime API arguments parsed as HAProxy's C parsers do: ASCII digits only, its messages.

Python's int() accepts any Unicode digit ('٣', '²' raises), underscores and spaces; HAProxy's
strtol()/atoi() read ASCII digits and stop at the first other character.
"""

from __future__ import annotations

import re

from nsproxy.ops.runtime_api import CliError

_LEADING_INT = re.compile(r"[+-]?[0-9]+")
LONG_MAX = 2**63 - 1


def strtol(text: str) -> tuple[int, str] | None:
    """C's strtol(text, &end, 10): the value and what follows it; None when no digit starts it."""
    m = _LEADING_INT.match(text.lstrip(" \t"))
    if m is None:
        return None
    value = max(-LONG_MAX - 1, min(LONG_MAX, int(m.group())))
    return value, text.lstrip(" \t")[m.end() :]


def atoi(text: str) -> int:
    """C's atoi(): the leading integer, 0 when there is none."""
    got = strtol(text)
    return got[0] if got is not None else 0


def parse_weight(text: str, initial: int) -> int:
    """`set weight` / `set server ... weight`: N (0-256) or N% of the configured weight."""
    if not text:
        raise CliError("Require <weight> or <weight%>.\n")
    got = strtol(text)
    # HAProxy ends these two without the blank line of its other answers
    if got is None:
        raise CliError("Empty weight string empty or preceded by garbage")
    value, rest = got
    if rest == "%":
        if value < 0:
            raise CliError("Relative weight must be positive.\n")
        return min(initial * value // 100, 256)
    if rest:
        raise CliError("Trailing garbage in weight string")
    if not 0 <= value <= 256:
        raise CliError("Absolute weight can only be between 0 and 256 inclusive.\n")
    return value


__all__ = ["atoi", "parse_weight", "strtol"]
