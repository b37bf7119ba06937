"""`cookie NAME insert|rewrite|prefix ...` and the server option `cookie VALUE`: persistence."""

from __future__ import annotations

from nsproxy.config.keywords.server import OPTS
from nsproxy.config.model_http import CookieCfg
from nsproxy.config.registry import KEYWORDS, SERVER_OPTIONS, ConfigError, ConfigWarning, Ctx

_FLAGS = ("indirect", "nocache", "postonly", "preserve", "httponly", "secure", "dynamic")
_VALUED = ("domain", "maxidle", "maxlife", "attr")


@KEYWORDS.register("cookie", "defaults", "backend", "listen", frontend=False)
def _cookie(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'cookie' expects <cookie_name> as argument.")
    mode = "rewrite"
    flags: set[str] = set()
    domains: list[str] = []
    attrs: list[str] = []
    i = 2
    while i < len(args):
        word = args[i]
        if word in ("insert", "rewrite", "prefix"):
            mode = word
        elif word in _FLAGS:
            flags.add(word)
        elif word in _VALUED and i + 1 < len(args):
            i += 1
            if word == "domain":
                domains.append(args[i])
            elif word == "attr":
                attrs.append(args[i])
            else:
                raise ConfigWarning(f"'cookie' : '{word}' is not supported by nsproxy; ignored.")
        else:
            raise ConfigError(
                "'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', "
                "'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options."
            )
        i += 1
    if "indirect" in flags and mode == "rewrite":
        raise ConfigError("'cookie' 'indirect' option is incompatible with 'rewrite' mode.")
    ctx.section.fields["cookie"] = CookieCfg(
        args[1],
        mode,
        indirect="indirect" in flags,
        nocache="nocache" in flags,
        httponly="httponly" in flags,
        secure="secure" in flags,
        preserve="preserve" in flags,
        domains=tuple(domains),
        attrs=tuple(attrs),
    )


@SERVER_OPTIONS.register("cookie")
def _server_cookie(ctx: Ctx, rest: list[str]) -> None:
    word = rest.pop(0)
    if not rest:
        raise ConfigError(f"'{word}' expects <value> as argument.")
    ctx.section.fields[OPTS]["cookie"] = rest.pop(0)
