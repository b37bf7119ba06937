"""ssl.SSLContext objects built from the model: one per certificate on the bind side, one per
server on the client side, and the per-server TLS session kept for resumption."""

from __future__ import annotations

import dataclasses
import ssl

from nsproxy.config.model_tls import TLS_VERSIONS, ServerTls, SslOptions
from nsproxy.tls import native
from nsproxy.tls.pem import CertBundle, load_chain_into


class ContextError(Exception):
    """OpenSSL refused a setting; the message is the end of HAProxy's (no proxy/bind part)."""


class TlsObject(ssl.SSLObject):
    """The SSLObject of every context made here: also keeps the SNI the client sent and the
    certificate entry the SNI callback chose."""

    sni: str | None = None
    chosen: object = None


_VERSIONS = {
    "SSLv3": ssl.TLSVersion.SSLv3,
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
VERIFY = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
DEFAULT_MIN = "TLSv1.2"  # HAProxy 2.6's default `ssl-min-ver` on both sides


def _versions(ctx: ssl.SSLContext, lo: str | None, hi: str | None, no: frozenset[str]) -> None:
    """`ssl-min-ver`/`ssl-max-ver`, else the range `no-sslv3`/`no-tlsv1x` leave (they are
    ignored when either bound is set, as in HAProxy)."""
    if lo is None and hi is None and no:
        allowed = [v for v in TLS_VERSIONS if v not in no]
        if allowed:
            lo = allowed[0]
            hi = allowed[-1] if allowed[-1] != TLS_VERSIONS[-1] else None
    lo = lo or DEFAULT_MIN
    try:
        ctx.minimum_version = _VERSIONS[lo]
        if hi is not None:
            ctx.maximum_version = _VERSIONS[hi]
    except ValueError:
        pass  # a version this OpenSSL cannot do: the handshake will say so


def _ciphers(ctx: ssl.SSLContext, ciphers: str | None, suites: str | None) -> None:
    if ciphers is not None:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError:
            raise ContextError(f"unable to set SSL cipher list to '{ciphers}'") from None
    if suites is not None and not native.set_ciphersuites(ctx, suites):
        raise ContextError(f"unable to set TLS 1.3 cipher suites to '{suites}'")


def _verify_files(ctx: ssl.SSLContext, ca_file: str | None, crl_file: str | None) -> None:
    for path in (ca_file, crl_file):
        if path is None:
            continue
        try:
            ctx.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError):
            raise ContextError(f"unable to load {path}") from None
    if crl_file is not None:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN


def server_context(bundle: CertBundle | None, opts: SslOptions) -> ssl.SSLContext:
    """The bind-side context of one certificate with its options (bind's, crt-list entry's)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.sslobject_class = TlsObject
    if bundle is not None:
        load_chain_into(ctx, bundle)
    _versions(ctx, opts.min_ver, opts.max_ver, opts.no_versions)
    _ciphers(ctx, opts.ciphers, opts.ciphersuites)
    _verify_files(ctx, opts.ca_file, opts.crl_file)
    ctx.verify_mode = VERIFY[opts.verify or "none"]
    native.verify_callback(
        ctx, opts.ca_ignore_err or frozenset(), opts.crt_ignore_err or frozenset()
    )
    if opts.no_tickets:
        ctx.options |= ssl.OP_NO_TICKET
    if opts.alpn:
        ctx.set_alpn_protocols(list(opts.alpn))
    if opts.dh_file is not None:
        ctx.load_dh_params(opts.dh_file)
    return ctx


def client_context(cfg: ServerTls, bundle: CertBundle | None = None) -> ssl.SSLContext:
    """The context for connections to one server (`server ... ssl`)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.sslobject_class = TlsObject
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cfg.verify == "required":
        _verify_files(ctx, cfg.ca_file, cfg.crl_file)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = cfg.verifyhost is not None or cfg.sni is not None
    if bundle is not None:
        load_chain_into(ctx, bundle)
    _versions(ctx, cfg.min_ver, cfg.max_ver, cfg.no_versions)
    _ciphers(ctx, cfg.ciphers, cfg.ciphersuites)
    if cfg.no_tickets:
        ctx.options |= ssl.OP_NO_TICKET
    if cfg.alpn:
        ctx.set_alpn_protocols(list(cfg.alpn))
    return ctx


class SessionCache:
    """The last TLS session of one server, offered on the next connection (`no-ssl-reuse`
    makes it keep nothing)."""

    __slots__ = ("enabled", "session")

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.session: ssl.SSLSession | None = None

    def offer(self) -> ssl.SSLSession | None:
        return self.session if self.enabled else None

    def keep(self, obj: ssl.SSLObject) -> None:
        """Remembers `obj`'s session once it is resumable (TLS 1.3 tickets come after the
        handshake, so call this again after reads)."""
        if not self.enabled:
            return
        sess = obj.session
        if sess is None:
            return
        if sess.has_ticket or (obj.version() != "TLSv1.3" and sess.id):
            self.session = sess

    def forget(self) -> None:
        self.session = None


class ServerTlsClient:
    """Everything one `server ... ssl` needs per connection: the context, the name to send
    as SNI and check, and the session to resume (`connect_params`)."""

    __slots__ = ("cfg", "checked", "plain", "sessions")

    def __init__(self, cfg: ServerTls, bundle: CertBundle | None = None) -> None:
        self.cfg = cfg
        self.checked = client_context(cfg, bundle)
        # the same settings without the name check, for a connection with no name to check
        self.plain = self.checked
        if self.checked.check_hostname:
            unchecked = dataclasses.replace(cfg, verifyhost=None, sni=None)
            self.plain = client_context(unchecked, bundle)
        self.sessions = SessionCache(cfg.reuse)

    def connect_params(
        self, sni: str | None
    ) -> tuple[ssl.SSLContext, str | None, ssl.SSLSession | None]:
        """(context, server_hostname, session) for a connection whose `sni` expression gave
        `sni` (None or "" when there is none): the SNI sent, else `verifyhost`, is checked."""
        name = sni or self.cfg.verifyhost
        ctx = self.checked if name else self.plain
        return ctx, name, self.sessions.offer()
