"""The `namespace_list` section's `namespace` and `namespace-pattern` keywords and checks."""

from __future__ import annotations

import os
import re
from typing import Any

from nsproxy.config.model import Config, NamespacePattern
from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx, parse_int, post_check
from nsproxy.netns import check_name

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
    """Whether /var/run/netns/NAME can be opened (checked at parse time, as HAProxy does).

    Names that are not a plain file name there ('.', '..', '/', NUL, too long) never are.
    """
    return check_name(name) is None and os.access(os.path.join(ctx.state.netns_dir, name), os.R_OK)


@KEYWORDS.register("namespace-pattern", "namespace_list")
def _namespace_pattern(ctx: Ctx, args: list[str]) -> None:
    if len(args) not in (4, 6) or args[2] != "template" or args[4:5] not in ([], ["maxconn"]):
        raise ConfigError(
            "'namespace-pattern' expects <glob> template <frontend> [maxconn <number>]."
        )
    if "/" in args[1]:
        raise ConfigError(f"character '/' is not permitted in 'namespace-pattern' '{args[1]}'.")
    maxconn = parse_int(args[5], "'namespace-pattern' maxconn", 1) if len(args) == 6 else 0
    ctx.state.namespace_patterns.append(NamespacePattern(ctx.where, args[1], args[3], maxconn))


@post_check
def _pattern_templates(state: Any, config: Config) -> None:
    for pat in config.namespace_patterns:
        px = config.proxy(pat.template)
        if px is None or not px.is_frontend or not px.binds:
            state.errors.append(
                f"parsing [{pat.where}] : 'namespace-pattern' template '{pat.template}' is not "
                "a frontend or listen section with at least one 'bind'."
            )


@post_check
def _patterns_need_the_run_dir(state: Any, config: Config) -> None:
    """A pattern opens namespaces that appear later in /var/run/netns, watched with inotify
    from inside the process: a `chroot` hides both, so the two are refused together."""
    if config.global_.chroot and config.namespace_patterns:
        pat = config.namespace_patterns[0]
        state.errors.append(
            f"parsing [{pat.where}] : 'namespace-pattern' cannot be used with 'chroot' "
            f"({config.global_.chroot}): namespaces created later in {state.netns_dir} "
            "would be outside the chroot."
        )
