"""The servers' state saved before a reload (`server-state-file`), put back at startup."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nsproxy.config.server_states import Restored

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Server


def put_back(servers: list[Server], states: list[Restored]) -> None:
    """Applies the restored states (in the configuration's server order) before the backend
    balances over `servers`; a server that was DOWN starts DOWN (its checks bring it back)."""
    for srv, st in zip(servers, states, strict=True):
        srv.up = st.up
        srv.admin_maint = st.maint
        srv.drain = st.drain
        srv.weight = st.weight
