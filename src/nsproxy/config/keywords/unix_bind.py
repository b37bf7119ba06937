"""`unix-bind`: the defaults of the UNIX sockets proxies listen on (path prefix, file mode;
the owner options are checked and accepted)."""

from __future__ import annotations

import dataclasses
import grp
import pwd
import socket
from typing import Any

from nsproxy.addresses import SockAddr
from nsproxy.config.registry import KEYWORDS, ConfigError, ConfigWarning, Ctx, pre_build

_OPTIONS = ("prefix", "mode", "uid", "gid", "user", "group")


@KEYWORDS.register("unix-bind", "global")
def _unix_bind(ctx: Ctx, args: list[str]) -> None:
    fields = ctx.section.fields
    warning = None
    i = 1
    while i < len(args):
        opt = args[i]
        value = args[i + 1] if i + 1 < len(args) else ""
        i += 2
        if opt == "prefix":
            if "unix_bind_prefix" in fields:
                warning = "unix-bind 'prefix' already specified. Continuing."
                continue
            if not value:
                raise ConfigError("unix_bind 'prefix' expects a path as an argument.")
            fields["unix_bind_prefix"] = value
        elif opt == "mode":
            fields["unix_bind_mode"] = _strtol8(value)
        elif opt in ("uid", "gid"):
            pass
        elif opt == "user":
            try:
                pwd.getpwnam(value)
            except KeyError:
                raise ConfigError(f"'unix-bind' : '{value}' unknown user.") from None
        elif opt == "group":
            try:
                grp.getgrnam(value)
            except KeyError:
                raise ConfigError(f"'unix-bind' : '{value}' unknown group.") from None
        else:
            raise ConfigError(
                "'unix-bind' only supports the 'prefix', 'mode', 'uid', 'gid', 'user' and "
                "'group' options."
            )
    if warning is not None:
        raise ConfigWarning(warning)


def _strtol8(text: str) -> int:
    """C's strtol(text, NULL, 8): the leading octal digits, 0 when there are none."""
    digits = ""
    for ch in text.strip():
        if ch not in "01234567":
            break
        digits += ch
    return int(digits, 8) if digits else 0


def _unix(addr: SockAddr, prefix: str | None) -> SockAddr:
    if addr.family != socket.AF_UNIX or not prefix:
        return addr
    return dataclasses.replace(addr, host=prefix + addr.host)


@pre_build
def _apply_unix_bind(state: Any) -> None:
    """The prefix and mode given to the UNIX binds of proxies (HAProxy 2.6 leaves the
    `stats socket` lines as they are)."""
    gfields = state.global_.fields
    prefix: str | None = gfields.get("unix_bind_prefix")
    mode: int | None = gfields.get("unix_bind_mode")
    if prefix is None and mode is None:
        return

    def fix(cfg: Any) -> Any:
        if not any(a.family == socket.AF_UNIX for a in cfg.addrs):
            return cfg
        changes: dict[str, Any] = {"addrs": tuple(_unix(a, prefix) for a in cfg.addrs)}
        if cfg.mode is None and mode is not None:
            changes["mode"] = mode
        return dataclasses.replace(cfg, **changes)

    for sec in state.proxies:
        if "binds" in sec.fields:
            sec.fields["binds"] = [fix(b) for b in sec.fields["binds"]]
