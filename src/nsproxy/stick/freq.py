"""HAProxy 2.6's period-based frequency counters and sliding-window averages, same arithmetic.

A counter is three 32-bit unsigned values (curr_tick, curr_ctr, prev_ctr) kept at an offset
in a mutable int sequence, so a stick-table entry can hold its rates inline in its data list
without one object per counter. Every function takes the current time `now_ms` (milliseconds
of a monotonic clock): nothing here reads a clock.

HAProxy keeps curr_tick even (bit 0 is its rotation lock), counts with wrapping 32-bit ticks
and reads a rate as total // period where total = prev * remaining_ms + curr * period.
"""

from __future__ import annotations

from collections.abc import MutableSequence, Sequence

U32 = 0xFFFFFFFF
TICK, CURR, PREV = 0, 1, 2


def _s32(v: int) -> int:
    v &= U32
    return v - 0x100000000 if v & 0x80000000 else v


def update_period(c: MutableSequence[int], at: int, period: int, inc: int, now_ms: int) -> int:
    """update_freq_ctr_period(): add `inc` events at `now_ms`; returns this period's count."""
    now = now_ms & U32
    tick = c[at + TICK]
    if (now - tick) & U32 < period:
        curr = (c[at + CURR] + inc) & U32
        c[at + CURR] = curr
        return curr
    c[at + PREV] = c[at + CURR]
    c[at + CURR] = inc & U32
    tick = (tick + period) & U32
    if (now - tick) & U32 >= period:
        c[at + PREV] = 0
        tick = now
    c[at + TICK] = tick & ~1 & U32
    return inc & U32


def total(c: Sequence[int], at: int, period: int, pend: int, now_ms: int) -> int:
    """freq_ctr_total(): events over the last period scaled by `period` (pend < 0: flap fix)."""
    curr = c[at + CURR]
    past = c[at + PREV]
    remain = _s32(c[at + TICK] + period - now_ms)
    if remain < 0:
        remain += period
        past = curr if remain >= 0 else 0
        curr = 0
    if pend < 0:
        pend = 0
        if not curr and past <= 1:
            return past * period
    return past * remain + (curr + pend) * period


def read_period(c: Sequence[int], at: int, period: int, now_ms: int) -> int:
    """read_freq_ctr_period(): the rate shown by `show table` and the sc_*_rate fetches."""
    return total(c, at, period, -1, now_ms) // period


def read_period_flt(c: Sequence[int], at: int, period: int, now_ms: int) -> float:
    """read_freq_ctr_period_flt()."""
    return total(c, at, period, -1, now_ms) / period


def remain_period(c: Sequence[int], at: int, period: int, freq: int, pend: int, now_ms: int) -> int:
    """freq_ctr_remain_period(): events still allowed this period under `freq` per period."""
    avg = total(c, at, period, pend, now_ms) // period
    return freq - min(avg, freq)


def next_event_delay_period(
    c: Sequence[int], at: int, period: int, freq: int, pend: int, now_ms: int
) -> int:
    """next_event_delay_period(): ms to wait before the next event fits `freq`; 0 if now."""
    tot = total(c, at, period, pend, now_ms)
    limit = freq * period
    if tot < limit:
        return 0
    wait = ((tot - limit) // (freq or 1)) & U32
    return max(wait, 1)


def set_value(c: MutableSequence[int], at: int, value: int, now_ms: int) -> None:
    """What `set table ... data.X_rate V` stores: V in the current period, none before."""
    c[at + TICK] = now_ms & ~1 & U32
    c[at + PREV] = 0
    c[at + CURR] = value & U32


def swrate_add(total_sum: int, n: int, v: int) -> int:
    """swrate_add(): the new sliding-window sum after adding sample `v` to a window of `n`."""
    return (total_sum - (total_sum + n - 1) // n + v) & U32


def swrate_add_dynamic(total_sum: int, n: int, v: int) -> int:
    """swrate_add_dynamic(): as swrate_add, with n == 0 meaning a window still filling."""
    return (total_sum - ((total_sum + n - 1) // n if n else 0) + v) & U32


def swrate_avg(total_sum: int, n: int) -> int:
    """swrate_avg(): the average sample over the window."""
    return ((total_sum + n - 1) & U32) // n


class FreqCtr:
    """One standalone counter, for callers that do not keep counters inline."""

    __slots__ = ("v",)

    def __init__(self) -> None:
        self.v = [0, 0, 0]

    def update(self, period: int, inc: int, now_ms: int) -> int:
        return update_period(self.v, 0, period, inc, now_ms)

    def read(self, period: int, now_ms: int) -> int:
        return read_period(self.v, 0, period, now_ms)

    def remain(self, period: int, freq: int, pend: int, now_ms: int) -> int:
        return remain_period(self.v, 0, period, freq, pend, now_ms)

    def next_event_delay(self, period: int, freq: int, pend: int, now_ms: int) -> int:
        return next_event_delay_period(self.v, 0, period, freq, pend, now_ms)
