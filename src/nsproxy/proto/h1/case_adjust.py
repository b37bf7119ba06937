"""`h1-case-adjust`: header names written with the spelling bogus HTTP/1 peers expect.

HAProxy sends header names in lower case; with `option h1-case-adjust-bogus-client` (to the
client) or `-bogus-server` (to the server), each name listed by a global `h1-case-adjust
<from> <to>` goes out as `<to>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

CaseMap = dict[bytes, bytes]


@lru_cache(maxsize=8)
def case_map(pairs: tuple[tuple[str, str], ...]) -> CaseMap:
    """The lookup table of the global `h1-case-adjust` lines (a later line wins)."""
    return {f.lower().encode("latin-1"): t.encode("latin-1") for f, t in pairs}


def adjust_names(lines: Iterable[bytes], table: CaseMap) -> list[bytes]:
    """Header lines `name: value` with their names respelled by `table`."""
    out = []
    for line in lines:
        name, colon, rest = line.partition(b":")
        spelled = table.get(name.lower()) if colon else None
        out.append(spelled + colon + rest if spelled is not None else line)
    return out


def adjust_head(data: bytes, table: CaseMap) -> bytes:
    """A serialized message (head, then any body bytes) with its header names respelled."""
    if not table:
        return data
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data
    start = data.find(b"\r\n") + 2
    if start >= end + 2:  # no header line
        return data
    lines = data[start:end].split(b"\r\n")
    return data[:start] + b"\r\n".join(adjust_names(lines, table)) + data[end:]
