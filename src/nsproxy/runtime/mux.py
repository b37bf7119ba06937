"""What a stream asks of its mux, whichever it is (pass-through, HTTP/1.1, an answer)."""

from __future__ import annotations

from typing import Protocol


class Mux(Protocol):
    """The part of a mux the stream's timers, counters and close need."""

    @property
    def bytes_in(self) -> int: ...

    @property
    def bytes_out(self) -> int: ...

    @property
    def client_eof(self) -> bool: ...

    @property
    def server_eof(self) -> bool: ...

    @property
    def expects_client(self) -> bool:
        """`timeout client` applies now (data awaited from, or stuck towards, the client)."""

    @property
    def expects_server(self) -> bool:
        """`timeout server` applies now."""

    def timed_out(self, client_side: bool) -> None:
        """An idle timeout ran out on one side: end the stream as this mux must."""

    def stop(self) -> None:
        """Drops the mux's poller callbacks; the stream closes the sockets."""
