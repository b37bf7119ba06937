"""HTTP response compression as HAProxy 2.6's compression filter decides and applies it.

Sans-I/O: the algorithm a request accepts, whether a response may be compressed, the header
rewrite of a compressed response, and a streaming compressor that flushes every block.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from nsproxy.proto.h1.head import CHUNKED, Header, RequestHead, ResponseHead

# configuration name -> the token clients use in Accept-Encoding
ALGORITHMS = {
    "identity": b"identity",
    "deflate": b"deflate",
    "raw-deflate": b"deflate",
    "gzip": b"gzip",
}
_WBITS = {"deflate": zlib.MAX_WBITS, "raw-deflate": -zlib.MAX_WBITS, "gzip": zlib.MAX_WBITS + 16}
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")
_QVALUE = re.compile(rb"[ \t]*([01](?:\.[0-9]{0,3})?)")
_ETAG = re.compile(rb'(W/)?"[^"]*"')
COMPRESSIBLE = frozenset((200, 201, 202, 203))


@dataclass(frozen=True, slots=True)
class CompressionCfg:
    """`compression algo|type|offload` of one proxy (algorithms and types in line order)."""

    algos: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    offload: bool = False


def effective(fe: CompressionCfg | None, be: CompressionCfg | None) -> CompressionCfg | None:
    """A stream's settings: the backend's algorithms and types first, else the frontend's;
    `offload` from either."""
    if fe is None and be is None:
        return None
    algos = be.algos if be is not None and be.algos else fe.algos if fe is not None else ()
    types = be.types if be is not None and be.types else fe.types if fe is not None else ()
    offload = (be is not None and be.offload) or (fe is not None and fe.offload)
    return CompressionCfg(algos, types, offload)


def _values(headers: list[Header], name: bytes) -> list[bytes]:
    """The comma-separated elements of every `name` header."""
    return [part.strip(b" \t") for n, v in headers if n == name for part in v.split(b",")]


def _qvalue(params: bytes) -> int:
    """The q-value (0..1000) among `;`-separated parameters; 1000 when none is given."""
    for param in params.split(b";")[1:]:
        param = param.strip(b" \t")
        if param[:2].lower() == b"q=":
            m = _QVALUE.match(param[2:])
            if m is None:
                return 0
            whole, _, frac = m.group(1).partition(b".")
            return min(1000, int(whole) * 1000 + int((frac + b"000")[:3]))
    return 1000


def _old_mozilla(ua: bytes) -> bool:
    """`Mozilla/4` user agents other than MSIE 6 SP2 and later get no compression."""
    if not ua.startswith(b"Mozilla/4"):
        return False
    if len(ua) < 31 or ua[25:30] != b"MSIE " or ua[30:31] < b"6":
        return True
    return ua[30:31] == b"6" and (len(ua) < 54 or ua[51:54] != b"SV1")


def choose_algorithm(cfg: CompressionCfg, req: RequestHead) -> str | None:
    """The algorithm (configuration name) for the response to `req`, None for none."""
    uas = [v for n, v in req.headers if n == b"user-agent"]
    if uas and _old_mozilla(uas[0]):
        return None
    best, best_q = None, 0
    for value in _values(req.headers, b"accept-encoding"):
        token = _TOKEN.match(value)
        assert token is not None
        q = _qvalue(value[token.end() :])
        if q <= best_q:
            continue
        for algo in cfg.algos:
            if value[:1] == b"*" or token.group().lower() == ALGORITHMS[algo]:
                best, best_q = algo, q
                break
    if best is not None:
        if cfg.offload:
            req.headers[:] = [h for h in req.headers if h[0] != b"accept-encoding"]
        return best
    return "identity" if "identity" in cfg.algos else None


def compresses(
    types: tuple[str, ...], req: RequestHead, resp: ResponseHead, body_length: int | None
) -> bool:
    """Whether the response is compressed (`body_length`: its Content-Length, if it has one)."""
    if not (req.is_11 and resp.is_11) or req.method == b"HEAD":
        return False
    if resp.status not in COMPRESSIBLE or body_length == 0:
        return False
    heads = resp.headers
    if any(n == b"content-encoding" for n, _ in heads):
        return False
    if any(v.lower() == b"no-transform" for v in _values(heads, b"cache-control")):
        return False
    if not all(_ETAG.fullmatch(v) for n, v in heads if n == b"etag"):
        return False  # a malformed ETag cannot be made weak
    ctype = next((v for n, v in heads if n == b"content-type"), None)
    if ctype is None:
        return not types
    if ctype[:9].lower() == b"multipart":
        return False
    return not types or any(ctype.lower().startswith(t.lower().encode()) for t in types)


def rewrite_response(resp: ResponseHead, algo: str) -> None:
    """The head of a compressed response: chunked, `Vary`, `Content-Encoding`, weak ETags."""
    heads = [
        (n, v if n != b"etag" or v.startswith(b"W/") else b"W/" + v)
        for n, v in resp.headers
        if n != b"content-length"
    ]
    if resp.framing != CHUNKED:
        heads.append((b"transfer-encoding", b"chunked"))
    heads.append((b"vary", b"Accept-Encoding"))
    if algo != "identity":
        heads.append((b"content-encoding", ALGORITHMS[algo]))
    resp.headers = heads
    resp.framing = CHUNKED
    resp.content_length = 0


class Compressor:
    """The body of one response, compressed block by block (each block flushed)."""

    __slots__ = ("_z",)

    def __init__(self, algo: str, level: int = 1) -> None:
        self._z = (
            None if algo == "identity" else zlib.compressobj(level, zlib.DEFLATED, _WBITS[algo])
        )

    @property
    def bypass(self) -> bool:
        """`identity`: the bytes pass through (HAProxy counts them as bypassing compression)."""
        return self._z is None

    def feed(self, data: bytes) -> bytes:
        z = self._z
        if z is None or not data:
            return data
        return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        z = self._z
        return b"" if z is None else z.flush(zlib.Z_FINISH)
