"""The `namespace_list` section's `namespace` keyword and the check that namespaces exist."""

from __future__ import annotations

import os
import re

from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx

_ALLOWED = re.compile(r"[^A-Za-z0-9._:-]")


@KEYWORDS.register("namespace", "namespace_list")
def _namespace(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'namespace' expects at least one namespace name.")
    for name in args[1:]:
        bad = _ALLOWED.search(name)
        if bad:
            raise ConfigError(
                f"character '{bad.group()}' is not permitted in 'namespace' name '{name}'.",
                "nospace",
            )
        if name in ctx.state.namespaces or name in ctx.state.used_namespaces:
            raise ConfigError(f"Namespace '{name}' is already added.", "nospace")
        if not netns_exists(ctx, name):
            raise ConfigError(f"Cannot open namespace '{name}'.", "nospace")
        ctx.state.namespaces[name] = ctx.where


def netns_exists(ctx: Ctx, name: str) -> bool:
    """Whether /var/run/netns/NAME can be opened (checked at parse time, as HAProxy does)."""
    return os.access(os.path.join(ctx.state.netns_dir, name), os.R_OK)
