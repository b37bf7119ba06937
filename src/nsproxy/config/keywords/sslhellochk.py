"""`option ssl-hello-chk`: a backend's check becomes HAProxy's SSLv3 ClientHello probe."""

from __future__ import annotations

from nsproxy.config.model import TcpCheckRule
from nsproxy.config.registry import OPTIONS, ConfigError, ConfigWarning, Ctx

# The backend's tcp_check rules while `option ssl-hello-chk` is its check (HAProxy's
# "*ssl-hello-check" ruleset); the health checker runs it as one protocol check.
SSL_HELLO_RULES = (TcpCheckRule("ssl-hello"),)


@OPTIONS.register("ssl-hello-chk")
def _ssl_hello_chk(ctx: Ctx, args: list[str]) -> None:
    """The last check option of a section wins: this one replaces `option httpchk` and any
    `tcp-check` rules before it."""
    if args[-1] == "off":
        raise ConfigError(
            "negation/default is not supported for option 'ssl-hello-chk'.", style="nospace"
        )
    if len(args) > 2:
        raise ConfigError(f"'option ssl-hello-chk' cannot handle unexpected argument '{args[1]}'.")
    if not ctx.section.is_backend and ctx.section.kind != "defaults":
        raise ConfigWarning(
            f"'ssl-hello-chk' ignored because {ctx.section.kind} '{ctx.section.name}' has no "
            "backend capability."
        )
    ctx.section.fields.pop("http_check", None)
    ctx.section.fields["tcp_check"] = list(SSL_HELLO_RULES)
