"""TLS settings of binds, servers and the global section: frozen dataclasses, paths resolved."""

from __future__ import annotations

from dataclasses import dataclass

# HAProxy's version names, oldest first (`ssl-min-ver`/`ssl-max-ver`, `force-*`).
TLS_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True, slots=True)
class SslOptions:
    """The options a bind line, a crt-list entry or `ssl-default-*-options` may set.

    None means "not set here": the layer below (global defaults, then OpenSSL's) decides.
    """

    verify: str | None = None
    ca_file: str | None = None
    crl_file: str | None = None
    alpn: tuple[str, ...] | None = None
    min_ver: str | None = None
    max_ver: str | None = None
    ciphers: str | None = None
    ciphersuites: str | None = None
    no_tickets: bool | None = None
    no_versions: frozenset[str] = frozenset()
    extras: tuple[tuple[str, str], ...] = ()  # accepted without effect (npn, curves, ...)
    ca_ignore_err: frozenset[int] | None = None  # X509 errors ignored above the leaf
    crt_ignore_err: frozenset[int] | None = None  # X509 errors ignored on the leaf
    dh_file: str | None = None  # DH parameters for DHE ciphers (global `ssl-dh-param-file`)

    def over(self, base: SslOptions) -> SslOptions:
        """These options with `base` filling what is not set here."""
        return SslOptions(
            verify=self.verify if self.verify is not None else base.verify,
            ca_file=self.ca_file if self.ca_file is not None else base.ca_file,
            crl_file=self.crl_file if self.crl_file is not None else base.crl_file,
            alpn=self.alpn if self.alpn is not None else base.alpn,
            min_ver=self.min_ver if self.min_ver is not None else base.min_ver,
            max_ver=self.max_ver if self.max_ver is not None else base.max_ver,
            ciphers=self.ciphers if self.ciphers is not None else base.ciphers,
            ciphersuites=self.ciphersuites if self.ciphersuites is not None else base.ciphersuites,
            no_tickets=self.no_tickets if self.no_tickets is not None else base.no_tickets,
            no_versions=self.no_versions | base.no_versions,
            extras=self.extras or base.extras,
            ca_ignore_err=self.ca_ignore_err
            if self.ca_ignore_err is not None
            else base.ca_ignore_err,
            crt_ignore_err=self.crt_ignore_err
            if self.crt_ignore_err is not None
            else base.crt_ignore_err,
            dh_file=self.dh_file if self.dh_file is not None else base.dh_file,
        )


@dataclass(frozen=True, slots=True)
class CrtListEntry:
    """One line of a crt-list file: a certificate, its own options, its SNI filters.

    A filter starting with '!' excludes that name; no positive filter means the names of the
    certificate itself. `line` is the line number in the file (0 for a directory's files).
    """

    crt: str
    options: SslOptions = SslOptions()
    sni_filters: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class BindTls:
    """`bind ... ssl`: `crt` files and directories and `crt-list` files in line order (paths
    resolved with `crt-base`), the bind's options (global defaults not merged in)."""

    enabled: bool = False
    crts: tuple[str, ...] = ()
    crt_lists: tuple[str, ...] = ()
    options: SslOptions = SslOptions()
    strict_sni: bool = False
    name: str = ""  # the bind's address words, for messages


@dataclass(frozen=True, slots=True)
class ServerTls:
    """`server ... ssl` (and `check-ssl`): the client side of a TLS connection to a server."""

    enabled: bool = False
    verify: str = "required"
    ca_file: str | None = None
    crl_file: str | None = None
    crt: str | None = None
    sni: str | None = None
    alpn: tuple[str, ...] | None = None
    check_ssl: bool = False
    reuse: bool = True
    verifyhost: str | None = None
    min_ver: str | None = None
    max_ver: str | None = None
    ciphers: str | None = None
    ciphersuites: str | None = None
    no_tickets: bool = False
    no_versions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class GlobalTls:
    """`ssl-default-bind-*`, `ssl-default-server-*`, `crt-base`, `ca-base`, `tune.ssl.*`."""

    bind_defaults: SslOptions = SslOptions()
    server_defaults: SslOptions = SslOptions()
    server_verify: str = "required"
    crt_base: str | None = None
    ca_base: str | None = None
    cachesize: int = 20000
    lifetime: float = 300.0
    maxrecord: int = 0
    default_dh_param: int = 2048
