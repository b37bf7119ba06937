"""TLS transport over a non-blocking socket (ssl.MemoryBIO + SSLObject), with the small
surface a relay half needs: recv_into / send / flush / pending / shutdown / fileno."""

from __future__ import annotations

import contextlib
import enum
import socket
import ssl
from collections.abc import Callable
from typing import cast

from nsproxy.tls import native

_RETRY = (BlockingIOError, InterruptedError)
_RECV_SIZE = 262144
_RECORD = 16384
_SEND_CAP = 16 * _RECORD  # plaintext taken by one send(): bounds the ciphertext kept in memory

# HAProxy's connection error texts for the "SSL handshake failure" log lines
ERR_EMPTY = "Connection closed during SSL handshake"
ERR_ABORT = "Connection error during SSL handshake"
ERR_TIMEOUT = "Timeout during SSL handshake"
ERR_CA_FAIL = "SSL client CA chain cannot be verified"
ERR_CRT_FAIL = "SSL client certificate not trusted"
ERR_HANDSHAKE = "SSL handshake failure"
ERR_MISMATCH_SNI = "Server presented an SSL certificate different from the expected one"

# X509 verify errors about the chain above the leaf (HAProxy logs them as a CA failure)
_CA_ERRORS = frozenset((2, 19, 20, 21, 24, 25))


class Want(enum.Enum):
    """What a handshake step needs next."""

    READ = "read"
    WRITE = "write"
    DONE = "done"


class TlsError(Exception):
    """The TLS layer failed: `reason` is HAProxy's text for the log line."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TlsTransport:
    """One TLS connection on a non-blocking socket.

    Event-loop contract:
    - `handshake()` until it returns Want.DONE; READ/WRITE say which readiness to wait for.
      Raises TlsError (the reason to log) on failure; whatever OpenSSL wrote (an alert) has
      been sent when possible. Once DONE, try `recv_into` before waiting for the socket: the
      client's first data often arrives with its Finished and is already inside OpenSSL.
    - `recv_into(buf)`: plaintext bytes read, 0 at EOF (close_notify or TCP FIN), raises
      BlockingIOError when nothing is available. After a read, `pending()` may be non-zero:
      plaintext already inside OpenSSL that epoll will never signal; read again without
      waiting.
    - `send(data)`: plaintext bytes taken (at most 256 KiB), raises BlockingIOError when the
      ciphertext of earlier sends still waits for the socket. After any send, when `want_write`
      is True, wait for the socket to be writable and call `flush()` (True once drained).
    - `shutdown()`: sends close_notify and shuts the socket's write side.
    - `close()`: always close through the transport (it keeps the TLS session resumable).
    """

    __slots__ = (
        "backlog",
        "eof",
        "fd",
        "incoming",
        "max_record",
        "obj",
        "on_close",
        "outgoing",
        "server_side",
        "sock",
        "tx_done",
        "wants",
    )

    def __init__(
        self,
        sock: socket.socket,
        ctx: ssl.SSLContext,
        server_side: bool,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
        max_record: int = 0,
    ) -> None:
        self.sock = sock
        self.max_record = max_record
        self.fd = sock.fileno()
        self.server_side = server_side
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(
            self.incoming,
            self.outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )
        self.backlog = bytearray()
        self.eof = False
        self.tx_done = False
        self.on_close: Callable[[], None] | None = None  # once, when the socket is closed
        # a server starts by reading the ClientHello; a client by writing its own
        self.wants = Want.READ if server_side else Want.WRITE

    def fileno(self) -> int:
        return self.fd

    # ---- handshake
    def handshake(self) -> Want:
        """One step of the handshake on whatever the socket has: READ, WRITE or DONE."""
        try:
            return self._step()
        except TlsError:
            raise
        except OSError as exc:  # the socket failed (reset, ...): HAProxy says handshake failure
            raise TlsError(ERR_HANDSHAKE, str(exc)) from None

    def _step(self) -> Want:
        if self.wants is Want.READ and not self.incoming.pending and self._fill() == 0:
            return Want.READ  # nothing new: no need to ask OpenSSL
        while True:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                if not self._flush_out():
                    self.wants = Want.WRITE
                    return Want.WRITE
                if self._fill() == 0:
                    self.wants = Want.READ
                    return Want.READ
                continue
            except ssl.SSLCertVerificationError as exc:
                self._flush_quietly()
                raise TlsError(self._verify_reason(exc.verify_code), str(exc)) from None
            except ssl.SSLError as exc:
                self._flush_quietly()
                if self.eof:
                    raise TlsError(ERR_EMPTY, str(exc)) from None
                raise TlsError(ERR_HANDSHAKE, str(exc)) from None
            if not self._flush_out():
                self.wants = Want.WRITE
                return Want.WRITE
            self.wants = Want.DONE
            return Want.DONE

    def _verify_reason(self, code: int) -> str:
        """HAProxy's reason: a CA failure when the refused certificate is above the leaf."""
        if not self.server_side:
            return ERR_MISMATCH_SNI if code == 62 else ERR_HANDSHAKE
        failure = native.take_failure(self.obj)
        if failure is None:
            return ERR_CA_FAIL if code in _CA_ERRORS else ERR_CRT_FAIL
        return ERR_CA_FAIL if failure[1] else ERR_CRT_FAIL

    @property
    def done(self) -> bool:
        return self.wants is Want.DONE

    # ---- socket <-> BIO
    def _fill(self) -> int:
        """Moves what the socket has into OpenSSL: bytes moved; -1 at EOF; 0 when none now.
        A socket error is raised as is (OSError)."""
        if self.eof:
            return -1
        try:
            data = self.sock.recv(_RECV_SIZE)
        except _RETRY:
            return 0
        if not data:
            self.eof = True
            self.incoming.write_eof()
            return -1
        self.incoming.write(data)
        return len(data)

    def _flush_out(self) -> bool:
        """Sends OpenSSL's output and the backlog; True when nothing is left waiting."""
        if self.outgoing.pending:
            self.backlog += self.outgoing.read()
        while self.backlog:
            try:
                sent = self.sock.send(self.backlog)
            except _RETRY:
                return False
            del self.backlog[:sent]
        return True

    def _flush_quietly(self) -> None:
        with contextlib.suppress(OSError):
            self._flush_out()

    # ---- data
    def recv_into(self, buf: bytearray | memoryview) -> int:
        view = memoryview(buf)
        size = len(view)
        got = 0
        while got < size:
            try:
                n = cast(int, self.obj.read(size - got, view[got:]))
                if n == 0:  # close_notify
                    self.eof = True
                    return got
                got += n
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.eof = True
                return got
            except ssl.SSLError as exc:
                if got:
                    return got
                raise ConnectionError(f"TLS read failed: {exc}") from None
            if self.outgoing.pending:
                self._flush_out()  # a KeyUpdate answer, session tickets
            moved = self._fill()
            if moved == 0:
                if got:
                    return got
                raise BlockingIOError
            if moved < 0 and not self.incoming.pending:
                return got
        return got

    def pending(self) -> int:
        """Bytes already read from the socket but not yet returned by recv_into."""
        return self.obj.pending() + self.incoming.pending

    def send(self, data: bytes | bytearray | memoryview) -> int:
        if self.backlog and not self._flush_out():
            raise BlockingIOError
        view = memoryview(data)[:_SEND_CAP]
        step = self.max_record or len(view)
        taken = 0
        try:
            while taken < len(view):  # `tune.ssl.maxrecord`: at most that much per record
                taken += self.obj.write(view[taken : taken + step])
        except ssl.SSLError as exc:
            raise BrokenPipeError(f"TLS write failed: {exc}") from None
        self._flush_out()
        return taken

    @property
    def want_write(self) -> bool:
        """Ciphertext waits for the socket: wait for writability and call flush()."""
        return bool(self.backlog) or self.outgoing.pending > 0

    def flush(self) -> bool:
        return self._flush_out()

    def shutdown(self) -> None:
        """close_notify, then FIN (the write side only: the peer may still send)."""
        if self.tx_done:
            return
        self.tx_done = True
        if self.done:
            with contextlib.suppress(ssl.SSLError, ValueError):
                self.obj.unwrap()
        with contextlib.suppress(OSError):
            self._flush_out()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Closes the socket. A finished handshake is first marked as shut down in OpenSSL
        (nothing more is sent): OpenSSL drops from its session cache the sessions of
        connections freed without that, which would end resumption for clients that close
        without close_notify."""
        if self.done and not self.tx_done:
            self.tx_done = True
            with contextlib.suppress(ssl.SSLError, ValueError):
                self.obj.unwrap()
        self.sock.close()
        closed, self.on_close = self.on_close, None
        if closed is not None:
            closed()

    # ---- facts
    @property
    def sni(self) -> str | None:
        """The name the client asked for (server side) or sent (client side)."""
        if self.server_side:
            return getattr(self.obj, "sni", None)
        return self.obj.server_hostname


class RawTransport:
    """A plain socket with TlsTransport's surface, so one relay code path serves both."""

    __slots__ = ("fd", "sock")

    want_write = False

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()

    def fileno(self) -> int:
        return self.fd

    def recv_into(self, buf: bytearray | memoryview) -> int:
        return self.sock.recv_into(buf)

    def pending(self) -> int:
        return 0

    def send(self, data: bytes | bytearray | memoryview) -> int:
        return self.sock.send(data)

    def flush(self) -> bool:
        return True

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()
