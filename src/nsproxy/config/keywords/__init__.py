"""Keyword declarations; importing this package fills the keyword tables."""

from nsproxy.config.keywords import (
    bind,
    checks,
    global_,
    http,
    namespace,
    proxy,
    rules,
    sections,
    server,
    stats_page,
    stick,
    transparent,
    userlist,
)

__all__ = [
    "bind",
    "checks",
    "global_",
    "http",
    "namespace",
    "proxy",
    "rules",
    "sections",
    "server",
    "stats_page",
    "stick",
    "transparent",
    "userlist",
]
