"""A small ring buffer of per-namespace counters, sampled every few seconds, for the plots."""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nsproxy.ops.stats import live_bytes

if TYPE_CHECKING:
    from nsproxy.runtime.clock import Timer
    from nsproxy.runtime.process import Runtime

SAMPLE_EVERY = 2.0  # seconds between samples
SAMPLES = 180  # kept: the last 6 minutes


@dataclass(frozen=True, slots=True)
class Sample:
    """One namespace's counters at one time (monotonic seconds)."""

    at: float
    conns: int
    total_conns: int
    bytes_in: int
    bytes_out: int
    errors: int


@dataclass(frozen=True, slots=True)
class Rate:
    """What happened between two samples, per second."""

    at: float
    conns: float
    bytes: float  # in + out
    errors: float


class NetnsHistory:
    """Samples every namespace of a runtime on its loop; `rates` gives the plotted series."""

    def __init__(self, rt: Runtime, every: float = SAMPLE_EVERY, keep: int = SAMPLES) -> None:
        self.rt = rt
        self.every = every
        self.keep = keep
        self.series: dict[str, collections.deque[Sample]] = {}
        self.timer: Timer | None = None

    def start(self) -> None:
        self.sample()
        self.rt.on_stop.append(self.stop)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def sample(self) -> None:
        rt = self.rt
        now = rt.clock.time()
        live = live_bytes(rt)
        seen = set()
        for ns in rt.registry:
            a, b = live.get(ns, (0, 0))
            ring = self.series.setdefault(ns.name, collections.deque(maxlen=self.keep))
            ring.append(
                Sample(now, ns.conns, ns.total_conns, ns.bytes_in + a, ns.bytes_out + b, ns.errors)
            )
            seen.add(ns.name)
        for name in list(self.series):
            if name not in seen:
                del self.series[name]
        self.timer = rt.clock.call_later(self.every, self.sample)

    def rates(self, name: str) -> list[Rate]:
        """Per-second rates between consecutive samples of namespace `name`, oldest first."""
        ring = list(self.series.get(name, ()))
        out = []
        for prev, cur in itertools.pairwise(ring):
            dt = cur.at - prev.at
            if dt <= 0:
                continue
            out.append(
                Rate(
                    cur.at,
                    max(0, cur.total_conns - prev.total_conns) / dt,
                    max(0, cur.bytes_in + cur.bytes_out - prev.bytes_in - prev.bytes_out) / dt,
                    max(0, cur.errors - prev.errors) / dt,
                )
            )
        return out
