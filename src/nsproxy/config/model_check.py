"""HTTP health checks as configured: `option httpchk`, `http-check send|expect|disable-on-404`."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpExpect:
    """`http-check expect [!] status|rstatus|string|rstring PATTERN`."""

    kind: str
    pattern: str
    negate: bool = False
    regex: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class HttpCheckCfg:
    """The request an HTTP check sends and what its answer must be.

    `version` may carry extra header lines the old way (`HTTP/1.0\\r\\nHost: x`), as HAProxy
    still accepts. Without `expect`, a 2xx or 3xx status passes.
    """

    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    expect: HttpExpect | None = None
    disable_on_404: bool = False

    def request(self) -> bytes:
        """The bytes HAProxy 2.6 sends (names lower-case; `connection: close` in HTTP/1.1)."""
        lines = [f"{self.method} {self.uri} {self.version}"]
        lines += [f"{n.lower()}: {v}" for n, v in self.headers]
        if self.body:
            lines.append(f"content-length: {len(self.body.encode())}")
        if self.version.upper().startswith("HTTP/1.1"):
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n" + self.body).encode("utf-8", "surrogateescape")
