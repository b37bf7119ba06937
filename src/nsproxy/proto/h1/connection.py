"""Connection management as HAProxy 2.6 applies it per http-keep-alive/http-server-close/httpclose.

HAProxy strips `close` and `keep-alive` from Connection headers on the way in (the head parser
does that) and appends its own `connection:` header, last, on the way out. Measured rules:
the server side is kept only under http-keep-alive; the client side is kept when the client
asked for it, the mode is not httpclose, the request had no Content-Length next to a
Transfer-Encoding, and the response has a length. `close` is announced only in HTTP/1.1
messages, `keep-alive` only when either side speaks HTTP/1.0. Upgrades are left untouched.
"""

from __future__ import annotations

import enum

from nsproxy.proto.h1.head import CHUNKED, LENGTH, UNTIL_EOF, RequestHead, ResponseHead


class HttpMode(enum.Enum):
    """`option http-keep-alive` (HAProxy's default), `http-server-close` or `httpclose`."""

    KEEP_ALIVE = "http-keep-alive"
    SERVER_CLOSE = "http-server-close"
    CLOSE = "httpclose"


def prepare_request(req: RequestHead, mode: HttpMode) -> bool:
    """Add the Connection header HAProxy sends the server; True if the server side may be reused."""
    keep = mode is HttpMode.KEEP_ALIVE
    if req.upgrade:
        return keep
    if req.is_11:
        if not keep:
            req.headers.append((b"connection", b"close"))
    elif keep and not req.must_close:
        req.headers.append((b"connection", b"keep-alive"))
    return keep


def tunnels(req: RequestHead, resp: ResponseHead) -> bool:
    """After this response the connection is a tunnel (101, or 2xx to a CONNECT)."""
    return resp.status == 101 or (req.method == b"CONNECT" and 200 <= resp.status < 300)


def client_keeps(req: RequestHead, resp: ResponseHead, mode: HttpMode) -> bool:
    """Whether the client connection stays open for another request after this response."""
    return (
        req.keep_alive
        and mode is not HttpMode.CLOSE
        and not req.must_close
        and resp.framing != UNTIL_EOF
    )


def prepare_response(req: RequestHead, resp: ResponseHead, mode: HttpMode) -> bool:
    """Add the Connection header HAProxy sends the client on a final response (not a 1xx).

    Returns True if the client connection stays open after this response.
    """
    if tunnels(req, resp):
        return False
    keep = client_keeps(req, resp, mode)
    if keep:
        if not (req.is_11 and resp.is_11):
            resp.headers.append((b"connection", b"keep-alive"))
    elif resp.is_11:
        resp.headers.append((b"connection", b"close"))
    return keep


def restore_framing(resp: ResponseHead) -> None:
    """A response whose rules deleted its framing header (Content-Length or Transfer-Encoding)
    goes out chunked, with `transfer-encoding: chunked` after the other headers, as HAProxy
    2.6's H1 layer sends it (HTTP/1.0 clients included)."""
    if resp.framing != LENGTH and resp.framing != CHUNKED:
        return
    for name, _ in resp.headers:
        if name == b"content-length" or name == b"transfer-encoding":
            return
    resp.headers.append((b"transfer-encoding", b"chunked"))
    resp.framing = CHUNKED


def server_reusable(req: RequestHead, resp: ResponseHead, mode: HttpMode) -> bool:
    """Whether the server connection may go back to the pool after this exchange."""
    return (
        mode is HttpMode.KEEP_ALIVE
        and resp.keep_alive
        and resp.framing != UNTIL_EOF
        and not tunnels(req, resp)
    )
