"""The clock streams read and arm timers on: the event loop, or a test's manual clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Timer(Protocol):
    """A pending call that can be cancelled."""

    def cancel(self) -> None: ...

    def when(self) -> float: ...


class Clock(Protocol):
    """What the runtime needs of time: asyncio's loop satisfies it as it is."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], Any]) -> Timer: ...

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer: ...
