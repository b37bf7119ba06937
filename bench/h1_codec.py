"""Micro-benchmark: HTTP/1.1 heads parsed (and re-serialized) per second by the codec."""

from __future__ import annotations

import argparse
import time

from nsproxy.proto.h1.connection import HttpMode, prepare_request
from nsproxy.proto.h1.head import serialize_request
from nsproxy.proto.h1.reader import RequestReader, ResponseReader

REQUEST = (
    b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n"
    b"User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
)
BROWSER = (
    b"GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; "
    b"Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\nAccept: text/html,application/"
    b"xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: a=b; c=d\r\n"
    b"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\n\r\n"
)
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def bench(name: str, fn: object, n: int, rounds: int = 5) -> None:
    """Best of `rounds` runs of n iterations (the machine is shared: the best is the signal)."""
    dt = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn(n)  # type: ignore[operator]
        dt = min(dt, time.perf_counter() - t)
    print(f"{name:<40} {n / dt:>12,.0f} /s  ({dt / n * 1e6:.2f} us each)")


def parse_requests(raw: bytes) -> object:
    def run(n: int) -> None:
        for _ in range(n):
            r = RequestReader()
            r.feed(raw)

    return run


def keepalive(raw: bytes) -> object:
    def run(n: int) -> None:
        r = RequestReader()
        for _ in range(n):
            ev = r.feed(raw)
            head = ev[0]
            prepare_request(head, HttpMode.KEEP_ALIVE)  # type: ignore[arg-type]
            serialize_request(head)  # type: ignore[arg-type]
            r.next_message()

    return run


def responses(n: int) -> None:
    req = RequestReader().feed(REQUEST)[0]
    r = ResponseReader()
    for _ in range(n):
        r.expect(req)  # type: ignore[arg-type]
        r.feed(RESPONSE)


def httptools_reference(raw: bytes) -> object:
    """llhttp through httptools, tokens only (no framing rules, no HAProxy verdicts)."""
    import httptools  # type: ignore[import-untyped]

    class Tokens:
        def __init__(self) -> None:
            self.headers: list[tuple[bytes, bytes]] = []

        def on_url(self, url: bytes) -> None:
            self.url = url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name.lower(), value))

    def run(n: int) -> None:
        for _ in range(n):
            t = Tokens()
            p = httptools.HttpRequestParser(t)
            p.feed_data(raw)
            p.get_method()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=50_000)
    n = ap.parse_args().n
    bench("request head (4 headers), parse", parse_requests(REQUEST), n)
    bench("request head (10 headers), parse", parse_requests(BROWSER), n)
    bench("keep-alive: parse+connection+serialize", keepalive(REQUEST), n)
    bench("keep-alive browser: parse+serialize", keepalive(BROWSER), n)
    bench("response (CL body), parse", responses, n)
    try:
        bench("reference: httptools tokens, 4 headers", httptools_reference(REQUEST), n)
        bench("reference: httptools tokens, 10 headers", httptools_reference(BROWSER), n)
    except ImportError:
        pass


if __name__ == "__main__":
    main()
