"""Keyword declarations; importing this package fills the keyword tables."""

from nsproxy.config.keywords import (
    bind,
    checks,
    cookie,
    global_,
    http,
    httpcheck,
    namespace,
    proxy,
    rules,
    sections,
    server,
    stats_page,
    stick,
    track,
    transparent,
    userlist,
)

__all__ = [
    "bind",
    "checks",
    "cookie",
    "global_",
    "http",
    "httpcheck",
    "namespace",
    "proxy",
    "rules",
    "sections",
    "server",
    "stats_page",
    "stick",
    "track",
    "transparent",
    "userlist",
]
