"""`server-template <prefix> <nb | low-high> <addr> [options]` and `dynamic-cookie-key`."""

from __future__ import annotations

import re

from nsproxy.config.keywords.proxy import BE
from nsproxy.config.keywords.server import add_server
from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx

_ATOI = re.compile(r"\s*([+-]?\d+)")


def _atoi(text: str) -> int:
    m = _ATOI.match(text)
    return int(m.group(1)) if m else 0


def template_range(arg: str) -> tuple[int, int]:
    """The first and last numbers of `<nb>` (1..nb) or `<low>-<high>`, read as HAProxy reads
    them (C atoi); raises ConfigError on an empty or reversed range."""
    low_text, dash, high_text = arg.partition("-")
    low, high = _atoi(low_text), _atoi(high_text) if dash else 0
    if not dash:
        low, high = 1, low
    if low < 0 or high < low:
        raise ConfigError(f"Wrong server-template number or range arg '{arg}'.", "bracket")
    return low, high


@KEYWORDS.register("server-template", "backend", "listen")
def _server_template(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 4:
        raise ConfigError(
            "'server-template' expects <prefix> <nb | range> <addr>[:<port>] as arguments.",
            "bracket",
        )
    low, high = template_range(args[2])
    for n in range(low, high + 1):
        add_server(ctx, f"{args[1]}{n}", args[3], args[4:])


@KEYWORDS.register("dynamic-cookie-key", *BE, frontend=False)
def _dynamic_cookie_key(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2 or not args[1]:
        raise ConfigError("'dynamic-cookie-key' expects <secret_key> as argument.")
    ctx.section.fields["dynamic_cookie_key"] = args[1]
