"""`init-addr` on server lines: how a server's address is found at startup.

nsproxy's server addresses are IP literals, which every method keeps as they are, so the
methods are checked and the address stays the one on the line."""

from __future__ import annotations

import ipaddress

from nsproxy.config.registry import SERVER_OPTIONS, ConfigError, Ctx

METHODS = ("libc", "last", "none")


def _known(method: str) -> bool:
    if method in METHODS:
        return True
    try:
        ipaddress.ip_address(method)
    except ValueError:
        return False
    return True


@SERVER_OPTIONS.register("init-addr")
def _init_addr(ctx: Ctx, rest: list[str]) -> None:
    rest.pop(0)
    value = rest.pop(0) if rest else ""
    if not value:
        return  # HAProxy 2.6 accepts the keyword without methods
    for method in value.split(","):
        if not _known(method):
            raise ConfigError(
                f"'init-addr' : unknown init-addr method '{method}', supported methods are "
                "'libc', 'last', 'none'.."
            )
