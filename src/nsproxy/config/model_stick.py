"""Stick tables, sticking rules and peers sections as parsed: frozen dataclasses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nsproxy.config.where import Where
from nsproxy.sample.acl import Condition
from nsproxy.sample.context import Txn
from nsproxy.sample.types import Sample


@dataclass(frozen=True, slots=True)
class StickTableCfg:
    """`stick-table ...` in a proxy, or `table NAME ...` in a peers section.

    `name` is the table's id: the proxy's name, or "<peers>/<table>" for a peers table.
    `key_size` is HAProxy's (string: len + 1, default 32). `store` keeps the declared
    (data type, period in ms or None) pairs in the order written; `expire_ms` 0 = none.
    `peers` names the peers section that syncs it (the section itself for a peers table).
    """

    where: Where
    name: str
    key_type: str
    key_size: int
    size: int
    expire_ms: int = 0
    nopurge: bool = False
    peers: str | None = None
    store: tuple[tuple[str, int | None], ...] = ()
    srvkey: str = "name"
    key_len: int | None = None


@dataclass(frozen=True, slots=True)
class StickRuleCfg:
    """`stick on|match|store-request|store-response EXPR [table T] [if|unless COND...]`.

    `expr` is the sample expression word as written (fetch and converters), `table` None
    means the proxy's own table, `cond` the raw condition words including `if`/`unless`.
    `fetch` and `test` are the expression and condition compiled (the sample, None when
    there is none; the condition's verdict).
    """

    where: Where
    kind: str
    expr: str
    table: str | None = None
    cond: tuple[str, ...] = ()
    fetch: Callable[[Txn], Sample | None] | None = field(default=None, compare=False, repr=False)
    test: Condition | None = field(default=None, compare=False, repr=False)

    @property
    def matches(self) -> bool:
        return self.kind in ("on", "match")

    @property
    def stores(self) -> bool:
        return self.kind in ("on", "store-request", "store-response")

    @property
    def on_response(self) -> bool:
        return self.kind == "store-response"


@dataclass(frozen=True, slots=True)
class PeerCfg:
    """`peer NAME [ADDR:PORT]` (or `server NAME [ADDR:PORT]`); `local` when NAME is this
    process's peer name (`localpeer`, `-L`, or the host name) at the time of the line."""

    where: Where
    name: str
    host: str | None = None
    port: int | None = None
    local: bool = False
    is_server_line: bool = False


@dataclass(frozen=True, slots=True)
class PeersCfg:
    """A `peers NAME` section: its peers, the tables declared in it, `disabled`, `bind`."""

    where: Where
    name: str
    peers: tuple[PeerCfg, ...] = ()
    tables: tuple[StickTableCfg, ...] = ()
    disabled: bool = False
    bind: str | None = None

    @property
    def local(self) -> PeerCfg | None:
        return next((p for p in self.peers if p.local), None)
