"""Frequency counters: HAProxy 2.6's arithmetic on worked examples and invariants."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nsproxy.stick import freq
from nsproxy.stick.freq import FreqCtr


def test_worked_example_one_second_period() -> None:
    c = FreqCtr()
    assert c.update(1000, 3, 5001) == 3  # a fresh counter starts its period at an even tick
    assert c.v == [5000, 3, 0]
    assert c.update(1000, 2, 5500) == 5
    assert c.read(1000, 5900) == 5
    assert c.read(1000, 6200) == 4  # 5 events over the 800 ms of the past period still in view
    assert c.read(1000, 6999) == 0  # 5 * 1 ms // 1000
    assert c.read(1000, 7000) == 0
    assert c.update(1000, 1, 6100) == 1  # rotation: previous period keeps 5
    assert c.v == [6000, 1, 5]
    assert c.read(1000, 6500) == 3  # (5 * 500 + 1 * 1000) // 1000
    assert c.remain(1000, 10, 0, 6500) == 7
    assert c.next_event_delay(1000, 10, 0, 6500) == 0
    assert c.next_event_delay(1000, 3, 0, 6500) == 166  # (3500 - 3000) // 3


def test_two_idle_periods_forget_the_past() -> None:
    c = FreqCtr()
    c.update(1000, 9, 10000)
    c.update(1000, 1, 12500)
    assert c.v == [12500, 1, 0]


def test_flapping_correction_at_one_event() -> None:
    c = FreqCtr()
    c.update(10000, 1, 20000)
    # in the next period, a lone past event keeps reading 1 instead of fading to 0
    assert c.read(10000, 31000) == 1
    assert c.remain(10000, 5, 0, 31000) == 5  # remain has no flapping correction


def test_set_value_reads_back_for_one_period_then_fades() -> None:
    v = [0, 0, 0]
    freq.set_value(v, 0, 100, 4001)
    assert v == [4000, 100, 0]
    assert freq.read_period(v, 0, 1000, 4999) == 100
    assert freq.read_period(v, 0, 1000, 5500) == 50


def test_wrapping_ticks_behave_like_small_ones() -> None:
    a, b = FreqCtr(), FreqCtr()
    base = 0xFFFFFF00
    for t in (0, 10, 900, 1500, 2300, 2301, 5000):
        a.update(1000, 1, base + t)
        b.update(1000, 1, 1_000_000 + t)
        assert a.read(1000, base + t + 1) == b.read(1000, 1_000_000 + t + 1)


@given(
    st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 50)), max_size=40),
    st.sampled_from([1000, 10000, 60000]),
)
def test_rate_never_exceeds_events_in_two_periods(
    steps: list[tuple[int, int]], period: int
) -> None:
    c = FreqCtr()
    now = 100_000
    events: list[tuple[int, int]] = []
    for dt, n in steps:
        now += dt
        c.update(period, n, now)
        events.append((now, n))
        recent = sum(k for t, k in events if now - t < 2 * period)
        assert c.read(period, now) <= recent
        assert c.v[0] % 2 == 0


def test_swrate() -> None:
    s = 0
    for _ in range(2000):
        s = freq.swrate_add(s, 8, 100)
    assert freq.swrate_avg(s, 8) == 100
    assert freq.swrate_add_dynamic(0, 0, 7) == 7
