"""The one error the HTTP/1.1 codec raises, with the status HAProxy answers for it."""

from __future__ import annotations


class H1Error(Exception):
    """A message HAProxy refuses: `status` is its answer (400/422 to a client, 502 for a server)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
