"""The `namespace_list` section's `namespace` keyword and the check that namespaces exist."""

from __future__ import annotations

import os
import re
from typing import Any

from nsproxy.config.model import Config
from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx, post_check

_ALLOWED = re.compile(r"[^A-Za-z0-9._:-]")


@KEYWORDS.register("namespace", "namespace_list")
def _namespace(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'namespace' expects at least one namespace name.")
    for name in args[1:]:
        bad = _ALLOWED.search(name)
        if bad:
            raise ConfigError(
                f"character '{bad.group()}' is not permitted in 'namespace' name '{name}'."
            )
        if name in ctx.state.namespaces or name in ctx.state.used_namespaces:
            raise ConfigError(f"Namespace '{name}' is already added.")
        if not os.path.exists(os.path.join(ctx.state.netns_dir, name)):
            raise ConfigError(f"Cannot open namespace '{name}'.")
        ctx.state.namespaces[name] = ctx.where


@post_check
def _namespaces_exist(state: Any, config: Config) -> None:
    for name, where in state.used_namespaces.items():
        if not os.path.exists(os.path.join(state.netns_dir, name)):
            state.error(where, f"Cannot open namespace '{name}'.")
