"""Variables across the requests of one keep-alive connection, beside HAProxy 2.6: `txn.`,
`req.` and `res.` variables belong to one request, `sess.` ones to the connection."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from lab.netlab import Lab, free_port
from sample.haproxy_ref import needs_haproxy

CONFIG = """global
    {stats}
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    bind 127.0.0.1:{port}
    http-request set-var(txn.t) str(T) if {{ path /first }}
    http-request set-var(req.r) str(R) if {{ path /first }}
    http-request set-var(sess.s) str(S) if {{ path /first }}
    http-request return status 200 content-type text/plain lf-string "{answer}"
"""
ANSWER = "t=%[var(txn.t)] r=%[var(req.r)] s=%[var(sess.s)]"

RAW = (
    b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
    b"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
)


def _exchange(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(RAW)
        out = b""
        while data := c.recv(65536):
            out += data
    return out


@needs_haproxy
def test_transaction_variables_start_empty_on_each_request_like_haproxy(lab: Lab) -> None:
    pn, ph = free_port(), free_port()
    lab.proxy(CONFIG.format(stats="", port=pn, answer=ANSWER))
    stats = Path(tempfile.mkdtemp(prefix="nsp-vars-")) / "stats"
    lab.haproxy(CONFIG.format(stats=f"stats socket {stats}", port=ph, answer=ANSWER), str(stats))
    got, want = _exchange(pn), _exchange(ph)
    assert got == want
    assert got.endswith(b"t= r= s=S")
    assert b"t=T r=R s=S" in got
