"""A stream's one deadline over a lazily moved loop timer: no timer call per request.

A keep-alive stream moves its deadline forward at every request (the keep-alive timeout, then
the idle timeout). Cancelling and re-arming a loop timer each time costs two timer-heap
operations per request; here a later deadline leaves the armed timer alone, and when it fires
early it re-arms for what is due then. Only an earlier deadline, or `drop_timer()`, touches it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nsproxy.runtime.clock import Clock, Timer

# The event loop counts time in milliseconds: a timer may run up to one early.
EARLY = 0.001


class Deadline:
    """When the stream's current wait runs out, and what then runs (at most one of each).

    The stream is its own deadline (a base class, not an object of its own: a connection
    held idle carries no extra object); it sets `clock` before calling `__init__`.
    """

    __slots__ = ("cb", "due", "handle", "handle_at")
    clock: Clock

    def __init__(self) -> None:
        self.handle: Timer | None = None
        self.handle_at = 0.0
        self.due = 0.0
        self.cb: Callable[[], Any] | None = None

    def at(self, when: float, cb: Callable[[], Any]) -> Deadline:
        """`cb` runs at `when` unless cancelled or moved first; returns self (the timer)."""
        self.due = when
        self.cb = cb
        handle = self.handle
        if handle is not None:
            if self.handle_at <= when:
                return self
            handle.cancel()
        self.handle_at = when
        self.handle = self.clock.call_at(when, self._fire)
        return self

    def when(self) -> float:
        return self.due

    def cancel(self) -> None:
        """Nothing runs; the armed timer stays for the next deadline (or fires idle)."""
        self.cb = None

    def drop_timer(self) -> None:
        """The stream is gone: the loop lets go of it now."""
        self.cb = None
        handle = self.handle
        if handle is not None:
            self.handle = None
            handle.cancel()

    def _fire(self) -> None:
        self.handle = None
        cb = self.cb
        if cb is None:
            return
        due = self.due
        if self.clock.time() + EARLY < due:
            self.handle_at = due
            self.handle = self.clock.call_at(due, self._fire)
            return
        self.cb = None
        cb()
