"""`compression algo <name>...`, `compression type <mime>...`, `compression offload`."""

from __future__ import annotations

from dataclasses import replace

from nsproxy.config.keywords.http import http_cfg, update_http
from nsproxy.config.registry import KEYWORDS, PROXY_SECTIONS, ConfigError, Ctx
from nsproxy.http.compression import ALGORITHMS, CompressionCfg

_EXPECTS = "'compression' expects 'algo', 'type' or 'offload'"


@KEYWORDS.register("compression", *PROXY_SECTIONS)
def _compression(ctx: Ctx, args: list[str]) -> None:
    what = args[1] if len(args) > 1 else ""
    cfg = http_cfg(ctx).compression or CompressionCfg()
    if what == "algo":
        if len(args) < 3:
            # HAProxy 2.6 writes the location twice here
            raise ConfigError(f"parsing [{ctx.where}] : 'compression' expects <algorithm>.")
        for name in args[2:]:
            if name not in ALGORITHMS:
                raise ConfigError(f"'compression' : '{name}' is not a supported algorithm.")
        cfg = replace(cfg, algos=cfg.algos + tuple(args[2:]))
    elif what == "type":
        if len(args) < 3:
            raise ConfigError("'compression' expects <type>.")
        cfg = replace(cfg, types=cfg.types + tuple(args[2:]))
    elif what == "offload":
        if ctx.section.kind == "defaults":
            ctx.warn("'compression' : 'offload' ignored in 'defaults' section.")
            return
        cfg = replace(cfg, offload=True)
    else:
        raise ConfigError(_EXPECTS)
    update_http(ctx, compression=cfg)
