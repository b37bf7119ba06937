"""Merging the workers' runtime API answers into one process's: counters summed."""

from __future__ import annotations

# `show info` fields that are per-process counters: the aggregate is their sum.
SUM_INFO = frozenset(
    [
        "Maxconn",
        "Hard_maxconn",
        "CurrConns",
        "CumConns",
        "CumReq",
        "Tasks",
        "Jobs",
        "PipesUsed",
        "PipesFree",
        "TotalBytesOut",
        "TotalSplicdedBytesOut",
        "DroppedLogs",
        "CompressBpsIn",
        "CompressBpsOut",
    ]
)
# `show stat` columns that are counters or limits of one worker: summed.
SUM_STAT = frozenset(
    [
        "qcur",
        "qmax",
        "scur",
        "smax",
        "slim",
        "stot",
        "bin",
        "bout",
        "dreq",
        "dresp",
        "ereq",
        "econ",
        "eresp",
        "wretr",
        "wredis",
        "chkfail",
        "chkdown",
        "lbtot",
        "cli_abrt",
        "srv_abrt",
        "conn_tot",
        "dcon",
        "dses",
        "intercepted",
        "connect",
        "reuse",
        "req_tot",
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
        "comp_in",
        "comp_out",
        "comp_byp",
        "comp_rsp",
    ]
)
SAME_NETNS = frozenset(("name", "inode", "listeners", "servers", "state"))  # others: summed


def num(v: str) -> int | None:
    return int(v) if v.isascii() and v.lstrip("-").isdigit() else None


def merge_info(answers: list[str], pid: int, count: int) -> str:
    """`show info` of the whole: counters summed, the rest from worker 1."""
    fields: list[tuple[str, str]] = []
    sums: dict[str, int] = {}
    for n, answer in enumerate(answers):
        for line in answer.splitlines():
            key, sep, value = line.partition(": ")
            if not sep:
                continue
            if n == 0:
                fields.append((key, value))
            v = num(value)
            if key in SUM_INFO and v is not None:
                sums[key] = sums.get(key, 0) + v
    listeners = next((num(v) or 0 for k, v in fields if k == "Listeners"), 0)
    if "Jobs" in sums:  # every worker counts the shared listeners once
        sums["Jobs"] -= listeners * (len(answers) - 1)
    fixed = {"Nbthread": str(count), "Pid": str(pid)}
    out = []
    for key, value in fields:
        value = fixed.get(key, str(sums[key]) if key in sums else value)
        out.append(f"{key}: {value}\n")
    return "".join(out)


def merge_stat(answers: list[str]) -> str:
    """CSV `show stat`: rows matched on pxname/svname, the counter columns added up."""
    sep, k1, k2 = ",", "pxname", "svname"
    header = answers[0].splitlines()[0] if answers[0] else ""
    columns = header.lstrip("# ").split(sep)
    i1, i2 = columns.index(k1), columns.index(k2)
    rows: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str]] = []
    for answer in answers:
        for line in answer.splitlines()[1:]:
            cells = line.split(sep)
            if len(cells) < len(columns):
                continue
            key = (cells[i1], cells[i2])
            have = rows.get(key)
            if have is None:
                rows[key] = cells
                order.append(key)
                continue
            for i, col in enumerate(columns):
                a, b = num(have[i]), num(cells[i])
                if col in SUM_STAT and a is not None and b is not None:
                    have[i] = str(a + b)
    return "\n".join([header, *(sep.join(rows[k]) for k in order)]) + "\n"


def merge_netns(answers: list[str]) -> str:
    """`show netns`: counters summed per namespace name (not its inode, listeners, servers)."""
    header = answers[0].splitlines()[0]
    summed = [i for i, col in enumerate(header.lstrip("# ").split()) if col not in SAME_NETNS]
    rows: dict[str, list[str]] = {}
    for answer in answers:
        for line in answer.splitlines()[1:]:
            cells = line.split()
            have = rows.setdefault(cells[0], cells)
            if have is not cells:
                for i in summed:
                    a, b = num(have[i]), num(cells[i])
                    if a is not None and b is not None:
                        have[i] = str(a + b)
    return "\n".join([header, *(" ".join(r) for r in rows.values())]) + "\n"


__all__ = ["SUM_INFO", "SUM_STAT", "merge_info", "merge_netns", "merge_stat", "num"]
