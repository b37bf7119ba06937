"""Server state across reloads: `server-state-file`, `server-state-base`,
`load-server-state-from-file`, `server-state-file-name`, declared here with their parsers."""

from __future__ import annotations

import os
from typing import Any

# imported first so that its peers checks warn before the state files, in HAProxy's order
import nsproxy.config.keywords.stick  # noqa: F401
from nsproxy.config import server_states
from nsproxy.config.model import Config, GlobalCfg, ProxyCfg
from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx, post_check

BE = ("defaults", "backend", "listen")


@KEYWORDS.register("server-state-file", "global")
def _server_state_file(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'server-state-file' expect one argument: a file path.")
    ctx.section.fields["server_state_file"] = args[1]


@KEYWORDS.register("server-state-base", "global")
def _server_state_base(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'server-state-base' expects a directory path.")
    ctx.section.fields["server_state_base"] = args[1]


@KEYWORDS.register("load-server-state-from-file", *BE, frontend=False)
def _load_server_state(ctx: Ctx, args: list[str]) -> None:
    how = args[1] if len(args) > 1 else ""
    if how not in ("global", "local", "none"):
        raise ConfigError(
            f"'load-server-state-from-file' expects 'global', 'local' or 'none'. Got '{how}'"
        )
    ctx.section.fields["load_server_state"] = how


@KEYWORDS.register("server-state-file-name", *BE, frontend=False)
def _server_state_file_name(ctx: Ctx, args: list[str]) -> None:
    if len(args) > 2:
        raise ConfigError(
            f"'server-state-file-name' cannot handle unexpected argument '{args[2]}'."
        )
    name = args[1] if len(args) == 2 and args[1] != "use-backend-name" else None
    ctx.section.fields["server_state_file_name"] = name


def _under_base(g: GlobalCfg, name: str) -> str:
    """HAProxy's srv_state_get_filepath(): `name` under `server-state-base` unless absolute."""
    base = g.server_state_base
    if name.startswith("/") or not base:
        return name
    return base + ("" if base.endswith("/") else "/") + name


def global_state_file(g: GlobalCfg) -> str | None:
    """The path of the global server state file, if one is configured."""
    return _under_base(g, g.server_state_file) if g.server_state_file else None


def state_file_of(g: GlobalCfg, px: ProxyCfg) -> str | None:
    """The file a backend loads its servers' state from at startup, if any."""
    if px.load_server_state == "global":
        return global_state_file(g)
    if px.load_server_state == "local":
        return _under_base(g, px.server_state_file_name or px.name)
    return None


def unreadable(path: str) -> str | None:
    """Why a state file cannot be used: the system's error text, "" when its first line is
    not the version (1); None when it is usable."""
    try:
        with open(path, encoding="latin-1") as f:
            first = f.readline()
    except OSError as exc:
        return os.strerror(exc.errno) if exc.errno else str(exc)
    return None if first.strip() == "1" else ""


def restored(config: Config) -> dict[str, list[server_states.Restored]]:
    """Each backend's servers as its state file restores them (backends that load none, or
    whose file cannot be read, are left out)."""
    files: dict[str, dict[tuple[str, str], server_states.StateLine] | None] = {}
    out: dict[str, list[server_states.Restored]] = {}
    for px in config.backends:
        path = state_file_of(config.global_, px)
        if path is None:
            continue
        if path not in files:
            files[path] = server_states.read(path)
        lines = files[path]
        if lines is not None:
            out[px.name] = server_states.restore(px, lines)[0]
    return out


@post_check
def _state_files(state: Any, config: Config) -> None:
    """HAProxy's warnings when a state file cannot be read at startup (`-c` included), then
    those of applying it."""
    if state.errors:
        return
    g = config.global_
    path = global_state_file(g)
    if path is not None:
        why = unreadable(path)
        if why:
            state.warnings.append(f"config: Can't open global server state file '{path}': {why}")
        elif why == "":
            state.warnings.append(
                f"config: Can't get version of the global server state file '{path}'."
            )
    for px in config.backends:
        if px.load_server_state == "global" and g.server_state_file is None:
            state.warnings.append(
                f"backend '{px.name}' configured to load server state file from global section "
                "'server-state-file' directive. Unfortunately, 'server-state-file' is not set!"
            )
        if px.load_server_state != "local":
            continue
        path = state_file_of(g, px)
        assert path is not None
        why = unreadable(path)
        if why:
            state.warnings.append(
                f"Proxy '{px.name}': Can't open server state file '{path}': {why}."
            )
        elif why == "":
            state.warnings.append(
                f"Proxy '{px.name}': Can't get version of the server state file '{path}'."
            )
    files: dict[str, dict[tuple[str, str], server_states.StateLine] | None] = {}
    for px in config.backends:
        path = state_file_of(g, px)
        if path is None:
            continue
        if path not in files:
            files[path] = server_states.read(path)
        lines = files[path]
        if lines is not None:
            state.warnings.extend(server_states.restore(px, lines)[1])
