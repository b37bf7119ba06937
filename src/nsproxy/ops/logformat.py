"""HAProxy log-format strings (%ci, %fp, %ts, ...) rendered for one stream."""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING

from nsproxy.ops.log import accept_date, addr_text

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime
    from nsproxy.runtime.stream import Stream

_VAR = re.compile(r"%(?:\{[^}]*\})?(\[[^\]]*\]|[A-Za-z]+|%)")


def _value(name: str, rt: Runtime, s: Stream, closing: bool = False) -> str:
    fe = s.listener.frontend
    be = s.backend
    srv = s.server
    if name == "%":
        return "%"
    if name in ("ci", "cp"):
        return addr_text(s.cli.src)[0 if name == "ci" else 1]
    if name in ("fi", "fp"):
        return addr_text(s.cli.local_addr())[0 if name == "fi" else 1]
    if name in ("si", "sp"):
        target = s.srv_conn.dst if s.srv_conn is not None else None
        return addr_text(target)[0 if name == "si" else 1] if target else "-"
    if name in ("bi", "bp"):
        local = s.srv_conn.src if s.srv_conn is not None else None
        return addr_text(local)[0 if name == "bi" else 1] if local else "-"
    if name in ("f", "ft"):
        return fe.name
    if name == "b":
        return be.name if be else fe.name
    if name == "s":
        return srv.name if srv else "<NOSRV>"
    if name == "t":
        return accept_date(s.start_ts)
    if name == "ts":
        return s.termination
    if name == "B":
        return str(s.bytes_out)
    if name == "U":
        return str(s.bytes_in)
    if name == "Tw":
        return str(s.tw)
    if name == "Tc":
        return str(s.tc)
    if name == "Tt":
        return str(int((rt.clock.time() - s.t0) * 1000))
    # At close (the log line) this stream still counts in %ac/%fc but not in %bc/%sc.
    if name == "ac":
        return str(rt.stats.cur_conns + closing)
    if name == "fc":
        return str(fe.stats.cur_conns + closing)
    if name == "bc":
        return str((be.stats.cur_conns - (closing and srv is not None)) if be else 0)
    if name == "sc":
        return str(srv.cur_conns - closing if srv else 0)
    if name == "rc":
        return ("+" if s.redispatched else "") + str(s.retries)
    if name in ("sq", "bq"):
        return "0"
    if name == "pid":
        return str(os.getpid())
    if name in ("[fc_netns]", "[fc_netns()]"):
        return s.cli.netns.name if s.cli.netns is not None else "-"
    if name in ("[bc_netns]", "[bc_netns()]"):
        if srv is None:
            return "-"
        ns = s.cli.netns if srv.cfg.use_client_netns else srv.netns
        return ns.name if ns is not None else "-"
    return "-"


@functools.cache
def _parts(fmt: str) -> list[str]:
    """`fmt` split once: literal text at even indexes, variable names at odd ones."""
    return _VAR.split(fmt)


def render(fmt: str, rt: Runtime, s: Stream, closing: bool = False) -> str:
    parts = _parts(fmt)
    out = parts[:]
    for i in range(1, len(parts), 2):
        out[i] = _value(parts[i], rt, s, closing)
    return "".join(out)
