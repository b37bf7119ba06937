"""A manual clock for the runtime: timers fire when a test advances time, never by sleeping."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any


class ManualTimer:
    """A pending call on a ManualClock."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], Any]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def when(self) -> float:
        return self.deadline


class ManualClock:
    """`time()` stands still until `advance()`; due timers then run in deadline order."""

    def __init__(self, start: float = 1024.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, ManualTimer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], Any]) -> ManualTimer:
        timer = ManualTimer(when, callback)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[[], Any]) -> ManualTimer:
        return self.call_at(self.now + delay, callback)

    def pending(self) -> list[float]:
        """Deadlines of the timers still armed, soonest first."""
        return sorted(t.deadline for _, _, t in self._heap if not t.cancelled)

    def advance(self, seconds: float) -> None:
        """Moves time on, running each timer that comes due (timers they arm included)."""
        end = self.now + seconds
        while self._heap and self._heap[0][0] <= end:
            when, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self.now = max(self.now, when)
            timer.callback()
        self.now = end
