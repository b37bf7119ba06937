"""The arithmetic behind `show stat`'s time averages, downtime and check counters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lab.configtext import parse_text
from nsproxy.ops import stat_counters
from nsproxy.runtime.backend import Backend, Server
from nsproxy.runtime.objects import Counters


def _fill(samples: list[int]) -> Counters:
    c = Counters()
    for v in samples:
        c.time_samples += 1
        n = stat_counters.SAMPLES if c.time_samples > stat_counters.SAMPLES else 0
        c.q_time = stat_counters.freq.swrate_add_dynamic(c.q_time, n, v)
    return c


@given(st.lists(st.integers(0, 60_000), min_size=1, max_size=stat_counters.SAMPLES))
def test_average_is_the_mean_rounded_up_while_the_window_fills(samples: list[int]) -> None:
    c = _fill(samples)
    expected = -(-sum(samples) // len(samples))
    assert stat_counters.averages(c)[0] == expected


@given(st.integers(0, 10_000), st.integers(1, 3000))
def test_a_constant_stays_the_average_past_the_window(value: int, extra: int) -> None:
    c = _fill([value] * (stat_counters.SAMPLES + extra))
    assert abs(stat_counters.averages(c)[0] - value) <= 1


def test_no_sample_averages_zero() -> None:
    assert stat_counters.averages(Counters()) == (0, 0, 0, 0)


def test_downtime_counts_each_down_period_and_the_current_one() -> None:
    c = Counters()
    for running, at in [(False, 100.0), (True, 130.0), (True, 140.0), (False, 200.0)]:
        stat_counters.mark_state(c, running, at)
    assert c.chk_down == 2  # two UP -> DOWN transitions; UP again twice is one
    assert stat_counters.downtime(c, 200.0) == 30
    assert stat_counters.downtime(c, 215.5) == 45
    stat_counters.mark_state(c, True, 220.0)
    assert stat_counters.downtime(c, 999.0) == 50


def test_check_failures_count_only_while_up() -> None:
    config, _ = parse_text("backend b\n  server s 127.0.0.1:1 check\n")
    assert config is not None
    be = Backend(config.proxies[0])
    srv = Server(config.proxies[0].servers[0], be, None)
    stat_counters.check_done(srv, False, 2, 2)  # up: counted
    stat_counters.check_done(srv, False, 1, 2)  # going up: not
    stat_counters.check_done(srv, True, 2, 2)  # passed: not
    assert srv.stats.chk_fail == 1
