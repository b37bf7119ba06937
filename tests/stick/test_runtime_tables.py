"""StickTables on a manual clock: built from the model in declaration order, entries freed by
the table's own timer at their expiry date, never before."""

from __future__ import annotations

from pathlib import Path

from lab.clock import ManualClock
from nsproxy.config.parser import parse_files
from nsproxy.runtime.tables import StickTables

CONFIG = """
defaults
    timeout client 5s
    timeout server 5s
    timeout connect 1s
backend b
    stick-table type ip size 10 expire 2s store gpc0
peers mesh
    peer other 127.0.0.1:1
    table p type string size 10 store gpc0
backend a
    stick-table type integer size 10 store gpc0
    stick on src
"""


def tables(tmp_path: Path) -> tuple[StickTables, ManualClock]:
    cfg = tmp_path / "t.cfg"
    cfg.write_text(CONFIG)
    config, state = parse_files([str(cfg)], netns_dir=str(tmp_path))
    assert config is not None, state.errors
    clock = ManualClock()
    return StickTables(config, clock), clock


class NoHold:
    def hold_stop(self) -> None:
        raise AssertionError("no peers section should hold the stop")

    def release_stop(self) -> None:
        raise AssertionError("no peers section should hold the stop")


def test_tables_in_declaration_order_with_stick_data(tmp_path: Path) -> None:
    st, _ = tables(tmp_path)
    assert list(st.tables) == ["b", "mesh/p", "a"]
    assert [d.name for d in st.tables["a"].stored] == ["server_id", "gpc0", "server_key"]


def test_entries_expire_at_their_date(tmp_path: Path) -> None:
    st, clock = tables(tmp_path)
    st.start(None, NoHold())  # type: ignore[arg-type]  # no live peers section: no loop used
    try:
        assert st.sections == []  # `mesh` has no local peer here
        b = st.tables["b"]
        e = b.get_entry(b.make_key("192.0.2.1"), st.now_ms())
        assert e is not None
        b.touch_local(e, st.now_ms(), decref=True)
        clock.advance(1.0)
        f = b.get_entry(b.make_key("192.0.2.2"), st.now_ms())
        assert f is not None
        b.touch_local(f, st.now_ms(), decref=True)
        clock.advance(0.99)
        assert len(b) == 2
        clock.advance(0.02)  # the first entry's 2 s are over
        assert b.lookup(b.make_key("192.0.2.1")) is None and len(b) == 1
        clock.advance(1.0)
        assert len(b) == 0
        # an idle table keeps one timer, a period away
        assert len(clock.pending()) == 1
    finally:
        st.close()
    assert clock.pending() == []
