"""The `stats` page settings of a proxy (`stats enable`, `stats uri`, `stats auth`, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nsproxy.sample.acl import Condition

DEFAULT_URI = "/haproxy?stats"
DEFAULT_REALM = "HAProxy Statistics"


@dataclass(frozen=True, slots=True)
class StatsPageCfg:
    """What a proxy's `stats` lines say; any of them enables the page, as in HAProxy."""

    uri: str = DEFAULT_URI
    refresh: int = 0  # seconds; 0: no Refresh header
    realm: str = DEFAULT_REALM
    auth: tuple[tuple[str, str], ...] = ()  # user, password
    admin: tuple[Condition, ...] = ()  # `stats admin if|unless <cond>`
    show_legends: bool = False
    hide_version: bool = False
    show_node: str | None = None  # "" : the node name
    scope: tuple[str, ...] = ()  # proxies shown; empty: all
