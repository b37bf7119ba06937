"""`replace-uri`, `replace-path` and `replace-pathq` on a request target, as HAProxy 2.6 does.

The regex is searched in the URI (or its path, or path and query); when it matches, that
whole part becomes the replacement format with its `\\N` references expanded.
"""

from __future__ import annotations

import re

from nsproxy.proto.h1.rewrite import expand

ACTIONS = frozenset({"replace-uri", "replace-path", "replace-pathq"})


def _path_span(target: bytes) -> tuple[int, int] | None:
    """Where the path starts and where it ends before the query, in a request target; None
    when the target has no path (`*`, or an absolute URI without `/` after the authority)."""
    start = 0
    low = target[:8].lower()
    if low.startswith(b"http://") or low.startswith(b"https://"):
        start = target.index(b"//") + 2
        while start < len(target) and target[start] not in b"/?":
            start += 1
    if target[start : start + 1] != b"/":
        return None
    end = target.find(b"?", start)
    return start, len(target) if end < 0 else end


def replace_target(action: str, target: bytes, regex: re.Pattern[bytes], fmt: bytes) -> bytes:
    """The new request target (the same bytes when the regex does not match)."""
    if action == "replace-uri":
        start, end = 0, len(target)
    else:
        span = _path_span(target)
        if span is None:
            return target
        start, end = span
        if action == "replace-pathq":
            end = len(target)
    m = regex.search(target[start:end])  # `^` anchors at the part's start
    if m is None:
        return target
    return target[:start] + expand(m, fmt) + target[end:]
