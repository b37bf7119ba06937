"""The master's metrics endpoint: one scrape answered with every current worker's counters."""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections.abc import Callable

from nsproxy.addresses import SockAddr
from nsproxy.config.model import Config
from nsproxy.ops import log, metrics
from nsproxy.ops.master.workers import QUERY_TIMEOUT, Worker, query


class MasterMetrics:
    """The `prometheus-exporter` socket, kept across reloads while its address is unchanged."""

    def __init__(self, sel: selectors.BaseSelector, current: Callable[[], list[Worker]]) -> None:
        self.sel = sel
        self.current = current
        self.sock: socket.socket | None = None
        self.addr: SockAddr | None = None
        self.scrapes: dict[int, socket.socket] = {}

    def socket_for(self, config: Config) -> socket.socket | None:
        """The endpoint's socket for `config`: the open one if its address is kept.

        Raises OSError (after the alert) when a new address cannot be bound.
        """
        addr = config.global_.prometheus_exporter
        if addr is None or addr == self.addr:
            return self.sock if addr is not None else None
        try:
            return metrics.open_socket(addr)
        except OSError as exc:
            log.alert(
                f"Starting prometheus-exporter: cannot bind socket ({exc.strerror}) for [{addr}]"
            )
            raise

    def use(self, sock: socket.socket | None, config: Config | None) -> None:
        """Serves on `sock` (None: no endpoint); a previous different socket is closed."""
        if sock is self.sock:
            return  # None, or the same socket already watched
        if self.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.sock)
            self.sock.close()
        self.sock = sock
        self.addr = config.global_.prometheus_exporter if config and sock else None
        if sock is not None:
            self.sel.register(sock, selectors.EVENT_READ, self._on_accept)

    def close_in_child(self) -> None:
        """In a new worker: the endpoint and scrapes are the master's."""
        for sock in [self.sock, *self.scrapes.values()]:
            if sock is not None:
                sock.close()

    def _on_accept(self) -> None:
        if self.sock is None:
            return
        try:
            sock, _ = self.sock.accept()
        except OSError:
            return
        sock.setblocking(False)
        buf = bytearray()
        self.scrapes[sock.fileno()] = sock
        self.sel.register(sock, selectors.EVENT_READ, lambda: self._on_scrape(sock, buf))

    def _on_scrape(self, sock: socket.socket, buf: bytearray) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        buf += data
        reply = metrics.http_answer(bytes(buf), self._body) if data else b""
        if reply is None:
            return
        if reply:
            with contextlib.suppress(OSError):
                sock.settimeout(QUERY_TIMEOUT)
                sock.sendall(reply)
        self.scrapes.pop(sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        sock.close()

    def _body(self) -> bytes:
        """Every current worker's counters, merged as one process's."""
        workers = self.current()
        texts = [t for w in workers if (t := query(w.cli_path, "_metrics")) is not None]
        return metrics.merge(texts, len(workers))


__all__ = ["MasterMetrics"]
