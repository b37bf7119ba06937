"""The pass-through mux of TCP mode: two relay halves between the client and server sockets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nsproxy.runtime.relay import AnyHalf, Half, TlsHalf

if TYPE_CHECKING:
    from nsproxy.runtime.conn import Connection
    from nsproxy.runtime.stream import Stream


class PassThroughMux:
    """Moves bytes both ways until both are done or one fails; reports to its stream.

    It is the relay halves' owner: reads tell the stream the side was active (its idle
    timer), a finished direction may change the stream's limits (`timeout client-fin`), an
    error ends the stream with the side that failed. The halves are chosen once, here: plain
    socket halves (splice allowed) when both sides are raw TCP, transport halves when one side
    is TLS, so the raw path pays nothing for TLS.
    """

    __slots__ = ("c2s", "clock", "poller", "s2c", "stream")

    def __init__(
        self,
        stream: Stream,
        cli: Connection,
        srv: Connection,
        head: bytes,
        splice_up: bool,
        splice_down: bool,
    ) -> None:
        self.stream = stream
        self.clock = stream.clock
        self.poller = stream.poller
        self.c2s: AnyHalf
        self.s2c: AnyHalf
        if cli.tls is None and srv.tls is None:
            self.c2s = Half(self, cli.sock, srv.sock, head, splice_up)
            self.s2c = Half(self, srv.sock, cli.sock, b"", splice_down)
        else:
            ct, st = cli.transport(), srv.transport()
            self.c2s = TlsHalf(self, ct, st, head)
            self.s2c = TlsHalf(self, st, ct, b"")
        Half.link(self.c2s, self.s2c)

    def start(self) -> None:
        if not self.c2s.pending:
            self.poller.clear_writer(self.c2s.dstfd)  # first: the reader's MOD then drops OUT
        self.c2s.start()
        self.s2c.start()

    def stop(self) -> None:
        self.c2s.stop()
        self.s2c.stop()

    expects_client = True
    expects_server = True

    def timed_out(self, client_side: bool) -> None:
        self.stream.close("cD" if client_side else "sD")

    @property
    def client_eof(self) -> bool:
        return self.c2s.eof

    @property
    def server_eof(self) -> bool:
        return self.s2c.eof

    @property
    def bytes_in(self) -> int:
        return self.c2s.nbytes

    @property
    def bytes_out(self) -> int:
        return self.s2c.nbytes

    # -- relay.Owner ------------------------------------------------------------------------
    def activity(self, half: AnyHalf) -> None:
        s = self.stream
        if half is self.c2s:
            s.last_c = self.clock.time()
        else:
            s.last_s = self.clock.time()
        if s.timer is None:
            s.arm_idle()

    def half_done(self, half: AnyHalf) -> None:
        if self.c2s.shut and self.s2c.shut:
            self.stream.close()
        else:
            self.stream.limits_changed()

    def half_error(self, half: AnyHalf, on_read: bool) -> None:
        client_side = (half is self.c2s) == on_read
        self.stream.close("CD" if client_side else "SD")
