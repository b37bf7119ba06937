"""Tracking rules and stick-table fetches compiled from configuration text and run on a stub
Txn: what `track-sc*`, `sc-inc-gpc*`, `sc-set-gpt0`, the `sc_*`/`src_*`/`table_*` fetches and
`stick` rules do to tables, and the configuration errors HAProxy 2.6 gives (`haproxy -c`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsproxy.config.model import ProxyCfg
from nsproxy.config.model_http import Verb, evaluate
from nsproxy.config.model_rules import run_tcp_rules
from nsproxy.config.parser import parse_files
from nsproxy.sample import compile_expr
from nsproxy.sample.places import Hook
from nsproxy.sample.types import Sample, SmpType
from nsproxy.stick.from_config import config_tables, make_tables
from nsproxy.stick.table import StickTable
from nsproxy.stick.track import StreamSticks
from sample.haproxy_ref import check_config, needs_haproxy
from sample.txn import StubTxn

HEAD = """defaults
  mode http
  timeout client 1s
  timeout server 1s
  timeout connect 1s
"""


def load(tmp_path: Path, body: str) -> tuple[dict[str, ProxyCfg], dict[str, StickTable]]:
    cfg = tmp_path / "c.cfg"
    cfg.write_text(HEAD + body)
    config, state = parse_files([str(cfg)])
    assert config is not None, state.errors
    tables = {t.name: t for t in make_tables(config_tables(config))}
    return {p.name: p for p in config.proxies}, tables


class Clock:
    def __init__(self) -> None:
        self.ms = 1000

    def __call__(self) -> int:
        return self.ms


def txn_for(tables: dict[str, StickTable], clock: Clock, src: str = "192.0.2.7") -> StubTxn:
    return StubTxn(src=(src, 40000), sticks=StreamSticks(tables, clock))


STORE = "http_req_rate(10s),http_req_cnt,conn_cur,conn_cnt,http_err_cnt,gpc0,gpc0_rate(10s),gpt0"
RATE = f"""frontend fe
  bind 127.0.0.1:1
  stick-table type ip size 1k expire 30s store {STORE}
  http-request track-sc0 src
  http-request sc-inc-gpc0(0) if {{ path /count }}
  http-request sc-set-gpt0(0) 42 if {{ path /mark }}
  http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt 5 }}
"""


def test_requests_one_to_five_pass_and_the_sixth_is_denied_and_counted(tmp_path: Path) -> None:
    proxies, tables = load(tmp_path, RATE)
    rules = proxies["fe"].http.http_request  # type: ignore[union-attr]
    clock = Clock()
    verdicts = []
    for _ in range(7):
        txn = txn_for(tables, clock)
        result = evaluate(rules, txn)  # type: ignore[arg-type]
        verdicts.append(None if result is None else result.status)
        assert txn.sticks is not None
        txn.sticks.txn_done(200 if result is None else 429, 0, 0, True, result is None)
        txn.sticks.stop()
        clock.ms += 10
    assert verdicts == [None] * 5 + [429, 429]
    t = tables["fe"]
    ts = t.lookup(t.make_key("192.0.2.7"))
    assert ts is not None
    now = clock()
    assert t.get(ts, "http_req_cnt", now) == 7
    assert t.get(ts, "http_req_rate", now) == 7
    assert t.get(ts, "conn_cnt", now) == 7
    assert t.get(ts, "conn_cur", now) == 0
    assert t.get(ts, "http_err_cnt", now) == 2  # the two denials
    assert ts.ref_cnt == 0


def test_sc_inc_gpc0_and_sc_set_gpt0_act_on_the_tracked_entry(tmp_path: Path) -> None:
    proxies, tables = load(tmp_path, RATE)
    rules = proxies["fe"].http.http_request  # type: ignore[union-attr]
    from sample.http_txn import request

    clock = Clock()
    for path in ("/count", "/count", "/mark"):
        txn = request(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        txn.sticks = StreamSticks(tables, clock)
        assert evaluate(rules, txn) is None  # type: ignore[arg-type]
        txn.sticks.stop()
    t = tables["fe"]
    ts = t.lookup(t.make_key("192.0.2.10"))  # the stub's default client
    assert ts is not None
    assert (t.get(ts, "gpc0", clock()), t.get(ts, "gpc0_rate", clock())) == (2, 2)
    assert t.get(ts, "gpt0", clock()) == 42


def test_the_first_tracking_rule_keeps_its_slot(tmp_path: Path) -> None:
    proxies, tables = load(
        tmp_path,
        """backend other
  stick-table type ip size 10 store conn_cnt
frontend fe
  mode tcp
  bind 127.0.0.1:1
  stick-table type ip size 10 store conn_cnt
  tcp-request connection track-sc0 src
  tcp-request connection track-sc0 src table other
  tcp-request connection track-sc1 src table other
""",
    )
    clock = Clock()
    txn = txn_for(tables, clock)
    out = run_tcp_rules(proxies["fe"].rules.tcp_request_connection, txn)  # type: ignore[arg-type]
    assert out.action == "continue"
    assert txn.sticks is not None
    s0, s1 = txn.sticks.tracker(0), txn.sticks.tracker(1)
    assert s0 is not None and s0.table is tables["fe"]
    assert s1 is not None and s1.table is tables["other"]
    other = tables["other"]
    ts = other.lookup(other.make_key("192.0.2.7"))
    assert ts is not None and other.get(ts, "conn_cnt", clock()) == 1  # tracked once, by sc1
    assert ts.ref_cnt == 1
    txn.sticks.stop()
    assert ts.ref_cnt == 0


def _fetch(text: str, txn: StubTxn, hook: Hook = Hook.FE_HRQ_HDR) -> Sample | None:
    return compile_expr(text, hook)(txn)  # type: ignore[arg-type]


def test_fetches_read_tracked_entries_and_the_clients_entry(tmp_path: Path) -> None:
    _, tables = load(
        tmp_path,
        """backend t
  stick-table type ip size 100 store conn_cnt,conn_cur,conn_rate(10s),gpc0,bytes_in_cnt
frontend fe
  bind 127.0.0.1:1
""",
    )
    clock = Clock()
    t = tables["t"]
    txn = txn_for(tables, clock)
    assert _fetch("sc_conn_cnt(0,t)", txn) is None  # nothing tracked: no sample
    assert _fetch("sc0_tracked", txn) == Sample(SmpType.BOOL, False)
    assert _fetch("src_conn_cnt(t)", txn) == Sample(SmpType.SINT, 0)  # unknown client: 0
    assert _fetch("table_cnt(t)", txn) == Sample(SmpType.SINT, 0)
    assert txn.sticks is not None
    txn.sticks.track(0, t, t.make_key("192.0.2.7"), content=False)
    txn.sticks.txn_done(-1, 5000, 0, False, False)
    assert _fetch("sc_conn_cnt(0)", txn) == Sample(SmpType.SINT, 1)
    assert _fetch("sc0_conn_cur", txn) == Sample(SmpType.SINT, 1)
    assert _fetch("sc0_conn_rate", txn) == Sample(SmpType.SINT, 1)
    assert _fetch("sc_kbytes_in(0)", txn) == Sample(SmpType.SINT, 4)
    assert _fetch("sc_trackers(0)", txn) == Sample(SmpType.SINT, 1)
    assert _fetch("sc0_tracked", txn) == Sample(SmpType.BOOL, True)
    assert _fetch("sc1_conn_cnt", txn) is None
    assert _fetch("sc0_http_req_rate", txn) is None  # not stored: no sample
    assert _fetch("src_conn_cur(t)", txn) == Sample(SmpType.SINT, 1)
    assert _fetch("src_inc_gpc0(t)", txn) == Sample(SmpType.SINT, 1)
    assert _fetch("sc_get_gpc0(0)", txn) == Sample(SmpType.SINT, 1)
    assert _fetch("sc0_clr_gpc0", txn) == Sample(SmpType.SINT, 1)
    assert _fetch("sc0_get_gpc0", txn) == Sample(SmpType.SINT, 0)
    other = txn_for(tables, clock, "192.0.2.8")
    assert _fetch("src_updt_conn_cnt(t)", other) == Sample(SmpType.SINT, 1)  # created
    assert _fetch("table_cnt(t)", txn) == Sample(SmpType.SINT, 2)
    assert _fetch("table_avl(t)", txn) == Sample(SmpType.SINT, 98)


def test_string_and_ipv6_tables_take_the_sample_their_way(tmp_path: Path) -> None:
    _, tables = load(
        tmp_path,
        """backend s
  stick-table type string len 8 size 10 store conn_cnt
backend v6
  stick-table type ipv6 size 10 store conn_cnt
frontend fe
  bind 127.0.0.1:1
""",
    )
    clock = Clock()
    txn = txn_for(tables, clock)
    assert txn.sticks is not None
    from nsproxy.sample.stick_fetch import sample_key

    s, v6 = tables["s"], tables["v6"]
    addr = _fetch("src", txn)
    assert addr is not None
    assert sample_key(s, addr) == b"192.0.2."  # cut to `len 8`
    assert sample_key(v6, addr) == bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 7])
    assert sample_key(s, Sample(SmpType.SINT, 42)) == b"42"


def test_stick_rules_compile_their_expression_and_condition(tmp_path: Path) -> None:
    proxies, _ = load(
        tmp_path,
        """backend be
  mode tcp
  stick-table type ip size 10
  stick on src if { src 192.0.2.0/24 }
  stick store-response src
  server s1 127.0.0.1:1
""",
    )
    on, resp = proxies["be"].stick_rules
    assert on.fetch is not None and on.test is not None and resp.fetch is not None
    txn = StubTxn(src=("192.0.2.9", 1))
    assert on.fetch(txn) == Sample(SmpType.IPV4, _fetch("src", txn).value)  # type: ignore[union-attr, arg-type]


def test_denials_of_an_answer_count_but_returns_do_not(tmp_path: Path) -> None:
    proxies, tables = load(
        tmp_path,
        """frontend fe
  bind 127.0.0.1:1
  stick-table type ip size 10 store http_err_cnt
  http-request track-sc0 src
  http-request return status 404 if { path /r }
  http-request deny
""",
    )
    from sample.http_txn import request

    rules = proxies["fe"].http.http_request  # type: ignore[union-attr]
    clock = Clock()
    for path in ("/r", "/d"):
        txn = request(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        txn.sticks = StreamSticks(tables, clock)
        res = evaluate(rules, txn)  # type: ignore[arg-type]
        assert res is not None and res.verb is Verb.ANSWER
        txn.sticks.stop()
    t = tables["fe"]
    ts = t.lookup(t.make_key("192.0.2.10"))
    assert ts is not None and t.get(ts, "http_err_cnt", clock()) == 1


# -- configuration errors, as `haproxy -c` words them ---------------------------------------------
ERRORS = [
    "  tcp-request connection track-sc3 src\n",
    "  tcp-request content track-sc0\n",
    "  tcp-request connection track-sc1 req.len\n",
    "  http-request sc-inc-gpc0(4)\n",
    "  http-request track-sc5 src\n",
    "  http-request track-sc0 src table nosuch\n",
    "  http-request deny if { sc_http_req_rate(0,nosuch2) gt 5 }\n",
    "  http-request deny if { src_conn_rate gt 5 }\n",
    "  tcp-request content sc-inc-gpc0(4)\n",
    "  tcp-request content sc-set-gpt0(1) nosuch\n",
    "  http-request sc-set-gpt0(1) nosuch\n",
    "  http-request sc-inc-gpc1(x)\n",
]


@needs_haproxy
@pytest.mark.parametrize("line", ERRORS)
def test_errors_are_haproxys(tmp_path: Path, line: str) -> None:
    body = "frontend fe\n  bind 127.0.0.1:1\n" + line
    cfg = tmp_path / "c.cfg"
    cfg.write_text(HEAD + body)
    _, state = parse_files([str(cfg)])
    ours = [m.removeprefix("config : ").replace(str(cfg), "c.cfg") for m in state.errors]
    theirs = [
        m.replace(str(tmp_path / "check.cfg"), "c.cfg")
        for m in check_config(HEAD + body, tmp_path)
        if m.startswith(("parsing", "Proxy"))
    ]
    assert theirs and ours == theirs


STICK_ERRORS = [
    "  stick on foo\n",
    "  stick match res.len\n",
    "  stick on src if { nosuch }\n",
    "  stick on src table nosuch\n",
]


@needs_haproxy
@pytest.mark.parametrize("line", STICK_ERRORS)
def test_stick_errors_are_haproxys(tmp_path: Path, line: str) -> None:
    body = "backend be\n  mode tcp\n  stick-table type ip size 1k\n" + line
    cfg = tmp_path / "c.cfg"
    cfg.write_text(HEAD + body)
    _, state = parse_files([str(cfg)])
    ours = [m.removeprefix("config : ").replace(str(cfg), "c.cfg") for m in state.errors]
    theirs = [
        m.replace(str(tmp_path / "check.cfg"), "c.cfg")
        for m in check_config(HEAD + body, tmp_path)
        if m.startswith(("parsing", "Proxy"))
    ]
    assert theirs and ours == theirs


@needs_haproxy
def test_option_persist_in_a_frontend_is_ignored_with_haproxys_warning(tmp_path: Path) -> None:
    body = "frontend fe\n  bind 127.0.0.1:1\n  option persist\n"
    cfg = tmp_path / "c.cfg"
    cfg.write_text(HEAD + body)
    _, state = parse_files([str(cfg)])
    ours = [m.removeprefix("config : ").replace(str(cfg), "c.cfg") for m in state.warnings]
    theirs = [
        m.replace(str(tmp_path / "check.cfg"), "c.cfg")
        for m in check_config(HEAD + body, tmp_path)
        if m.startswith("parsing")
    ]
    assert theirs and ours == theirs


def test_tracking_costs_less_than_ten_microseconds_of_cpu_per_request() -> None:
    """The budget of issue 15: `track-sc0 src` + one rate check, per request (CPU time)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_tracking", Path(__file__).with_name("bench_tracking.py")
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    best, entries = bench.measure(20_000)
    assert entries == 1000
    assert best["tracked"] - best["plain"] < 10.0, best
