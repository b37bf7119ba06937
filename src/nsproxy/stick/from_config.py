"""Stick tables built from their parsed configuration."""

from __future__ import annotations

from collections.abc import Iterable

from nsproxy.config.model_stick import StickTableCfg
from nsproxy.stick.table import StickTable


def make_table(cfg: StickTableCfg) -> StickTable:
    """An empty table as `cfg` declares it."""
    return StickTable(
        cfg.name,
        cfg.key_type,
        cfg.size,
        key_len=cfg.key_len,
        expire_ms=cfg.expire_ms,
        nopurge=cfg.nopurge,
        store=cfg.store,
        peers=cfg.peers,
    )


def make_tables(cfgs: Iterable[StickTableCfg]) -> list[StickTable]:
    """Tables in declaration order (the order `show table` reverses)."""
    return [make_table(c) for c in cfgs]
