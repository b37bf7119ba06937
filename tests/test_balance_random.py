"""`balance random[(<draws>)]`: parsing as HAProxy 2.6 parses it, and the power-of-draws choice."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.configtext import model
from nsproxy.balance import ConsistentHashBalancer, RandomBalancer, make_balancer
from sample.haproxy_ref import HAPROXY
from test_balance import FakeServer, servers


def scripted(values: list[int]) -> Iterator[int]:
    yield from values


def test_one_draw_takes_the_ring_point_nearest_to_the_random_value() -> None:
    srvs = servers(1, 1, 1)
    ring = ConsistentHashBalancer(srvs)
    values = [0x10000000, 0x80000000, 0xF0000000, 0x3]
    it = scripted(values)
    b = RandomBalancer(srvs, draws=1, rand=lambda: next(it))
    for v in values:
        assert b.pick() is ring.server_at(v)


def test_two_draws_keep_the_server_with_fewer_connections_per_weight() -> None:
    srvs = servers(1, 1)
    ring = ConsistentHashBalancer(srvs)
    # two values landing on different servers
    a = next(v for v in range(0, 1 << 32, 1 << 20) if ring.server_at(v) is srvs[0])
    c = next(v for v in range(0, 1 << 32, 1 << 20) if ring.server_at(v) is srvs[1])
    srvs[0].cur_conns = 5
    for order in ([a, c], [c, a]):
        b = RandomBalancer(srvs, rand=scripted(order).__next__)
        assert b.pick() is srvs[1]
    # with weight 10 against 1, five connections on s1 weigh less than one on s2
    heavy = [FakeServer("s1", 1, weight=10, cur_conns=5), FakeServer("s2", 2, cur_conns=1)]
    ring = ConsistentHashBalancer(heavy)
    a = next(v for v in range(0, 1 << 32, 1 << 20) if ring.server_at(v) is heavy[0])
    c = next(v for v in range(0, 1 << 32, 1 << 20) if ring.server_at(v) is heavy[1])
    it = scripted([c, a])
    assert RandomBalancer(heavy, rand=lambda: next(it)).pick() is heavy[0]


def test_picks_follow_the_weights() -> None:
    srvs = servers(3, 1)
    b = make_balancer("random", srvs, draws=1)
    got = Counter(s.name for s in (b.pick() for _ in range(4000)) if s is not None)
    assert 2600 < got["s1"] < 3400 and got["s1"] + got["s2"] == 4000


def test_a_full_server_makes_the_connection_queue() -> None:
    srvs = [FakeServer("s1", 1, maxconn=1, cur_conns=1)]
    assert RandomBalancer(srvs).pick() is None
    srvs[0].cur_conns = 0
    assert RandomBalancer(srvs).pick() is srvs[0]


def test_down_servers_are_never_drawn() -> None:
    srvs = servers(1, 1, 1)
    srvs[1].up = False
    b = RandomBalancer(srvs)
    b.server_state_changed()
    assert {s.name for s in (b.pick() for _ in range(200)) if s is not None} == {"s1", "s3"}


@pytest.mark.parametrize(
    ("word", "draws"),
    [("random", 2), ("random()", 2), ("random(3)", 3), ("random(0x4)", 4), ("randomly", 2)],
)
def test_draws_parse(word: str, draws: int) -> None:
    px = model(f"backend b\n balance {word}\n server s 127.0.0.1:1\n").proxy("b")
    assert px is not None and px.balance == "random" and px.random_draws == draws


BAD = ["random(0)", "random(3", "random(3x)", "random(-2)", "random(x)"]


def _alerts(cmd: list[str]) -> list[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    out = []
    for line in (res.stdout + res.stderr).splitlines():
        if "[ALERT]" in line and "parsing [" in line:
            out.append(line.split(" : config : ", 1)[1])
    return out


@pytest.mark.parametrize("word", BAD)
def test_bad_draws_alert_like_haproxy(word: str, tmp_path: Path) -> None:
    cfg = tmp_path / "r.cfg"
    cfg.write_text(f"backend b\n balance {word}\n server s 127.0.0.1:1\n")
    got = _alerts([sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)])
    assert len(got) == 1 and got[0].startswith(f"parsing [{cfg}:2] : balance random : ")
    if HAPROXY is not None:
        assert got == _alerts([HAPROXY, "-c", "-f", str(cfg)])
