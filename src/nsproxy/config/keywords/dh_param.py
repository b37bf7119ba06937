"""`ssl-dh-param-file`: the DH parameters every `bind ... ssl` uses for DHE ciphers."""

from __future__ import annotations

import dataclasses
import ssl

from nsproxy.config.model_tls import GlobalTls
from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx


@KEYWORDS.register("ssl-dh-param-file", "global")
def _ssl_dh_param_file(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2 or not args[1]:
        raise ConfigError("'ssl-dh-param-file' expects a file path as an argument.")
    path = args[1]
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_dh_params(path)
    except (OSError, ssl.SSLError):
        raise ConfigError(
            f"'ssl-dh-param-file': unable to load DH parameters from file <{path}>."
        ) from None
    found = ctx.section.fields.get("tls")
    tls = found if isinstance(found, GlobalTls) else GlobalTls()
    defaults = dataclasses.replace(tls.bind_defaults, dh_file=path)
    ctx.section.fields["tls"] = dataclasses.replace(tls, bind_defaults=defaults)
