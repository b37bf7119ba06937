"""What fetches and log-format read from a running stream: the `Txn` protocol.

The runtime hands an object with these members to the compiled callables. Every member is a
read-only property here so a frozen or plain dataclass satisfies it; only `vars` is mutated (by
`set-var`). Addresses are `(host, port)` tuples for IP sockets, a path for UNIX sockets, or
None when unknown.
"""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from nsproxy.sample.types import Sample

if TYPE_CHECKING:
    from nsproxy.proto.h1.head import RequestHead, ResponseHead
    from nsproxy.stick.track import StreamSticks

Addr = tuple[str, int] | tuple[str, int, int, int] | str | bytes | None


class Txn(Protocol):
    """One stream as the rules engine sees it."""

    # Layer 4, client side: the client's address and the address it connected to.
    @property
    def src(self) -> Addr: ...
    @property
    def dst(self) -> Addr: ...

    # The listener (bind line) and proxies involved so far.
    @property
    def so_id(self) -> int: ...
    @property
    def so_name(self) -> str | None: ...
    @property
    def frontend_name(self) -> str: ...
    @property
    def frontend_id(self) -> int: ...
    @property
    def backend_name(self) -> str | None: ...
    @property
    def backend_id(self) -> int: ...
    @property
    def server_name(self) -> str | None: ...
    @property
    def server_id(self) -> int: ...

    # Namespaces: the client connection's and the server connection's.
    @property
    def fc_netns(self) -> str | None: ...
    @property
    def bc_netns(self) -> str | None: ...

    # Buffered payload so far; *_final = no more bytes will come (shutdown, full buffer,
    # inspect-delay expired): fetches stop answering "may change".
    @property
    def req_data(self) -> bytes: ...
    @property
    def req_final(self) -> bool: ...
    @property
    def res_data(self) -> bytes: ...
    @property
    def res_final(self) -> bool: ...

    # Variables by scope ("proc", "sess", "txn", "req", "res") then name without the scope.
    @property
    def vars(self) -> MutableMapping[str, MutableMapping[str, Sample]]: ...

    # HTTP mode (None / empty in TCP mode). `http_req` is the request head the rules edit in
    # place; `http_resp` the response head once it arrived. `req_body`: the request body
    # buffered so far (`option http-buffer-request` / `wait-for-body`).
    # In TCP mode `http_req` is the head the buffered request bytes hold, if complete, and
    # `http_req_pending` tells that they are an incomplete one (more bytes may finish it).
    @property
    def http_req(self) -> RequestHead | None: ...
    @property
    def http_req_pending(self) -> bool: ...
    @property
    def http_resp(self) -> ResponseHead | None: ...
    @property
    def req_body(self) -> bytes: ...

    # Capture slots (`capture request|response header`, `declare capture`), by index; the
    # runtime sizes them from HttpCfg.req_captures/res_captures. `http-request capture` and
    # the header captures write them (values already cut to the slot's length).
    @property
    def req_captures(self) -> MutableSequence[str | None]: ...
    @property
    def res_captures(self) -> MutableSequence[str | None]: ...

    # HTTP log facts: the request's date (epoch seconds, %tr), its timers in ms (-1: did not
    # happen): %TR head received, %Ti idle before it, %Tr server response, %Ta active time;
    # %ST the status sent (-1 none, 0 outside HTTP) and %r the request line ("" if none).
    @property
    def request_ts(self) -> float: ...
    @property
    def t_request(self) -> int: ...
    @property
    def t_idle(self) -> int: ...
    @property
    def t_response(self) -> int: ...
    @property
    def t_active(self) -> int: ...
    @property
    def http_status(self) -> int: ...
    @property
    def request_line(self) -> str: ...
    @property
    def cookie_status(self) -> str: ...  # %tsc's persistence cookie flags ("--", "NI", "VN")

    # Stick tables: the tracking slots (track-sc*) and the process's tables by name; None
    # when the configuration has no stick table.
    @property
    def sticks(self) -> StreamSticks | None: ...

    def set_log_level(self, level: str) -> None:
        """`set-log-level`: a syslog level name, or "silent" (this stream is not logged)."""
        ...

    def nbsrv(self, backend: str) -> int | None:
        """Usable servers of `backend` (None: no such backend)."""
        ...

    # Log-format facts (%ci %cp come from src, %fi %fp from dst).
    @property
    def server_addr(self) -> Addr: ...  # %si %sp: the server's address
    @property
    def backend_local(self) -> Addr: ...  # %bi %bp: the server connection's local address
    @property
    def accept_ts(self) -> float: ...  # %t %T %Ts %ms: accept time, epoch seconds
    @property
    def termination(self) -> str: ...  # %ts: two characters like "--", "cD", "SC"
    @property
    def bytes_out(self) -> int: ...  # %B: bytes sent to the client
    @property
    def bytes_in(self) -> int: ...  # %U: bytes received from the client
    @property
    def t_queue(self) -> int: ...  # %Tw ms (-1: never queued... as HAProxy prints)
    @property
    def t_connect(self) -> int: ...  # %Tc ms
    @property
    def t_total(self) -> int: ...  # %Tt ms
    @property
    def conn_process(self) -> int: ...  # %ac
    @property
    def conn_frontend(self) -> int: ...  # %fc
    @property
    def conn_backend(self) -> int: ...  # %bc
    @property
    def conn_server(self) -> int: ...  # %sc
    @property
    def retries(self) -> int: ...  # %rc
    @property
    def redispatched(self) -> bool: ...  # %rc gets a "+" prefix
    @property
    def queue_server(self) -> int: ...  # %sq
    @property
    def queue_backend(self) -> int: ...  # %bq
    @property
    def unique_id(self) -> str | None: ...  # %ID
    @property
    def request_counter(self) -> int: ...  # %rt


class FinalView:
    """`txn` as HAProxy's rules see it with SMP_OPT_FINAL (switching rules, use-server, logs):
    the buffered data is taken as complete, so nothing answers "may still change"."""

    __slots__ = ("_txn",)

    def __init__(self, txn: Txn) -> None:
        self._txn = txn

    @property
    def req_final(self) -> bool:
        return True

    @property
    def res_final(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._txn, name)


def final_view(txn: Txn) -> Txn:
    """`txn` seen with every buffer taken as final (see FinalView)."""
    return cast(Txn, FinalView(txn))
