"""`show stat` / `show info` arguments and output formats: CSV or `Key: value`, `typed`,
`json`, `desc`, and the `<iid> <type> <sid>`, `up`, `no-maint` filters, as HAProxy 2.6.

Pure functions over the rows and fields the runtime collects (ops.stats)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from nsproxy.ops.cli_args import atoi
from nsproxy.ops.stat_fields import (
    INFO_FIELDS,
    NATURES,
    ORIGINS,
    SCOPES,
    STAT_FIELDS,
    STAT_OVERRIDES,
)

Row = dict[str, object]
OBJ_LETTERS = {0: "F", 1: "B", 2: "S", 3: "L"}
OBJ_NAMES = {"F": "Frontend", "B": "Backend", "S": "Server", "L": "Listener"}
TYPE_BITS = {0: 1, 1: 2, 2: 4, 3: 8}  # row type -> HAProxy's <type> filter bit
_INT_TYPES = ("u32", "u64", "s32", "s64")


@dataclass(frozen=True, slots=True)
class StatOptions:
    """What `show stat|info [...]` asked for."""

    fmt: str = "text"  # text (CSV / Key: value), typed or json
    desc: bool = False
    up: bool = False
    no_maint: bool = False
    iid: int = -1
    proxy: str | None = None
    types: int = -1
    sid: int = -1


def parse_options(words: Sequence[str], filters: bool) -> StatOptions:
    """The options after `show stat` / `show info` (unknown words are ignored, as HAProxy).

    With `filters` (show stat) three leading words are `{<iid>|<proxy>} <type> <sid>`.
    """
    words = list(words)
    iid, proxy, types, sid = -1, None, -1, -1
    if filters and len(words) >= 3 and words[0] not in ("typed", "json", "desc", "up"):
        first, types, sid = words[0], atoi(words[1]), atoi(words[2])
        if first.lstrip("-").isascii() and first.lstrip("-").isdigit():
            iid = atoi(first)
        else:
            proxy = first
        words = words[3:]
    fmt = "json" if "json" in words else "typed" if "typed" in words else "text"
    return StatOptions(
        fmt, "desc" in words, "up" in words, "no-maint" in words, iid, proxy, types, sid
    )


def _visible(row: Row, o: StatOptions) -> bool:
    if o.proxy is not None and row.get("pxname") != o.proxy:
        return False
    if o.iid != -1 and row.get("iid") != o.iid:
        return False
    kind = int(str(row.get("type", 0)))
    if o.types != -1 and not o.types & TYPE_BITS.get(kind, 0):
        return False
    if kind == 2:
        if o.sid != -1 and row.get("sid") != o.sid:
            return False
        status = str(row.get("status", ""))
        if o.no_maint and status.startswith("MAINT"):
            return False
        if o.up and not (status.startswith("UP") or status in ("no check", "DRAIN")):
            return False
    return True


def select_rows(rows: list[Row], o: StatOptions) -> list[Row]:
    """The rows the filters keep; with `up`/`no-maint` a backend's status counts its
    servers as HAProxy's does: `UP (usable/total)`."""
    out = []
    servers: dict[str, list[Row]] = {}
    for row in rows:
        if row.get("type") == 2:
            servers.setdefault(str(row.get("pxname")), []).append(row)
    for row in rows:
        if not _visible(row, o):
            continue
        if (o.up or o.no_maint) and row.get("type") == 1:
            mine = servers.get(str(row.get("pxname")), [])
            usable = sum(1 for s in mine if _server_up(str(s.get("status", ""))))
            row = {**row, "status": f"{row.get('status')} ({usable}/{len(mine)})"}
        out.append(row)
    return out


def _server_up(status: str) -> bool:
    return status.startswith("UP") or status in ("no check", "DRAIN")


def _stat_positions(columns: Sequence[str]) -> dict[str, int]:
    """A column's position in typed/json output: the CSV index, '-' not counted."""
    out: dict[str, int] = {}
    pos = 0
    for c in columns:
        if c == "-":
            continue
        out[c] = pos
        pos += 1
    return out


def _meta(letter: str, column: str) -> tuple[str, str, str]:
    tags, kind, desc = STAT_FIELDS.get(column, ("MGP", "u32", ""))
    tags, kind = STAT_OVERRIDES.get((letter, column), (tags, kind))
    return tags, kind, desc


def _typed_value(kind: str, value: object) -> tuple[str, object]:
    """The type and JSON value of a field: numbers stay numbers, anything else is a str."""
    text = str(value)
    if kind in _INT_TYPES and text.lstrip("-").isascii() and text.lstrip("-").isdigit():
        return kind, int(text)
    return "str", text


def _tags_json(tags: str) -> dict[str, str]:
    return {"origin": ORIGINS[tags[0]], "nature": NATURES[tags[1]], "scope": SCOPES[tags[2]]}


def stat_text(rows: list[Row], columns: Sequence[str]) -> str:
    lines = ["# " + ",".join(columns) + ","]
    for row in rows:
        lines.append(",".join(str(row.get(c, "")) for c in columns) + ",")
    return "\n".join(lines) + "\n"


def stat_typed(rows: list[Row], columns: Sequence[str], desc: bool) -> str:
    positions = _stat_positions(columns)
    out = []
    for row in rows:
        letter = OBJ_LETTERS.get(int(str(row.get("type", 0))), "F")
        head = f"{letter}.{row.get('iid', 0)}.{row.get('sid', 0)}."
        for c in columns:
            value = row.get(c, "")
            if c == "-" or value == "" or value is None:
                continue
            tags, kind, text = _meta(letter, c)
            kind, _ = _typed_value(kind, value)
            line = f"{head}{positions[c]}.{c}.1:{tags}:{kind}:{value}"
            out.append(line + (f':"{text}"' if desc else "") + "\n")
    return "".join(out)


def stat_json(rows: list[Row], columns: Sequence[str]) -> str:
    positions = _stat_positions(columns)
    doc = []
    for row in rows:
        letter = OBJ_LETTERS.get(int(str(row.get("type", 0))), "F")
        fields = []
        for c in columns:
            value = row.get(c, "")
            if c == "-" or value == "" or value is None:
                continue
            tags, kind, _ = _meta(letter, c)
            kind, v = _typed_value(kind, value)
            fields.append(
                {
                    "objType": OBJ_NAMES[letter],
                    "proxyId": row.get("iid", 0),
                    "id": row.get("sid", 0),
                    "field": {"pos": positions[c], "name": c},
                    "processNum": 1,
                    "tags": _tags_json(tags),
                    "value": {"type": kind, "value": v},
                }
            )
        doc.append(fields)
    return json.dumps(doc, separators=(",", ":")) + "\n"


def info_text(fields: list[tuple[str, object]], desc: bool) -> str:
    out = []
    for name, value in fields:
        text = INFO_FIELDS.get(name, (0, "", "", ""))[3]
        out.append(f"{name}: {value}" + (f':"{text}"' if desc else "") + "\n")
    return "".join(out)


def _info_meta(fields: list[tuple[str, object]]) -> list[tuple[int, str, str, str, object]]:
    """(position, name, tags, type, value) of each field; nsproxy's own follow HAProxy's."""
    last = max(pos for pos, *_ in INFO_FIELDS.values())
    out = []
    for name, value in fields:
        meta = INFO_FIELDS.get(name)
        if meta is None:
            last += 1
            meta = (last, "MGP", "u32", "")
        out.append((meta[0], name, meta[1], meta[2], value))
    return out


def info_typed(fields: list[tuple[str, object]], desc: bool) -> str:
    out = []
    for pos, name, tags, kind, value in _info_meta(fields):
        kind, _ = _typed_value(kind, value)
        text = INFO_FIELDS.get(name, (0, "", "", ""))[3]
        line = f"{pos}.{name}.1:{tags}:{kind}:{value}"
        out.append(line + (f':"{text}"' if desc else "") + "\n")
    return "".join(out)


def info_json(fields: list[tuple[str, object]]) -> str:
    doc = []
    for pos, name, tags, kind, value in _info_meta(fields):
        kind, v = _typed_value(kind, value)
        doc.append(
            {
                "field": {"pos": pos, "name": name},
                "processNum": 1,
                "tags": _tags_json(tags),
                "value": {"type": kind, "value": v},
            }
        )
    return json.dumps(doc, separators=(",", ":")) + "\n"


__all__ = [
    "StatOptions",
    "info_json",
    "info_text",
    "info_typed",
    "parse_options",
    "select_rows",
    "stat_json",
    "stat_text",
    "stat_typed",
]
