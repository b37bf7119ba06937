"""The server state file (a `show servers state` dump saved before a reload): its lines, and
what applying them to a configuration restores, as HAProxy 2.6 does at startup.

Per server found by backend and server name: the operational state (a server that was DOWN
starts DOWN, its checks must pass `rise` times), the forced maintenance and drain set on the
runtime API, and the runtime weight when the configured weight did not change. A change in
the configuration wins over the saved state (HAProxy's rules, server_state.c).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nsproxy.config.model import ProxyCfg

VERSION = "1"
OP_STOPPED, OP_STARTING, OP_RUNNING, OP_STOPPING = 0, 1, 2, 3
ADMF_FMAINT, ADMF_CMAINT, ADMF_FDRAIN = 0x01, 0x04, 0x08
MIN_FIELDS = 19  # up to srv_port: the columns every 2.x version writes


@dataclass(frozen=True, slots=True)
class StateLine:
    """The columns of one server's line that a restart restores."""

    op_state: int
    admin_state: int
    uweight: int
    iweight: int
    port: int | None = None  # srv_port
    check_port: int | None = None  # srv_check_port (0: none)
    check_addr: str | None = None  # srv_check_addr ("-": none)


@dataclass(frozen=True, slots=True)
class Restored:
    """A server's state after the file was applied."""

    name: str
    up: bool
    maint: bool
    drain: bool
    weight: int
    port: int | None = None  # the service port the file gives (HAProxy restores it too)
    check_port: int | None = None
    check_addr: str | None = None


def parse(text: str) -> dict[tuple[str, str], StateLine] | None:
    """The lines by (backend name, server name); None when the version line is not 1.
    Malformed lines are skipped."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != VERSION:
        return None
    out: dict[tuple[str, str], StateLine] = {}
    for line in lines[1:]:
        f = line.split()
        if not f or f[0].startswith("#") or len(f) < MIN_FIELDS:
            continue
        try:
            st = StateLine(int(f[5]), int(f[6]), int(f[7]), int(f[8]))
        except ValueError:
            continue
        if f[18].isdigit() and int(f[18]) <= 65535:
            st = dataclasses.replace(st, port=int(f[18]))
        if len(f) > 22:
            if f[21].isdigit() and 0 < int(f[21]) <= 65535:
                st = dataclasses.replace(st, check_port=int(f[21]))
            if f[22] != "-":
                st = dataclasses.replace(st, check_addr=f[22])
        if 0 <= st.op_state <= OP_STOPPING:
            out.setdefault((f[1], f[3]), st)
    return out


def restore(
    px: ProxyCfg, lines: dict[tuple[str, str], StateLine]
) -> tuple[list[Restored], list[str]]:
    """The state of `px`'s servers once `lines` are applied in server order, and the warnings
    HAProxy prints while applying them."""
    states = [Restored(s.name, True, s.disabled, False, s.weight) for s in px.servers]
    warnings: list[str] = []
    for i, srv in enumerate(px.servers):
        st = lines.get((px.name, srv.name))
        if st is None:
            continue
        cur = states[i]
        up = st.op_state in (OP_RUNNING, OP_STOPPING)
        if bool(st.admin_state & ADMF_CMAINT) != srv.disabled:
            maint = srv.disabled  # the configuration changed: it wins
        else:
            maint = srv.disabled or bool(st.admin_state & ADMF_FMAINT)
        drain = False
        if not maint and st.admin_state & ADMF_FDRAIN and (st.iweight > 0 or srv.weight == 0):
            drain = True
        weight = st.uweight if st.iweight == srv.weight else srv.weight
        states[i] = Restored(
            srv.name, up, maint, drain, weight, st.port, st.check_port, st.check_addr
        )
        kind = "Backup Server" if srv.backup else "Server"
        if cur.up and not cur.maint and not up:
            act, bck = _usable(px, states)
            backup_only = " Running on backup." if bck and not act else ""
            warnings.append(
                f"{kind} {px.name}/{srv.name} is DOWN, changed from server-state after a "
                f"reload. {act} active and {bck} backup servers left.{backup_only} "
                "0 sessions active, 0 requeued, 0 remaining in queue."
            )
        if drain:
            warnings.append(f"{kind} {px.name}/{srv.name} remains in forced drain mode.")
    return states, warnings


def _usable(px: ProxyCfg, states: list[Restored]) -> tuple[int, int]:
    act = bck = 0
    for srv, st in zip(px.servers, states, strict=True):
        if st.up and not st.maint and not st.drain and st.weight > 0:
            if srv.backup:
                bck += 1
            else:
                act += 1
    return act, bck


def read(path: str) -> dict[tuple[str, str], StateLine] | None:
    """The lines of the file at `path`; None when it cannot be read or has no version 1."""
    try:
        with open(path, encoding="latin-1") as f:
            return parse(f.read())
    except OSError:
        return None
