"""HAProxy 2.6's own answers, byte for byte as the local haproxy sends them.

Two forms exist. The H1 layer sends its stored message as written when it refuses a request
itself (bad request, 422, timeout): mixed-case names. Everything going through the HTTP layer
(deny, return, tarpit, monitor-uri, 502/503/504) leaves with lower-case names. 400 and 408
carry `Connection: close` in both forms. After a raw answer HAProxy always closes (a 422 too,
though it does not say so); after the others it closes only for 400 and 408.
"""

from __future__ import annotations

# status -> (reason, body line); the body is <html><body><h1>{status} {reason}</h1>\n{line}\n...
MESSAGES: dict[int, tuple[bytes, bytes]] = {
    200: (b"OK", b"Service ready."),
    400: (b"Bad request", b"Your browser sent an invalid request."),
    401: (b"Unauthorized", b"You need a valid user and password to access this content."),
    403: (b"Forbidden", b"Request forbidden by administrative rules."),
    404: (b"Not Found", b"The resource could not be found."),
    405: (
        b"Method Not Allowed",
        b"A request was made of a resource using a request method not supported by that resource",
    ),
    407: (b"Unauthorized", b"You need a valid user and password to access this content."),
    408: (b"Request Time-out", b"Your browser didn't send a complete request in time."),
    410: (b"Gone", b"The resource is no longer available and will not be available again."),
    413: (b"Payload Too Large", b"The request entity exceeds the maximum allowed."),
    421: (b"Misdirected Request", b"Request sent to a non-authoritative server."),
    422: (b"Unprocessable Content", b"The server cannot process the contained instructions."),
    425: (b"Too Early", b"Your browser sent early data."),
    429: (b"Too Many Requests", b"You have sent too many requests in a given amount of time."),
    500: (b"Internal Server Error", b"An internal server error occurred."),
    501: (
        b"Not Implemented",
        b".The server does not support the functionality required to fulfill the request.",
    ),
    502: (b"Bad Gateway", b"The server returned an invalid or incomplete response."),
    503: (b"Service Unavailable", b"No server is available to handle this request."),
    504: (b"Gateway Time-out", b"The server didn't respond in time."),
}

CLOSING = frozenset((400, 408))


def body(status: int) -> bytes:
    reason, line = MESSAGES[status]
    return b"<html><body><h1>%d %s</h1>\n%s\n</body></html>\n" % (status, reason, line)


def raw_answer(status: int) -> bytes:
    """The message as HAProxy's H1 layer sends it on a parse error or timeout (mixed case)."""
    b = body(status)
    conn = b"Connection: close\r\n" if status in CLOSING else b""
    return (
        b"HTTP/1.1 %d %s\r\nContent-length: %d\r\nCache-Control: no-cache\r\n"
        b"%sContent-Type: text/html\r\n\r\n%s"
    ) % (status, MESSAGES[status][0], len(b), conn, b)


def answer(status: int) -> bytes:
    """The message as deny/tarpit/monitor-uri/502/503/504 send it (lower-case names)."""
    b = body(status)
    conn = b"connection: close\r\n" if status in CLOSING else b""
    return (
        b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
        b"content-type: text/html\r\n%s\r\n%s"
    ) % (status, MESSAGES[status][0], len(b), conn, b)


def closes(status: int) -> bool:
    """HAProxy closes the client connection after sending `answer(status)`."""
    return status in CLOSING


def redirect(status: int, location: bytes, reason: bytes = b"Found") -> bytes:
    """`http-request redirect location L` (code 302 by default): empty body, no-cache."""
    return (
        b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nlocation: %s\r\ncache-control: no-cache\r\n\r\n"
    ) % (status, reason, location)


def auth_required(realm: bytes) -> bytes:
    """`http-request auth realm R`: the 401 answer with its WWW-Authenticate header."""
    b = body(401)
    return (
        b"HTTP/1.1 401 Unauthorized\r\ncontent-length: %d\r\ncache-control: no-cache\r\n"
        b'content-type: text/html\r\nwww-authenticate: Basic realm="%s"\r\n\r\n%s'
    ) % (len(b), realm, b)


MONITOR_OK = answer(200)


# at most this many body bytes per chunk (HAProxy's applets send what fits a buffer each time)
APPLET_CHUNK = 15360


def applet_body(data: bytes) -> bytes:
    """A body as HAProxy's applets (stats page, Prometheus exporter) send it after their
    `transfer-encoding: chunked` head: chunks with upper-case hex sizes, then the last one."""
    step = APPLET_CHUNK
    parts = [
        b"%X\r\n%s\r\n" % (len(p), p)
        for p in (data[i : i + step] for i in range(0, len(data), step))
    ]
    return b"".join(parts) + b"0\r\n\r\n"
