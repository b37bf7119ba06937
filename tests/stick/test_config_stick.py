"""`stick-table`, `stick`, `localpeer` and `peers`: parsed like HAProxy 2.6, same error texts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from haproxy_live import Haproxy, need_haproxy

from nsproxy.config.keywords.stick import effective_tables
from nsproxy.config.lexer import split_line
from nsproxy.config.model import Where
from nsproxy.config.model_stick import PeerCfg, StickRuleCfg
from nsproxy.config.parser import ParseState, parse_lines
from nsproxy.stick.cli import table_command
from nsproxy.stick.from_config import config_tables, make_tables

BAD = """global
    localpeer hap
peers mesh
    peer hap 127.0.0.1:10001
    peer py 127.0.0.1:10002
    peer bad2 nohost
    peer d 127.0.0.1:70000
    table t2 type ip size 1k store gpc0
    table t3 size 1k
    table y type ip size 1 peers z
    peer a!b 127.0.0.1:7
    frob x
    bind 127.0.0.1:5
peers mesh
defaults
    stick-table type ip size 10
    stick on src
backend a
    stick-table type ip
backend b
    stick-table size 10
backend c
    stick-table type foo size 10
backend d
    stick-table type ip size 10x
backend e
    stick-table type ip size 10 expire 5q
backend f
    stick-table type ip size 10 store foo
backend g
    stick-table type ip size 10 store conn_rate
backend h
    stick-table type ip size 10 store gpc0(3)
backend i
    stick-table type ip size 4g
backend j
    stick-table type ip size 10 bogus
backend k
    stick-table type ip size 10 peers
backend l
    stick-table type ip size 10 store conn_rate(10s
backend m
    stick-table type string len 0 size 10
backend o
    stick on
backend q
    stick-table type ip size 10
    stick match
    stick store-request
    stick frob src
    stick on src foo
    stick-table type ip size 10
backend r
    stick-table type ip size 10 expire 3000d
backend s
    stick-table type ip size 10 store conn_rate(1x)
backend t
    stick-table type ip size 10 srvkey foo
backend u
    stick-table type ip size 10 expire 500us
backend v
    stick-table type ip size 10 expire 5mx store gpc0_rate(1sz)
"""

GOOD = """global
    localpeer hap
    stats socket {SOCK} level admin
defaults
    timeout client 5s
    timeout server 5s
    timeout connect 1s
peers mesh
    peer hap 127.0.0.1:10001
    peer py 127.0.0.1:10002
    table sessions type string len 40 size 1m expire 10m store gpc0,http_req_rate(10s)
backend octavia
    stick-table type ip size 10k expire 30m peers mesh
    stick on src
    server s1 127.0.0.1:1
backend meta
    stick-table type ip size 1k expire 60s store http_req_rate(10s),conn_cur,gpc0,gpc0
    stick match src table mesh/sessions if TRUE
    stick store-response res.hdr(x) table octavia
"""


def _alerts(text: str, cfg: Path) -> list[str]:
    out = []
    for line in text.splitlines():
        m = re.match(r"\[(ALERT|WARNING)\] +\(\d+\) : (.*)", line)
        if m:
            out.append(f"{m.group(1)} {m.group(2).replace(str(cfg.parent) + '/', '')}")
    return out


def test_errors_match_haproxy(tmp_path: Path) -> None:
    exe = need_haproxy()
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(BAD)
    theirs = _alerts(
        subprocess.run(
            [exe, "-c", "-f", str(cfg)], capture_output=True, text=True, cwd=tmp_path
        ).stderr,
        cfg,
    )
    res = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)], capture_output=True, text=True
    )
    ours = _alerts(res.stderr, cfg)
    assert res.returncode == 1
    ours = [x.replace(str(cfg), "bad.cfg") for x in ours]
    theirs = [x.replace(str(cfg), "bad.cfg") for x in theirs]
    assert [x for x in ours if x.startswith("ALERT")] == [
        x for x in theirs if x.startswith("ALERT")
    ]
    assert sorted(x for x in ours if x.startswith("WARNING")) == sorted(
        x for x in theirs if x.startswith("WARNING")
    )


def _parse(text: str, tmp_path: Path) -> ParseState:
    lines = [(Where("g.cfg", i), split_line(t, {})) for i, t in enumerate(text.split("\n"), 1)]
    state = ParseState(netns_dir=str(tmp_path))
    config, state = parse_lines([(w, x) for w, x in lines if x], state)
    assert config is not None, state.errors
    return state


def test_model_and_tables(tmp_path: Path) -> None:
    state = _parse(GOOD.replace("{SOCK}", "/nonexistent"), tmp_path)
    g = state.global_.fields
    assert g["localpeer"] == "hap"
    (mesh,) = g["peers"]
    assert mesh.name == "mesh" and mesh.local == PeerCfg(
        Where("g.cfg", 9), "hap", "127.0.0.1", 10001, True
    )
    assert [p.name for p in mesh.peers] == ["hap", "py"]
    (sess,) = mesh.tables
    assert (sess.name, sess.key_type, sess.key_size, sess.size, sess.expire_ms, sess.peers) == (
        "mesh/sessions",
        "string",
        41,
        1048576,
        600000,
        "mesh",
    )
    meta = next(s for s in state.proxies if s.name == "meta")
    assert meta.fields["stick_rules"] == [
        StickRuleCfg(Where("g.cfg", 18), "match", "src", "mesh/sessions", ("if", "TRUE")),
        StickRuleCfg(Where("g.cfg", 19), "store-response", "res.hdr(x)", "octavia"),
    ]
    assert any("store option 'gpc0' already enabled" in w for w in state.warnings)
    tables = effective_tables(state)
    assert [t.name for t in tables] == ["mesh/sessions", "octavia", "meta"]
    # tables used by stick rules gain server_id and server_key, as in HAProxy
    assert tables[1].store == (("server_id", None), ("server_key", None))
    assert tables[2].store == (("http_req_rate", 10000), ("conn_cur", None), ("gpc0", None))


def test_show_table_of_parsed_tables_matches_haproxy(tmp_path: Path) -> None:
    h = Haproxy(GOOD)
    try:
        for cmd in (
            "set table octavia key 10.0.0.1 data.server_id 1",
            "set table mesh/sessions key abc data.gpc0 3",
        ):
            h.cli(cmd)
        theirs = [
            h.cli(c)[:-1] for c in ("show table", "show table octavia", "show table mesh/sessions")
        ]
    finally:
        h.close()
    state = _parse(GOOD.replace("{SOCK}", "/nonexistent"), tmp_path)
    tables = make_tables(effective_tables(state))
    table_command("set", ["octavia", "key", "10.0.0.1", "data.server_id", "1"], tables, 5000)
    table_command("set", ["mesh/sessions", "key", "abc", "data.gpc0", "3"], tables, 5000)
    ours = [
        table_command("show", c.split(), tables, 5000) for c in ("", "octavia", "mesh/sessions")
    ]
    norm = [[re.sub(r"0x[0-9a-f]+|exp=\d+", "X", x) for x in v] for v in (theirs, ours)]
    assert norm[0] == norm[1]


def test_runtime_tables_come_from_the_model(tmp_path: Path) -> None:
    """The runtime builds its tables from the frozen model: the same tables, in the same
    declaration order, as the parser's own view (server_id/server_key added for `stick`)."""
    lines = [
        (Where("g.cfg", i), split_line(t, {}))
        for i, t in enumerate(GOOD.replace("{SOCK}", "/nonexistent").split("\n"), 1)
    ]
    config, state = parse_lines(
        [(w, x) for w, x in lines if x], ParseState(netns_dir=str(tmp_path))
    )
    assert config is not None
    assert config_tables(config) == effective_tables(state)
    assert config.global_.table_names == ("mesh/sessions", "octavia", "meta")


LOCAL_ONLY = """global
    stats socket {SOCK} level admin
peers mesh
    peer nsp 127.0.0.1:10001
    peer other 127.0.0.1:10002
defaults
    timeout client 5s
    timeout server 5s
    timeout connect 1s
backend b
    stick-table type ip size 10 peers mesh
"""


def test_dash_l_names_the_local_peer_like_haproxy(tmp_path: Path) -> None:
    """-L NAME is the local peer's name, over `localpeer` and the host name."""
    exe = need_haproxy()
    cfg = tmp_path / "l.cfg"
    cfg.write_text(LOCAL_ONLY.replace("{SOCK}", str(tmp_path / "s.sock")))
    for extra in ((), ("-L", "nsp"), ("-L", "nobody")):
        theirs = subprocess.run(
            [exe, "-c", *extra, "-f", str(cfg)], capture_output=True, text=True, cwd=tmp_path
        )
        ours = subprocess.run(
            [sys.executable, "-m", "nsproxy", "-c", *extra, "-f", str(cfg)],
            capture_output=True,
            text=True,
        )
        assert ours.returncode == theirs.returncode, extra
        assert _alerts(ours.stderr, cfg) == _alerts(theirs.stderr, cfg), extra
