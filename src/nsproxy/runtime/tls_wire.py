"""TLS in the runtime: the process's certificate stores, the handshake step of `bind ... ssl`
listeners, the handshake towards `server ... ssl` servers, plaintext into the request buffer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nsproxy import proxy_protocol as pp
from nsproxy.config.model import BindCfg
from nsproxy.config.model_tls import BindTls, SslOptions
from nsproxy.ops import log
from nsproxy.ops.stat_counters import PERIOD, now_ms
from nsproxy.runtime import connect, relay
from nsproxy.runtime.analysers import Verdict
from nsproxy.runtime.xprt_tls import ERR_ABORT, ERR_EMPTY, ERR_TIMEOUT, TlsError, TlsTransport, Want
from nsproxy.sample import Hook, Sample, compile_expr
from nsproxy.stick.freq import FreqCtr
from nsproxy.tls.certapi import CertApi
from nsproxy.tls.contexts import ServerTlsClient
from nsproxy.tls.fetches import facts_of
from nsproxy.tls.store import CertStore, SniStore

if TYPE_CHECKING:
    from nsproxy.runtime.backend import Server
    from nsproxy.runtime.process import Runtime
    from nsproxy.runtime.stream import Stream
    from nsproxy.sample.context import Txn


@dataclass(eq=False, slots=True)
class TlsCounters:
    """Per frontend (client side) or per backend (server side): HAProxy's SSL stats."""

    sessions: int = 0  # handshakes that finished (ssl_sess)
    reused: int = 0  # of which resumed (ssl_reused_sess)
    failed: int = 0  # handshakes that failed (ssl_failed_handshake)


@dataclass(eq=False, slots=True)
class SslProcess:
    """The process's SSL figures in `show info`, counted as HAProxy counts them: TLS
    connections open and in all (both sides), SSL listener accepts per second, and full
    handshakes (key computations) per second on the client side and on the server side."""

    cur: int = 0
    total: int = 0
    rate: FreqCtr = field(default_factory=FreqCtr)
    rate_max: int = 0
    fe_keys: FreqCtr = field(default_factory=FreqCtr)
    fe_keys_max: int = 0
    be_keys: FreqCtr = field(default_factory=FreqCtr)
    be_keys_max: int = 0

    def opened(self, tx: TlsTransport) -> None:
        self.cur += 1
        self.total += 1
        tx.on_close = self.closed

    def closed(self) -> None:
        self.cur -= 1

    def accepted(self) -> None:
        self.rate_max = max(self.rate_max, self.rate.update(PERIOD, 1, now_ms()))

    def keyed(self, client_side: bool) -> None:
        if client_side:
            self.fe_keys_max = max(self.fe_keys_max, self.fe_keys.update(PERIOD, 1, now_ms()))
        else:
            self.be_keys_max = max(self.be_keys_max, self.be_keys.update(PERIOD, 1, now_ms()))


@dataclass(eq=False)
class TlsState:
    """TLS objects of one runtime: the certificate store (what the runtime API changes), the
    SNI store of each `bind ... ssl` line, the TLS client of each `server ... ssl`."""

    rt: Runtime
    store: CertStore = field(default_factory=CertStore)
    binds: dict[int, SniStore] = field(default_factory=dict)  # by id(BindCfg)
    servers: dict[int, tuple[Server, ServerTlsClient]] = field(default_factory=dict)
    sni_exprs: dict[str, Callable[[Txn], Sample | None]] = field(default_factory=dict)
    counters: dict[str, TlsCounters] = field(default_factory=dict)  # by proxy name
    process: SslProcess = field(default_factory=SslProcess)
    api: CertApi = field(init=False)

    def __post_init__(self) -> None:
        self.api = CertApi(self.store)
        for be in self.rt.backends.values():  # their `crt` files are in the store, as HAProxy
            for srv in be.servers:
                tls = srv.cfg.tls
                if tls is not None and (tls.enabled or tls.check_ssl):
                    self.server_client(srv)

    def bind_store(self, bind: BindCfg, http: bool = False) -> SniStore:
        """The SNI store of a bind line (all its addresses share it); raises PemError /
        ContextError (the configuration check reported them already). `http`: the frontend
        is in HTTP mode, where `h2` is not offered in ALPN (nsproxy speaks HTTP/1.1 only)."""
        found = self.binds.get(id(bind))
        if found is None:
            assert bind.tls is not None
            g = self.rt.config.global_.tls
            tls, defaults = bind.tls, g.bind_defaults
            if http:
                tls, defaults = _without_h2(bind, tls), _drop_h2(defaults)
            found = SniStore.build(self.store, tls, defaults, g, no_h2=http)
            if http:
                _warn_h2_entries(found)
            self.binds[id(bind)] = found
        return found

    def server_client(self, srv: Server) -> ServerTlsClient:
        """The TLS client of a server, made on its first connection."""
        found = self.servers.get(id(srv))
        if found is None or found[0] is not srv:
            tls = srv.cfg.tls
            assert tls is not None
            if srv.backend.cfg.mode == "http" and tls.alpn is not None and "h2" in tls.alpn:
                tls = dataclasses.replace(tls, alpn=tuple(p for p in tls.alpn if p != "h2"))
                log.warning(
                    f"server '{srv.backend.name}/{srv.name}' offers 'h2' in 'alpn': nsproxy "
                    "speaks HTTP/1.1 only, 'h2' is not offered."
                )
            bundle = self.store.bundle(tls.crt) if tls.crt else None
            found = (srv, ServerTlsClient(tls, bundle))
            self.servers[id(srv)] = found
        return found[1]

    def sni_of(self, text: str, s: Stream) -> str | None:
        """The `sni` expression of a server line, evaluated on the stream."""
        fn = self.sni_exprs.get(text)
        if fn is None:
            fn = self.sni_exprs[text] = compile_expr(text, Hook.BE_SRV_CON)
        smp = fn(s)
        if smp is None:
            return None
        value = smp.value
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("latin-1")
        return str(value) or None

    def counters_of(self, proxy: str) -> TlsCounters:
        found = self.counters.get(proxy)
        if found is None:
            found = self.counters[proxy] = TlsCounters()
        return found


def _drop_h2(opts: SslOptions) -> SslOptions:
    if opts.alpn is None or "h2" not in opts.alpn:
        return opts
    alpn = tuple(p for p in opts.alpn if p != "h2")
    return dataclasses.replace(opts, alpn=alpn or None)


def _without_h2(bind: BindCfg, tls: BindTls) -> BindTls:
    """The bind's TLS settings without `h2` in its ALPN list, with a warning when it had it."""
    opts = _drop_h2(tls.options)
    if opts is tls.options:
        return tls
    log.warning(
        f"bind '{tls.name}' at [{bind.where}] offers 'h2' in 'alpn': nsproxy speaks "
        "HTTP/1.1 only, 'h2' is not offered."
    )
    return dataclasses.replace(tls, options=opts)


def _warn_h2_entries(sni: SniStore) -> None:
    """One warning per crt-list whose entries offer `h2` (SniStore left it out)."""
    for name in dict.fromkeys(
        inst.source
        for inst in sni.instances
        if inst.entry.options.alpn is not None and "h2" in inst.entry.options.alpn
    ):
        log.warning(
            f"crt-list '{name}' offers 'h2' in 'alpn': nsproxy speaks HTTP/1.1 only, "
            "'h2' is not offered."
        )


def state(rt: Runtime) -> TlsState:
    """The TLS state of runtime `rt` (made on first use)."""
    found = rt.tls_state
    if isinstance(found, TlsState):
        return found
    made = TlsState(rt)
    rt.tls_state = made
    return made


# ---- client side: the handshake step of a `bind ... ssl` listener ---------------------------


class TlsHandshake:
    """Analyser: the TLS handshake of a `bind ... ssl` connection, after the PROXY header (as
    HAProxy: `accept-proxy` is read in clear, then TLS) and before the content rules.

    Bytes already read past the PROXY header are the start of the ClientHello: they go into
    the transport. It waits up to `timeout client` from the accept; a failure is logged once
    on the frontend's log with HAProxy's reason, counted, and the connection is closed. Once
    done, the plaintext already decrypted is put in the request buffer for the next analysers.
    """

    __slots__ = ("max_record", "sni")

    def __init__(self, sni: SniStore, max_record: int) -> None:
        self.sni = sni
        self.max_record = max_record

    def deadline(self, s: Stream) -> float | None:
        t = s.fe.cfg.timeouts.client
        return None if t is None else s.t0 + t

    def run(self, s: Stream, expired: bool) -> Verdict:
        cli = s.cli
        tx = cli.tls
        if tx is None:
            tx = TlsTransport(cli.sock, self.sni.context(), True, max_record=self.max_record)
            cli.tls = tx
            process = state(s.rt).process
            process.accepted()
            process.opened(tx)
            if s.req:
                tx.incoming.write(bytes(s.req))
                del s.req[:]
        try:
            want = tx.handshake()
        except TlsError as exc:
            return _failed(s, exc.reason)
        if want is Want.DONE:
            s.poller.clear_writer(cli.fd)
            handshake_done(s)
            facts = cli.facts = facts_of(tx.obj, tx.sni)
            st = state(s.rt)
            c = st.counters_of(s.fe.name)
            c.sessions += 1
            c.reused += facts.resumed
            if not facts.resumed:
                st.process.keyed(True)
            fill_req(s)
            return Verdict.NEXT
        if expired or s.req_error:
            return _failed(s, ERR_TIMEOUT if expired else ERR_ABORT)
        if want is Want.WRITE:
            s.poller.set_writer(cli.fd, s.resume_analyse)
        else:
            s.poller.clear_writer(cli.fd)
        return Verdict.WAIT


def handshake_done(s: Stream) -> None:
    """Times as HAProxy counts them: %Th is the handshake (`Connection.hs_ms`); in TCP mode
    it counts in %Tw; in HTTP mode the first request's %Ti starts after it (Stream.t_idle)
    while %Tt still counts from the accept."""
    ms = int((s.clock.time() - s.t0) * 1000)
    s.cli.hs_ms = ms
    s.rt.log_connect(s)
    if s.http is None:
        s.tw = ms


def _failed(s: Stream, reason: str) -> Verdict:
    """As HAProxy's embryonic sessions: one line, only with a log format (tcplog, httplog,
    log-format), not with `dontlognull` for a client that left without a word."""
    state(s.rt).counters_of(s.fe.name).failed += 1  # (HAProxy: not a request error)
    cfg = s.fe.cfg
    formatted = (
        cfg.tcplog or cfg.log_format is not None or (cfg.http is not None and cfg.http.httplog)
    )
    if formatted and not (cfg.dontlognull and reason in (ERR_EMPTY, ERR_ABORT)):
        s.log_error(reason)
    s.finish_early()
    return Verdict.STOP


def handshake_step(rt: Runtime, bind: BindCfg, http: bool = False) -> TlsHandshake | None:
    """The handshake analyser of a listener of `bind` (`http`: of an HTTP frontend), None
    when the bind is not `ssl`."""
    if bind.tls is None or not bind.tls.enabled:
        return None
    return TlsHandshake(state(rt).bind_store(bind, http), rt.config.global_.tls.maxrecord)


def fill_req(s: Stream) -> None:
    """Moves the plaintext the client's TLS transport has (on the socket and inside OpenSSL)
    into the request buffer, up to its room; EOF and errors are noted as for a raw read."""
    tx = s.cli.tls
    assert tx is not None
    room = max(len(relay.BUFFER), pp.MAX_V2_LEN) - len(s.req)
    view = relay.VIEW
    while room > 0:
        try:
            n = tx.recv_into(view[: min(room, len(view))])
        except BlockingIOError:
            return
        except OSError:
            s.req_error = True
            s.poller.clear_reader(s.cli.fd, sync=True)
            return
        if n == 0:
            s.req_eof = True
            s.poller.clear_reader(s.cli.fd, sync=True)
            return
        s.req += view[:n]
        room -= n


# ---- server side: `server ... ssl` ----------------------------------------------------------


class ServerHandshake:
    """The handshake with a server once connected, inside the connect timer: the PROXY header
    (if any) goes first in clear, then the ClientHello; a failure is a connection failure."""

    __slots__ = ("client", "s", "tx")

    def __init__(self, s: Stream, client: ServerTlsClient, tx: TlsTransport) -> None:
        self.s = s
        self.client = client
        self.tx = tx

    def step(self, _ev: int = 0) -> None:
        s, tx = self.s, self.tx
        p = s.poller
        be = s.backend.name if s.backend is not None else ""
        try:
            want = tx.handshake()
        except TlsError:
            p.clear_reader(tx.fd)
            p.clear_writer(tx.fd)
            state(s.rt).counters_of(be).failed += 1
            self.client.sessions.forget()
            s.server_tls_failed()
            return
        if want is Want.READ:
            p.clear_writer(tx.fd)
            p.set_reader(tx.fd, self.step)
        elif want is Want.WRITE:
            p.clear_reader(tx.fd)
            p.set_writer(tx.fd, self.step)
        else:
            p.clear_reader(tx.fd)
            p.clear_writer(tx.fd, sync=True)
            sc = s.srv_conn
            assert sc is not None
            facts = sc.facts = facts_of(tx.obj)
            s.tc = int((s.clock.time() - s.connect_ts) * 1000)  # %Tc: TCP and TLS, as HAProxy
            st = state(s.rt)
            c = st.counters_of(be)
            c.sessions += 1
            c.reused += facts.resumed
            if not facts.resumed:
                st.process.keyed(False)
            self.client.sessions.keep(tx.obj)
            s.server_tls_done()


def start_server_tls(s: Stream, srv: Server) -> None:
    """Starts the TLS handshake on the stream's new server connection."""
    st = state(s.rt)
    tls = srv.cfg.tls
    sc = s.srv_conn
    assert tls is not None and sc is not None
    client = st.server_client(srv)
    sni = st.sni_of(tls.sni, s) if tls.sni else None
    ctx, name, session = client.connect_params(sni)
    tx = TlsTransport(
        sc.sock, ctx, False, name, session, max_record=s.rt.config.global_.tls.maxrecord
    )
    if srv.cfg.send_proxy:
        tx.backlog += connect.proxy_header(s.rt, s, srv)
        sc.private = True
    sc.tls = tx
    st.process.opened(tx)
    sc.sessions = client.sessions
    ServerHandshake(s, client, tx).step()
