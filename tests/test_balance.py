"""Tests for nsproxy.balance against HAProxy 2.6's observed server selection."""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsproxy.balance import (
    ALGORITHMS,
    Balancer,
    ConsistentHashBalancer,
    MapHashBalancer,
    full_hash,
    make_balancer,
    source_hash,
)

ALGOS = sorted(ALGORITHMS)
VARIANTS = [(a, "map-based") for a in ALGOS] + [("source", "consistent")]


@dataclass(eq=False)
class FakeServer:
    name: str
    puid: int
    weight: int = 1
    backup: bool = False
    up: bool = True
    maxconn: int = 0
    cur_conns: int = 0

    def usable(self) -> bool:
        return self.up and self.weight > 0

    def has_free_slot(self) -> bool:
        return self.maxconn == 0 or self.cur_conns < self.maxconn


def servers(*weights: int, backups: tuple[int, ...] = ()) -> list[FakeServer]:
    """s1..sN with the given weights; `backups` holds 1-based indexes of backup servers."""
    return [FakeServer(f"s{i}", i, w, backup=i in backups) for i, w in enumerate(weights, start=1)]


def ip(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def names(b: Balancer, n: int, key: bytes | None = None) -> list[str]:
    out = []
    for _ in range(n):
        s = b.pick(key)
        out.append(s.name if s is not None else "-")
    return out


def connect(b: Balancer, key: bytes | None = None) -> FakeServer:
    s = b.pick(key)
    assert isinstance(s, FakeServer)
    s.cur_conns += 1
    b.on_connect(s)
    return s


def release(b: Balancer, s: FakeServer) -> None:
    s.cur_conns -= 1
    b.on_release(s)


def set_state(
    b: Balancer, s: FakeServer, *, up: bool | None = None, weight: int | None = None
) -> None:
    if up is not None:
        s.up = up
    if weight is not None:
        s.weight = weight
    b.server_state_changed()


# --- observed HAProxy 2.6 sequences -------------------------------------------------------


def test_roundrobin_weights_1_2_1_observed_sequence() -> None:
    b = make_balancer("roundrobin", servers(1, 2, 1))
    assert names(b, 8) == ["s2", "s1", "s2", "s3", "s2", "s1", "s2", "s3"]


def test_roundrobin_weights_1_2_3_observed_sequence() -> None:
    b = make_balancer("roundrobin", servers(1, 2, 3))
    assert " ".join(names(b, 12)) == "s3 s2 s3 s1 s3 s2 s3 s2 s3 s1 s3 s2"


def test_static_rr_weights_1_2_3_observed_sequence() -> None:
    b = make_balancer("static-rr", servers(1, 2, 3))
    assert " ".join(names(b, 12)) == "s1 s3 s2 s3 s2 s3 s1 s3 s2 s3 s2 s3"


def test_roundrobin_weight_change_and_down_up_observed_sequence() -> None:
    # Observed with haproxy 2.6.12 and `set weight`, `disable server`, `enable server`.
    srv = servers(1, 1, 1)
    s1, s2, _ = srv
    b = make_balancer("roundrobin", srv)
    assert " ".join(names(b, 5)) == "s1 s2 s3 s1 s2"
    set_state(b, s1, weight=3)
    assert " ".join(names(b, 10)) == "s3 s1 s2 s1 s1 s3 s1 s2 s1 s1"
    set_state(b, s2, up=False)
    assert " ".join(names(b, 6)) == "s3 s1 s1 s1 s3 s1"
    set_state(b, s2, up=True)
    assert " ".join(names(b, 8)) == "s1 s1 s3 s2 s1 s1 s1 s3"


SOURCE_OBSERVED = {
    "10.0.0.1": "s3",
    "10.0.0.2": "s1",
    "10.0.0.3": "s2",
    "10.0.0.4": "s3",
    "10.0.0.5": "s1",
    "10.0.0.6": "s2",
    "192.0.2.1": "s1",
    "2001:db8::1": "s1",
    "2001:db8::2": "s2",
    "2001:db8::3": "s3",
    "2001:db8::1:2:3:4": "s2",
}


@pytest.mark.parametrize(("addr", "expected"), sorted(SOURCE_OBSERVED.items()))
def test_source_map_based_observed(addr: str, expected: str) -> None:
    b = make_balancer("source", servers(1, 1, 1))
    s = b.pick(ip(addr))
    assert s is not None and s.name == expected


CONSISTENT_OBSERVED = {
    "127.0.0.1": "s2",
    "127.0.0.2": "s1",
    "127.0.0.3": "s3",
    "127.0.0.4": "s1",
    "127.0.0.5": "s2",
    "127.0.0.6": "s1",
    "127.1.2.3": "s3",
    "2001:db8::1": "s1",
    "2001:db8::2": "s3",
    "2001:db8::3": "s2",
    "2001:db8::1:2:3:4": "s1",
}


@pytest.mark.parametrize(("addr", "expected"), sorted(CONSISTENT_OBSERVED.items()))
def test_source_consistent_observed(addr: str, expected: str) -> None:
    # `hash-type consistent` alone implies the avalanche modifier.
    b = make_balancer("source", servers(1, 1, 1), hash_type="consistent")
    s = b.pick(ip(addr))
    assert s is not None and s.name == expected


def test_source_consistent_without_avalanche_observed() -> None:
    # `hash-type consistent sdbm`: raw addresses are close together, all land on s2.
    b = make_balancer("source", servers(1, 1, 1), hash_type="consistent", avalanche=False)
    assert {b.pick(ip(f"127.0.0.{i}")).name for i in range(1, 7)} == {"s2"}  # type: ignore[union-attr]


def test_source_hash_and_full_hash() -> None:
    assert source_hash(ip("10.0.0.1")) == 0x0A000001
    assert source_hash(ip("2001:db8::1:2:3:4")) == 0x20010DB8 ^ 0 ^ 0x00010002 ^ 0x00030004
    # Reference values from the C implementation.
    assert [full_hash(v) for v in (0, 1, 4096, 0xFFFFFFFF)] == [
        2874071335,
        881230262,
        1237450891,
        2120532354,
    ]


def test_source_single_server_no_hash() -> None:
    b = make_balancer("source", servers(1, 1))
    s1, s2 = b.servers
    set_state(b, s2, up=False)  # type: ignore[arg-type]
    assert {b.pick(ip(f"10.0.0.{i}")) for i in range(1, 20)} == {s1}


# --- weights ------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["roundrobin", "static-rr"])
def test_weights_1_2_3_distribution(algo: str) -> None:
    b = make_balancer(algo, servers(1, 2, 3))
    assert Counter(names(b, 300)) == {"s1": 50, "s2": 100, "s3": 150}


def test_leastconn_weights_1_2_3_distribution_with_held_connections() -> None:
    b = make_balancer("leastconn", servers(1, 2, 3))
    counts = Counter(connect(b).name for _ in range(300))
    assert counts == {"s1": 50, "s2": 100, "s3": 150}


@pytest.mark.parametrize(("algo", "hash_type"), VARIANTS)
def test_weight_zero_never_chosen(algo: str, hash_type: str) -> None:
    b = make_balancer(algo, servers(1, 0, 1), hash_type=hash_type)
    for i in range(60):
        s = connect(b, ip(f"10.0.{i}.{i}"))
        assert s.name != "s2"


@pytest.mark.parametrize(("algo", "hash_type"), VARIANTS)
def test_all_active_weight_zero_uses_backup(algo: str, hash_type: str) -> None:
    b = make_balancer(algo, servers(0, 0, 1, backups=(3,)), hash_type=hash_type)
    assert {names(b, 1, ip(f"10.0.0.{i}"))[0] for i in range(10)} == {"s3"}


def test_weight_change_at_runtime_roundrobin() -> None:
    srv = servers(1, 1)
    b = make_balancer("roundrobin", srv)
    set_state(b, srv[1], weight=3)
    assert Counter(names(b, 400)) == {"s1": 100, "s2": 300}
    set_state(b, srv[1], weight=0)
    assert set(names(b, 10)) == {"s1"}


# --- backups ------------------------------------------------------------------------------


@pytest.mark.parametrize(("algo", "hash_type"), VARIANTS)
def test_backup_takeover_and_give_back(algo: str, hash_type: str) -> None:
    srv = servers(1, 1, 1, 1, backups=(3, 4))
    s1, s2, _, _ = srv
    b = make_balancer(algo, srv, hash_type=hash_type)
    keys = [ip(f"10.0.{i}.1") for i in range(40)]
    assert {b.pick(k).name for k in keys} <= {"s1", "s2"}  # type: ignore[union-attr]
    set_state(b, s1, up=False)
    assert {b.pick(k).name for k in keys} == {"s2"}  # type: ignore[union-attr]
    set_state(b, s2, up=False)
    assert {b.pick(k).name for k in keys} == {"s3"}  # type: ignore[union-attr]
    set_state(b, s1, up=True)
    assert {b.pick(k).name for k in keys} == {"s1"}  # type: ignore[union-attr]


@pytest.mark.parametrize(("algo", "hash_type"), VARIANTS)
def test_first_backup_moves_when_it_fails(algo: str, hash_type: str) -> None:
    srv = servers(1, 1, 1, backups=(2, 3))
    s1, s2, _ = srv
    b = make_balancer(algo, srv, hash_type=hash_type)
    set_state(b, s1, up=False)
    assert set(names(b, 6, ip("10.0.0.9"))) == {"s2"}
    set_state(b, s2, up=False)
    assert set(names(b, 6, ip("10.0.0.9"))) == {"s3"}
    set_state(b, s2, up=True)
    assert set(names(b, 6, ip("10.0.0.9"))) == {"s2"}


@pytest.mark.parametrize("algo", ["roundrobin", "static-rr", "leastconn"])
def test_allbackups_uses_every_backup(algo: str) -> None:
    srv = servers(1, 1, 1, backups=(2, 3))
    b = make_balancer(algo, srv, allbackups=True)
    set_state(b, srv[0], up=False)
    seen: Counter[str] = Counter()
    for _ in range(10):
        s = connect(b)
        seen[s.name] += 1
        release(b, s)
    assert seen == {"s2": 5, "s3": 5}


def test_allbackups_source_spreads_over_backups() -> None:
    srv = servers(1, 1, 1, backups=(2, 3))
    b = make_balancer("source", srv, allbackups=True)
    set_state(b, srv[0], up=False)
    assert {b.pick(ip(f"10.0.0.{i}")).name for i in range(1, 10)} == {"s2", "s3"}  # type: ignore[union-attr]


def test_static_rr_backup_map_quirk_observed() -> None:
    # HAProxy 2.6 sizes the backup map by the first backup's weight but fills it from every
    # backup, so two weight-2 backups share the load even without allbackups (observed).
    srv = [FakeServer("s1", 1), FakeServer("b1", 2, 2, True), FakeServer("b2", 3, 2, True)]
    b = make_balancer("static-rr", srv)
    set_state(b, srv[0], up=False)
    assert names(b, 4) == ["b1", "b2", "b1", "b2"]


# --- maxconn ------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["roundrobin", "static-rr", "leastconn"])
def test_full_servers_are_skipped(algo: str) -> None:
    srv = servers(1, 1, 1)
    for s in srv:
        s.maxconn = 1
    b = make_balancer(algo, srv)
    held = {connect(b).name for _ in range(3)}
    assert held == {"s1", "s2", "s3"}
    assert b.pick() is None
    release(b, srv[1])
    assert b.pick() is srv[1]


def test_roundrobin_skipping_a_full_server_keeps_order() -> None:
    srv = servers(1, 1, 1)
    srv[0].maxconn = 1
    b = make_balancer("roundrobin", srv)
    assert connect(b).name == "s1"
    assert names(b, 6) == ["s2", "s3", "s2", "s3", "s2", "s3"]


@pytest.mark.parametrize("hash_type", ["map-based", "consistent"])
def test_source_full_target_is_not_replaced(hash_type: str) -> None:
    srv = servers(1, 1, 1)
    b = make_balancer("source", srv, hash_type=hash_type)
    key = ip("10.0.0.1")
    target = b.pick(key)
    assert isinstance(target, FakeServer)
    target.maxconn = 1
    target.cur_conns = 1
    assert b.pick(key) is None
    target.cur_conns = 0
    assert b.pick(key) is target


def test_full_first_backup_returns_none() -> None:
    srv = servers(1, 1, 1, backups=(2, 3))
    srv[1].maxconn = 1
    srv[1].cur_conns = 1
    b = make_balancer("roundrobin", srv)
    set_state(b, srv[0], up=False)
    assert b.pick() is None


# --- leastconn / first --------------------------------------------------------------------


def test_leastconn_round_robin_among_ties() -> None:
    srv = servers(1, 1, 1)
    b = make_balancer("leastconn", srv)
    seen = []
    for _ in range(7):
        s = connect(b)
        seen.append(s.name)
        release(b, s)
    assert seen == ["s1", "s2", "s3", "s1", "s2", "s3", "s1"]


def test_leastconn_prefers_fewest_connections_observed() -> None:
    # Observed with haproxy 2.6.12: weights 1,1,2, then four held connections.
    srv = servers(1, 1, 2)
    b = make_balancer("leastconn", srv)
    seen = []
    for _ in range(6):
        s = connect(b)
        seen.append(s.name)
        release(b, s)
    assert seen == ["s1", "s2", "s3", "s1", "s2", "s3"]
    held = [connect(b) for _ in range(4)]
    assert [s.name for s in held] == ["s1", "s2", "s3", "s3"]
    seen = []
    for _ in range(6):
        s = connect(b)
        seen.append(s.name)
        release(b, s)
    assert seen == ["s3"] * 6
    release(b, held.pop(0))
    assert b.pick() is srv[0]


def test_first_fills_lowest_id_first() -> None:
    srv = [
        FakeServer("a", 3, maxconn=2),
        FakeServer("b", 1, maxconn=2),
        FakeServer("c", 2, maxconn=2),
    ]
    b = make_balancer("first", srv)
    assert [connect(b).name for _ in range(6)] == ["b", "b", "c", "c", "a", "a"]
    assert b.pick() is None
    release(b, srv[2])
    assert b.pick() is srv[2]
    release(b, srv[1])
    assert b.pick() is srv[1]


def test_first_skips_down_server() -> None:
    srv = servers(1, 1, 1)
    b = make_balancer("first", srv)
    set_state(b, srv[0], up=False)
    assert names(b, 3) == ["s2", "s2", "s2"]


# --- exclude (redispatch) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("algo", "hash_type"), [v for v in VARIANTS if v != ("source", "map-based")]
)
def test_exclude_avoids_server_when_possible(algo: str, hash_type: str) -> None:
    srv = servers(1, 1, 1)
    b = make_balancer(algo, srv, hash_type=hash_type)
    for i in range(30):
        key = ip(f"10.{i}.0.1")
        first = b.pick(key)
        assert first is not None
        other = b.pick(key, exclude=first)
        assert other is not None and other is not first


@pytest.mark.parametrize(("algo", "hash_type"), VARIANTS)
def test_exclude_returns_the_only_server(algo: str, hash_type: str) -> None:
    srv = servers(1, 1)
    b = make_balancer(algo, srv, hash_type=hash_type)
    set_state(b, srv[1], up=False)
    assert b.pick(ip("10.0.0.1"), exclude=srv[0]) is srv[0]


def test_exclude_roundrobin_sequence() -> None:
    srv = servers(1, 1, 1)
    b = make_balancer("roundrobin", srv)
    assert b.pick() is srv[0]
    # s2 is extracted and consumed as if used, then requeued: it loses this turn.
    assert b.pick(exclude=srv[1]) is srv[2]
    assert names(b, 3) == ["s1", "s2", "s3"]


def test_source_map_based_ignores_exclude() -> None:
    # map_get_server_hash() has no notion of a server to avoid: a retry lands on the same one.
    srv = servers(1, 1, 1)
    b = make_balancer("source", srv)
    key = ip("10.0.0.1")
    target = b.pick(key)
    assert b.pick(key, exclude=target) is target


# --- consistent hashing -------------------------------------------------------------------


def test_consistent_hash_removal_only_moves_keys_of_removed_server() -> None:
    srv = servers(1, 2, 1, 3)
    b = make_balancer("source", srv, hash_type="consistent")
    keys = [ip(f"10.{i // 256}.{i % 256}.7") for i in range(2000)]
    before = {k: b.pick(k) for k in keys}
    assert {s.name for s in before.values() if s is not None} == {"s1", "s2", "s3", "s4"}
    set_state(b, srv[1], up=False)
    after = {k: b.pick(k) for k in keys}
    for k in keys:
        if before[k] is srv[1]:
            assert after[k] is not srv[1]
        else:
            assert after[k] is before[k]
    set_state(b, srv[1], up=True)
    assert {k: b.pick(k) for k in keys} == before


def test_consistent_hash_is_deterministic() -> None:
    keys = [ip(f"192.0.2.{i}") for i in range(1, 200)]
    b1 = make_balancer("source", servers(1, 1, 2), hash_type="consistent")
    b2 = make_balancer("source", servers(1, 1, 2), hash_type="consistent")
    assert [b1.pick(k).name for k in keys] == [b2.pick(k).name for k in keys]  # type: ignore[union-attr]


def test_source_without_key_falls_back_to_round_robin() -> None:
    b = make_balancer("source", servers(1, 1, 1))
    assert names(b, 6) == ["s1", "s2", "s3", "s1", "s2", "s3"]
    # Consistent hashing walks the ring's points: one turn visits each server weight*16 times.
    b = make_balancer("source", servers(1, 1, 1), hash_type="consistent")
    assert Counter(names(b, 48)) == {"s1": 16, "s2": 16, "s3": 16}


def test_balancer_classes() -> None:
    assert isinstance(make_balancer("source", servers(1)), MapHashBalancer)
    assert isinstance(
        make_balancer("source", servers(1), hash_type="consistent"), ConsistentHashBalancer
    )


# --- API ----------------------------------------------------------------------------------


def test_make_balancer_rejects_unknown_names() -> None:
    with pytest.raises(ValueError):
        make_balancer("uri", servers(1))
    with pytest.raises(ValueError):
        make_balancer("source", servers(1), hash_type="avalanche")


@pytest.mark.parametrize(("algo", "hash_type"), VARIANTS)
def test_no_servers_or_all_down(algo: str, hash_type: str) -> None:
    assert make_balancer(algo, [], hash_type=hash_type).pick(ip("10.0.0.1")) is None
    srv = servers(1, 1)
    b = make_balancer(algo, srv, hash_type=hash_type)
    for s in srv:
        s.up = False
    b.server_state_changed()
    assert b.pick(ip("10.0.0.1")) is None
    srv[0].up = True
    b.server_state_changed()
    assert b.pick(ip("10.0.0.1")) is srv[0]


# --- properties ---------------------------------------------------------------------------

server_spec = st.tuples(
    st.integers(0, 5), st.booleans(), st.booleans(), st.integers(0, 2)
)  # weight, backup, up, maxconn
op = st.one_of(
    st.tuples(st.just("pick"), st.integers(0, 2**32 - 1), st.booleans()),
    st.tuples(st.just("toggle"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("weight"), st.integers(0, 7), st.integers(0, 5)),
    st.tuples(st.just("release"), st.integers(0, 7), st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(VARIANTS),
    st.lists(server_spec, min_size=1, max_size=6),
    st.booleans(),
    st.lists(op, max_size=40),
)
def test_pick_never_returns_an_unusable_server(
    variant: tuple[str, str],
    specs: list[tuple[int, bool, bool, int]],
    allbackups: bool,
    ops: list[tuple[str, int, object]],
) -> None:
    algo, hash_type = variant
    srv = [
        FakeServer(f"s{i}", i, w, backup=bk, up=up, maxconn=mc)
        for i, (w, bk, up, mc) in enumerate(specs, start=1)
    ]
    b = make_balancer(algo, srv, hash_type=hash_type, allbackups=allbackups)
    held: list[FakeServer] = []
    synced = True
    for kind, a, arg in ops:
        if kind == "pick":
            exclude = held[-1] if held and arg else None
            s = b.pick(a.to_bytes(4, "big"), exclude=exclude)
            if s is None:
                continue
            assert isinstance(s, FakeServer)
            assert s.usable() and s.has_free_slot()
            if synced and any(x.usable() and not x.backup for x in srv):
                assert not s.backup
            s.cur_conns += 1
            b.on_connect(s)
            held.append(s)
        elif kind == "release" and held:
            release(b, held.pop(a % len(held)))
        elif kind in ("toggle", "weight"):
            s = srv[a % len(srv)]
            if kind == "toggle":
                s.up = not s.up
            else:
                assert isinstance(arg, int)
                s.weight = arg
            # Sometimes pick before telling the balancer: it must still not return a dead server.
            synced = bool(arg) if kind == "toggle" else True
            if synced:
                b.server_state_changed()
