"""Certificates of the process (HAProxy's ckch store) and, per bind, the SNI index that picks
the certificate of each handshake; certificates can be replaced for new handshakes at runtime."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field, replace

from nsproxy.config.model_tls import BindTls, CrtListEntry, GlobalTls, SslOptions
from nsproxy.tls import native
from nsproxy.tls.contexts import TlsObject, server_context
from nsproxy.tls.crtlist import read_crt_list
from nsproxy.tls.pem import CertBundle, crt_dir_files, load_bundle

_HANDSHAKE_FAILURE = ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE


class CertStore:
    """Every certificate file by the path it was loaded from (None: created empty by `new ssl
    cert`), every crt-list (a file, or a `crt` directory) by name, and the binds using them."""

    def __init__(self) -> None:
        self.bundles: dict[str, CertBundle | None] = {}
        self.crt_lists: dict[str, list[CrtListEntry]] = {}
        self.binds: list[SniStore] = []

    def bundle(self, path: str) -> CertBundle:
        """The loaded certificate of `path`, read on first use; raises PemError."""
        found = self.bundles.get(path)
        if found is None:
            found = load_bundle(path)
            self.bundles[path] = found
        return found

    def crt_list(
        self, name: str, crt_base: str | None = None, ca_base: str | None = None
    ) -> list[CrtListEntry]:
        """The entries of a crt-list file or a `crt` directory, read once."""
        found = self.crt_lists.get(name)
        if found is None:
            if os.path.isdir(name):
                found = [CrtListEntry(p) for p in crt_dir_files(name)]
            else:
                found = read_crt_list(name, crt_base, ca_base)
            self.crt_lists[name] = found
        return found

    def users(self, path: str) -> int:
        """How many bind instances use certificate `path` (HAProxy's ckch instances)."""
        return sum(1 for b in self.binds for i in b.instances if i.entry.crt == path)

    def replace(self, path: str, bundle: CertBundle) -> int:
        """Installs a new certificate for `path`: new handshakes use it. Returns the number of
        instances rebuilt."""
        self.bundles[path] = bundle
        return sum(b.rebuild(path) for b in self.binds)

    def add_entry(self, list_name: str, entry: CrtListEntry) -> int:
        """`add ssl crt-list`: the entry joins the list and every bind using it."""
        self.crt_lists.setdefault(list_name, []).append(entry)
        return sum(b.add_entry(list_name, entry) for b in self.binds)


@dataclass(slots=True)
class Instance:
    """One certificate as one bind uses it: its entry, merged options, context, names."""

    entry: CrtListEntry
    source: str
    options: SslOptions
    ctx: ssl.SSLContext
    names: tuple[str, ...] = ()
    excluded: frozenset[str] = frozenset()


@dataclass(slots=True)
class SniStore:
    """The certificates of one `bind ... ssl` line and the SNI lookup among them.

    The handshake starts on the default certificate's context (the first loaded); the SNI
    callback switches to the chosen certificate's context. With `strict-sni`, a name no
    certificate matches (or no SNI at all) fails the handshake.
    """

    store: CertStore
    options: SslOptions
    strict: bool = False
    instances: list[Instance] = field(default_factory=list)
    exact: dict[str, list[Instance]] = field(default_factory=dict)
    wild: dict[str, list[Instance]] = field(default_factory=dict)
    lists: list[str] = field(default_factory=list)
    empty_ctx: ssl.SSLContext | None = None
    cache: tuple[int, float] | None = None  # tune.ssl.cachesize, tune.ssl.lifetime
    no_h2: bool = False  # `h2` is left out of every certificate's ALPN list (HTTP/1.1 only)

    @classmethod
    def build(
        cls,
        store: CertStore,
        cfg: BindTls,
        defaults: SslOptions | None = None,
        tune: GlobalTls | None = None,
        no_h2: bool = False,
    ) -> SniStore:
        """The SNI store of a bind from its model (`defaults`: `ssl-default-bind-*`, `tune`:
        the global section's TLS settings); raises PemError / ContextError."""
        sni = cls(store, cfg.options.over(defaults or SslOptions()), cfg.strict_sni, no_h2=no_h2)
        if tune is not None:
            sni.cache = (tune.cachesize, tune.lifetime)
        for crt in cfg.crts:
            if os.path.isdir(crt):
                sni.lists.append(crt)
                for entry in store.crt_list(crt):
                    sni.add(entry, crt)
            else:
                sni.add(CrtListEntry(crt), "")
        for name in cfg.crt_lists:
            sni.lists.append(name)
            for entry in store.crt_list(name):
                sni.add(entry, name)
        store.binds.append(sni)
        return sni

    def add(self, entry: CrtListEntry, source: str) -> Instance:
        bundle = self.store.bundle(entry.crt)
        opts = entry.options.over(self.options)
        if self.no_h2 and opts.alpn is not None and "h2" in opts.alpn:
            opts = replace(opts, alpn=tuple(p for p in opts.alpn if p != "h2") or None)
        inst = Instance(entry, source, opts, self._context(bundle, opts))
        self._index(inst, bundle)
        self.instances.append(inst)
        return inst

    def _context(self, bundle: CertBundle | None, opts: SslOptions) -> ssl.SSLContext:
        ctx = server_context(bundle, opts)
        if self.cache is not None:
            native.session_cache(ctx, *self.cache)
        return ctx

    def _index(self, inst: Instance, bundle: CertBundle) -> None:
        positive = [f.lower() for f in inst.entry.sni_filters if not f.startswith("!")]
        inst.excluded = frozenset(f[1:].lower() for f in inst.entry.sni_filters if f[0] == "!")
        inst.names = tuple(positive) if positive else bundle.names
        for name in inst.names:
            table = self.wild if name.startswith("*.") else self.exact
            table.setdefault(name[2:] if name.startswith("*.") else name, []).append(inst)

    def _unindex(self, inst: Instance) -> None:
        for table in (self.exact, self.wild):
            for key in [k for k, v in table.items() if inst in v]:
                table[key].remove(inst)
                if not table[key]:
                    del table[key]

    def rebuild(self, path: str) -> int:
        n = 0
        for inst in self.instances:
            if inst.entry.crt == path:
                bundle = self.store.bundle(path)
                inst.ctx = self._context(bundle, inst.options)
                self._unindex(inst)
                self._index(inst, bundle)
                n += 1
        return n

    def add_entry(self, list_name: str, entry: CrtListEntry) -> int:
        if list_name not in self.lists:
            return 0
        self.add(entry, list_name)
        return 1

    @property
    def default(self) -> Instance | None:
        return self.instances[0] if self.instances else None

    def select(self, servername: str | None) -> Instance | None:
        """The certificate for a client's SNI: exact name, then `*.` wildcard, then (unless
        strict) the default certificate."""
        if servername:
            name = servername.lower().rstrip(".")
            for inst in self.exact.get(name, ()):
                if name not in inst.excluded:
                    return inst
            _, _, parent = name.partition(".")
            for inst in self.wild.get(parent, ()) if parent else ():
                if name not in inst.excluded:
                    return inst
        if self.strict:
            return None
        return self.default

    def context(self) -> ssl.SSLContext:
        """The context a new handshake starts on (its SNI callback picks the certificate)."""
        base = self.default
        if base is None:
            if self.empty_ctx is None:
                self.empty_ctx = self._context(None, self.options)
                self.empty_ctx.sni_callback = self.sni_callback
            return self.empty_ctx
        if base.ctx.sni_callback is None:
            base.ctx.sni_callback = self.sni_callback
        return base.ctx

    def sni_callback(
        self, obj: ssl.SSLObject | ssl.SSLSocket, servername: str | None, ctx: ssl.SSLContext
    ) -> int | None:
        inst = self.select(servername)
        if isinstance(obj, TlsObject):
            obj.sni = servername
            obj.chosen = inst
        if inst is None:
            return _HANDSHAKE_FAILURE
        if inst.ctx is not obj.context:
            first_verify = obj.context.verify_mode
            obj.context = inst.ctx
            if inst.ctx.verify_mode != first_verify and isinstance(obj, ssl.SSLObject):
                # the verify mode stays the first context's after a switch: set it here
                native.set_verify(obj, inst.options.verify or "none")
        return None
