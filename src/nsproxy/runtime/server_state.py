"""The servers' state saved before a reload (`server-state-file`), put back at startup."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from nsproxy.addresses import PortMode
from nsproxy.config.server_states import Restored

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Server


def put_back(servers: list[Server], states: list[Restored]) -> None:
    """Applies the restored states (in the configuration's server order) before the backend
    balances over `servers`; a server that was DOWN starts DOWN (its checks bring it back).

    As HAProxy 2.6, the saved service port replaces the configured one (a fixed port only),
    and a saved check port or address replaces the configured ones."""
    for srv, st in zip(servers, states, strict=True):
        cfg = srv.cfg
        if st.port is not None and cfg.addr.port_mode is PortMode.FIXED:
            cfg = dataclasses.replace(cfg, addr=dataclasses.replace(cfg.addr, port=st.port))
        if st.check_port is not None or st.check_addr is not None:
            check = cfg.check
            if st.check_port is not None:
                check = dataclasses.replace(check, port=st.check_port)
            if st.check_addr is not None:
                check = dataclasses.replace(check, addr=st.check_addr)
            cfg = dataclasses.replace(cfg, check=check)
        srv.cfg = cfg
        srv.up = st.up
        srv.admin_maint = st.maint
        srv.drain = st.drain
        srv.weight = st.weight
