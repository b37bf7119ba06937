"""Stick tables built from their parsed configuration."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from nsproxy.config.model import Config
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


def config_tables(config: Config) -> list[StickTableCfg]:
    """Every table of `config` in declaration order, with server_id and server_key added to
    those a `stick` rule uses (as HAProxy 2.6 does when it checks the configuration)."""
    by_name: dict[str, StickTableCfg] = {}
    for px in config.proxies:
        if px.stick_table is not None:
            by_name[px.stick_table.name] = px.stick_table
    for peers in config.global_.peers:
        for t in peers.tables:
            by_name[t.name] = t
    used = {
        r.table if r.table is not None else px.name for px in config.proxies for r in px.stick_rules
    }
    out: list[StickTableCfg] = []
    for name in config.global_.table_names:
        found = by_name.get(name)
        if found is None:
            continue
        t = found
        if name in used:
            have = {n for n, _ in t.store}
            extra = tuple((n, None) for n in ("server_id", "server_key") if n not in have)
            t = dataclasses.replace(t, store=t.store + extra)
        out.append(t)
    return out
