"""The HTTP/1.1 mux: one request and its response between the client and a server connection.

The stream's analysers have read and rewritten the request head; this mux sends it, streams
the request body, reads the response through the codec, runs the response rules, streams
the body back, and tells the stream when the exchange is over (`Stream.txn_end`). Bytes wait
in one outgoing buffer per side; while a side's buffer is not empty the other side is not
read (back-pressure), so a large body never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nsproxy.http.compression import Compressor, compresses, rewrite_response
from nsproxy.ops import stat_counters
from nsproxy.proto.h1 import connection as h1conn
from nsproxy.proto.h1.errors import H1Error
from nsproxy.proto.h1.head import (
    CHUNKED,
    LENGTH,
    RequestHead,
    ResponseHead,
    htx_end_size,
    response_htx_size,
    serialize_response,
)
from nsproxy.proto.h1.reader import Data, EndOfMessage, Event, ResponseReader, Tunnel
from nsproxy.proto.h1.writer import encode_data, encode_end
from nsproxy.runtime import relay

if TYPE_CHECKING:
    from nsproxy.runtime.conn import Connection
    from nsproxy.runtime.stream import Stream
    from nsproxy.runtime.xprt_tls import TlsTransport

_RETRY = (BlockingIOError, InterruptedError)
_READ = 65536

Recv = Callable[[int], bytes]
Send = Callable[[bytes | bytearray], int]


def _tls_recv(tx: TlsTransport) -> Recv:
    def recv(size: int) -> bytes:
        view = relay.VIEW[: min(size, len(relay.VIEW))]
        n = tx.recv_into(view)
        return bytes(view[:n])

    return recv


def io_of(conn: Connection) -> tuple[Recv, Send, TlsTransport | None]:
    """recv/send of a connection: the socket's own, or its TLS transport's (then returned
    too: the mux must honour `pending()` after reads and `want_write` after sends)."""
    tls = conn.tls
    if tls is None:
        return conn.sock.recv, conn.sock.send, None
    return _tls_recv(tls), tls.send, tls


class _TxnBytes:
    """The HTTP muxes count bytes in the transaction (as HAProxy's HTX counters do)."""

    __slots__ = ()
    stream: Stream

    @property
    def bytes_in(self) -> int:
        txn = self.stream.http
        return txn.bytes_in if txn is not None else 0

    @property
    def bytes_out(self) -> int:
        txn = self.stream.http
        return txn.bytes_out if txn is not None else 0


class H1Mux(_TxnBytes):
    """Relays one HTTP exchange; reports to its stream."""

    __slots__ = (
        "cfd",
        "clock",
        "comp",
        "crecv",
        "csend",
        "ctls",
        "poller",
        "reader",
        "req",
        "resp",
        "sfd",
        "srecv",
        "srv_chunked",
        "ssend",
        "stls",
        "stream",
        "to_cli",
        "to_srv",
        "tunnel",
    )

    def __init__(self, stream: Stream, reader: ResponseReader, req: RequestHead) -> None:
        self.stream = stream
        self.clock = stream.clock
        self.poller = stream.poller
        cli, srv = stream.cli, stream.srv_conn
        assert srv is not None
        self.crecv, self.csend, self.ctls = io_of(cli)
        self.srecv, self.ssend, self.stls = io_of(srv)
        self.cfd, self.sfd = cli.fd, srv.fd
        self.reader = reader
        self.req = req
        self.resp: ResponseHead | None = None
        self.to_cli = bytearray()
        self.to_srv = bytearray()
        self.tunnel = False
        self.comp: Compressor | None = None
        self.srv_chunked = False  # the server's response is chunked (before compression)

    # -- what the stream's timers ask ---------------------------------------------------------
    @property
    def expects_client(self) -> bool:
        """`timeout client` applies: the request body is awaited, or the client is slow to read."""
        txn = self.stream.http
        return bool(self.to_cli) or (txn is not None and not txn.req_done)

    @property
    def expects_server(self) -> bool:
        txn = self.stream.http
        return bool(self.to_srv) or (txn is not None and not txn.resp_done)

    client_eof = False
    server_eof = False

    # -- start and stop ----------------------------------------------------------------------
    def start(self, head: bytes, body: list[Event]) -> None:
        """Sends the request head and any body bytes already read with it."""
        self.to_srv += head
        self._request_events(body, False)  # (counted when the analysers read them)
        self._flush_srv()
        if self.stream.closed:
            return
        self._resume_client()
        self.poller.set_reader(self.sfd, self._on_server)
        self._response_events(self.reader.expect(self.req))

    def stop(self) -> None:
        p = self.poller
        p.clear_reader(self.cfd)
        p.clear_writer(self.cfd)
        p.clear_reader(self.sfd)
        p.clear_writer(self.sfd)

    # -- client side ---------------------------------------------------------------------------
    def _resume_client(self) -> None:
        txn = self.stream.http
        if txn is not None and not txn.req_done and not self.to_srv:
            self.poller.set_reader(self.cfd, self._on_client)
            tls = self.ctls
            if tls is not None and tls.pending():  # plaintext epoll cannot see
                self.poller.loop.call_soon(self._client_again)
        else:
            self.poller.clear_reader(self.cfd)

    def _on_client(self, _ev: int = 0) -> None:
        s = self.stream
        try:
            data = self.crecv(_READ)
        except _RETRY:
            return
        except OSError:
            s.close("CD")
            return
        s.last_c = self.clock.time()
        h1 = s.h1
        assert h1 is not None
        try:
            events = h1.feed(data) if data else h1.feed_eof()
        except H1Error:
            s.close("CD")
            return
        if not data and not (s.http and s.http.req_done):
            s.close("CD")
            return
        self._request_events(events)
        self._flush_srv()
        if not s.closed:
            self._resume_client()

    def _client_again(self) -> None:
        s = self.stream
        live = not s.closed and s.mux is self and not self.to_srv
        if live and s.http is not None and not s.http.req_done:
            self._on_client()

    def _request_events(self, events: list[Event], count: bool = True) -> None:
        txn = self.stream.http
        assert txn is not None
        framing = self.req.framing
        for ev in events:
            if isinstance(ev, Data):
                if count:
                    txn.bytes_in += len(ev.data)
                self.to_srv += encode_data(framing, ev.data)
            elif isinstance(ev, EndOfMessage):
                self.to_srv += encode_end(framing, ev.trailers)
                txn.req_done = True
                if count and framing == CHUNKED:
                    txn.bytes_in += htx_end_size(framing, ev.trailers)

    def _flush_srv(self) -> None:
        tls = self.stls
        if not self.to_srv and (tls is None or not tls.want_write):
            return
        try:
            if tls is not None and tls.want_write and not tls.flush():
                sent = 0
            else:
                sent = self.ssend(self.to_srv) if self.to_srv else 0
        except _RETRY:
            sent = 0
        except OSError:
            self._server_failed()
            return
        del self.to_srv[:sent]
        if self.to_srv or (tls is not None and tls.want_write):
            self.poller.clear_reader(self.cfd)
            self.poller.set_writer(self.sfd, self._on_server_writable)
        else:
            self.poller.clear_writer(self.sfd)

    def _on_server_writable(self, _ev: int = 0) -> None:
        self._flush_srv()
        tls = self.stls
        if not self.stream.closed and not self.to_srv and (tls is None or not tls.want_write):
            self.stream.last_s = self.clock.time()
            self._resume_client()

    # -- server side ---------------------------------------------------------------------------
    def _on_server(self, _ev: int = 0) -> None:
        s = self.stream
        try:
            data = self.srecv(_READ)
        except _RETRY:
            return
        except OSError:
            self._server_failed()
            return
        s.last_s = self.clock.time()
        try:
            events = self.reader.feed(data) if data else self.reader.feed_eof()
        except H1Error:
            self._bad_response()
            return
        if not data and not events and self.resp is None:
            self._server_failed()
            return
        self._response_events(events)
        if s.closed:
            return
        if not data:
            if not (s.http and s.http.resp_done):
                s.close("SD")
                return
            self.poller.clear_reader(self.sfd, sync=True)

    def _server_again(self) -> None:
        if not self.stream.closed and self.stream.mux is self and not self.to_cli:
            self._on_server()

    def _response_events(self, events: list[Event]) -> None:
        s = self.stream
        txn = s.http
        assert txn is not None
        for ev in events:
            if isinstance(ev, ResponseHead):
                if ev.status < 200 and ev.status != 101:  # interim: relayed as it is
                    self.to_cli += self.stream.client_head(serialize_response(ev))
                    continue
                if not self._final_head(ev):
                    return
                if txn.answered:  # an http-response rule answered: the body goes nowhere
                    self._drop_body(events, ev)
                    break
            elif isinstance(ev, Data):
                assert self.resp is not None
                data = ev.data
                txn.bytes_out += len(data)  # as HAProxy: the bytes before compression
                if self.comp is not None:
                    data = self._compressed(self.comp, data)
                self.to_cli += encode_data(self.resp.framing, data)
            elif isinstance(ev, EndOfMessage):
                assert self.resp is not None
                if self.comp is not None:
                    last = self.comp.finish()
                    stat_counters.compressed(s, 0, len(last), self.comp.bypass, True)
                    self.to_cli += encode_data(self.resp.framing, last)
                self.to_cli += encode_end(self.resp.framing, ev.trailers)
                txn.resp_done = True
                if self.srv_chunked:
                    txn.bytes_out += htx_end_size(CHUNKED, ev.trailers)
            elif isinstance(ev, Tunnel):
                txn.bytes_out += len(ev.data)
                self.to_cli += ev.data
        self._flush_cli()

    def _drop_body(self, events: list[Event], head: ResponseHead) -> None:
        """The body read with a response the proxy answered instead of: counted (HAProxy
        read it), never sent."""
        txn = self.stream.http
        assert txn is not None
        after = False
        for ev in events:
            if ev is head:
                after = True
            elif after and isinstance(ev, Data):
                txn.bytes_out += len(ev.data)

    def _compressed(self, comp: Compressor, data: bytes) -> bytes:
        out = comp.feed(data)
        stat_counters.compressed(self.stream, len(data), len(out), comp.bypass, False)
        return out

    def _compress(self, comp: tuple[str, tuple[str, ...]], resp: ResponseHead) -> None:
        """The compression filter's look at the response head, once the response rules and
        the persistence cookie are done with it."""
        algo, types = comp
        length = resp.content_length if resp.framing == LENGTH else None
        if compresses(types, self.req, resp, length):
            rewrite_response(resp, algo)
            self.comp = Compressor(algo)

    def _final_head(self, resp: ResponseHead) -> bool:
        """Response rules, Connection handling; False when the stream ended meanwhile."""
        s = self.stream
        txn = s.http
        assert txn is not None
        txn.t_resp = self.clock.time()
        txn.status = resp.status
        self.resp = txn.resp = resp
        txn.bytes_out += response_htx_size(resp)  # as received, before any rule (HAProxy's)
        self.srv_chunked = resp.framing == CHUNKED
        answer = s.http_response_rules()
        if answer is not None:
            if s.closed:
                return False
            self.to_cli += answer
            txn.status = int(answer[9:12])
            txn.resp_done = txn.answered = True
            txn.reuse_server = False
            return True
        s.http_captured_response()
        s.http_cookie_response()
        if txn.comp is not None:
            self._compress(txn.comp, resp)
        txn.keep_client = h1conn.prepare_response(self.req, resp, txn.mode_client)
        h1conn.restore_framing(resp)
        txn.reuse_server = h1conn.server_reusable(self.req, resp, txn.mode_server)
        self.to_cli += s.client_head(s.http_after_response(serialize_response(resp)))
        if h1conn.tunnels(self.req, resp):
            self.tunnel = True
        return True

    def _flush_cli(self) -> None:
        s = self.stream
        tls = self.ctls
        if self.to_cli or (tls is not None and tls.want_write):
            try:
                if tls is not None and tls.want_write and not tls.flush():
                    sent = 0
                else:
                    sent = self.csend(self.to_cli) if self.to_cli else 0
            except _RETRY:
                sent = 0
            except OSError:
                s.close("CD")
                return
            del self.to_cli[:sent]
            if self.to_cli or (tls is not None and tls.want_write):
                self.poller.clear_reader(self.sfd)
                self.poller.set_writer(self.cfd, self._on_client_writable)
                return
            self.poller.clear_writer(self.cfd)
        txn = s.http
        if self.tunnel:
            s.http_tunnel()
        elif txn is not None and txn.resp_done and txn.req_done:
            s.txn_end()
        elif txn is not None and txn.resp_done:
            # the response ended first (an early answer): the request body is not awaited
            txn.keep_client = False
            s.txn_end()
        else:
            self.poller.set_reader(self.sfd, self._on_server)
            tls = self.stls
            if tls is not None and tls.pending():  # plaintext epoll cannot see
                self.poller.loop.call_soon(self._server_again)

    def _on_client_writable(self, _ev: int = 0) -> None:
        self.stream.last_c = self.clock.time()
        self._flush_cli()

    # -- failures ------------------------------------------------------------------------------
    def _server_failed(self) -> None:
        """The server closed or failed: 502 if no response began, else the client is cut."""
        s = self.stream
        if self.resp is None:
            s.http_error(502, "SH")
        else:
            s.close("SD")

    def _bad_response(self) -> None:
        s = self.stream
        if self.resp is None:
            s.http_error(502, "PH")
        else:
            s.close("SD")

    def timed_out(self, client_side: bool) -> None:
        """The stream's idle timer ran out on one side."""
        s = self.stream
        if not client_side and self.resp is None:
            s.http_error(504, "sH")
        else:
            s.close("cD" if client_side else "sD")


class AnswerMux(_TxnBytes):
    """Sends the proxy's own answer to the client, then ends the transaction."""

    __slots__ = ("data", "fd", "poller", "send", "stream", "tls")

    client_eof = False
    server_eof = False
    expects_server = False

    def __init__(self, stream: Stream, data: bytes) -> None:
        self.stream = stream
        self.poller = stream.poller
        _, self.send, self.tls = io_of(stream.cli)
        self.fd = stream.cli.fd
        self.data = data

    @property
    def expects_client(self) -> bool:
        return True

    def start(self) -> None:
        self.poller.clear_reader(self.fd)
        self._flush()

    def _flush(self, _ev: int = 0) -> None:
        tls = self.tls
        try:
            if tls is not None and tls.want_write and not tls.flush():
                sent = 0
            else:
                sent = self.send(self.data) if self.data else 0
        except _RETRY:
            sent = 0
        except OSError:
            self.stream.close("CD")
            return
        self.data = self.data[sent:]
        if self.data or (tls is not None and tls.want_write):
            self.poller.set_writer(self.fd, self._flush)
            return
        self.poller.clear_writer(self.fd)
        self.stream.txn_end()

    def timed_out(self, client_side: bool) -> None:
        self.stream.close("cD")

    def stop(self) -> None:
        self.poller.clear_writer(self.fd)
