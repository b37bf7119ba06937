"""`default-path`: where the relative paths of the rest of the configuration start from.

As in HAProxy the working directory changes while the configuration is read (files named
after the directive are opened relative to it); the parser restores it once every file is
read."""

from __future__ import annotations

import os

from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx

_MODES = ("current", "config", "parent", "origin")


@KEYWORDS.register("default-path", "global")
def _default_path(ctx: Ctx, args: list[str]) -> None:
    mode = args[1] if len(args) > 1 else ""
    if mode not in _MODES:
        state = "unsupported" if mode else "missing"
        raise ConfigError(
            f"{state} default-path mode '{mode}' for 'default-path', supported modes include "
            "'current', 'config', 'parent', and 'origin'."
        )
    initial = ctx.state.global_.fields.setdefault("_initial_cwd", os.getcwd())
    if mode == "origin":
        if len(args) < 3 or not args[2]:
            raise ConfigError("'default-path origin' expects a directory as an argument.")
        target = args[2]
    elif mode == "current":
        target = initial
    elif mode == "config":
        target = os.path.dirname(ctx.where.file)
    else:
        conf_dir = os.path.dirname(ctx.where.file)
        target = f"{conf_dir}/.." if conf_dir else ".."
    if not target:
        return
    try:
        os.chdir(target)
    except OSError as exc:
        why = f"Impossible to get back to directory '{initial}': {exc.strerror}"
        where = f" to origin '{target}'" if mode == "origin" else ""
        raise ConfigError(f"couldn't set 'default-path'{where}: {why}.") from None
