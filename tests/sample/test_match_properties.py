"""Property tests: match methods against simple reference models; parsers never crash."""

from __future__ import annotations

import contextlib
import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from nsproxy.sample import CompileEnv, Hook, SampleError, compile_logformat, map_command, parse_expr
from nsproxy.sample.args import ArgError, ArgSpec, ArgType, parse_args
from nsproxy.sample.match import Method, PatternExpr, match_word
from nsproxy.sample.patref import PatRefs
from nsproxy.sample.types import Sample, SmpType

from .txn import with_input

text = st.text(alphabet="abcAB./?:-_ 0123", max_size=12)


def lookup(method: Method, patterns: list[str], value: str, icase: bool = False) -> bool:
    ref = PatRefs().new(None, "test", 2)
    expr = PatternExpr(ref, method, icase)
    for p in patterns:
        ref.append(p, None)
    return expr.lookup(Sample(SmpType.STR, value)) is not None


@settings(max_examples=300, deadline=None)
@given(pats=st.lists(text, max_size=4), value=text)
def test_string_methods_follow_their_definitions(pats: list[str], value: str) -> None:
    assert lookup(Method.STR, pats, value) == (value in pats)
    assert lookup(Method.STR, pats, value, True) == any(p.lower() == value.lower() for p in pats)
    assert lookup(Method.BEG, pats, value) == any(value.startswith(p) for p in pats)
    assert lookup(Method.BEG, pats, value, True) == any(
        value.lower().startswith(p.lower()) for p in pats
    )
    assert lookup(Method.END, pats, value) == any(value.endswith(p) for p in pats)
    assert lookup(Method.SUB, pats, value) == any(p in value for p in pats)


def _word_model(sample: str, pattern: str, delims: str) -> bool:
    """The pattern, stripped of delimiters, equals a run of whole delimited words (an empty
    one matches at the very end after a delimiter, or an empty sample)."""
    core = pattern.strip(delims)
    if not core:
        return sample == "" or sample[-1] in delims
    for start in range(len(sample) - len(core) + 1):
        end = start + len(core)
        if sample[start:end] != core:
            continue
        if (start == 0 or sample[start - 1] in delims) and (
            end == len(sample) or sample[end] in delims
        ):
            return True
    return False


@settings(max_examples=500, deadline=None)
@given(sample=text, pattern=text)
def test_dom_and_dir_match_whole_words(sample: str, pattern: str) -> None:
    assert match_word(sample, pattern, "/?.:", False) == _word_model(sample, pattern, "/?.:")
    assert match_word(sample, pattern, "/?", False) == _word_model(sample, pattern, "/?")


@settings(max_examples=300, deadline=None)
@given(
    nets=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)), min_size=1, max_size=5),
    addr=st.integers(0, 2**32 - 1),
)
def test_ip_matches_network_containment(nets: list[tuple[int, int]], addr: int) -> None:
    networks = [ipaddress.ip_network((a, p), strict=False) for a, p in nets]
    ref = PatRefs().new(None, "test", 2)
    expr = PatternExpr(ref, Method.IP)
    for n in networks:
        ref.append(str(n), None)
    ip = ipaddress.IPv4Address(addr)
    got = expr.lookup(Sample(SmpType.IPV4, ip))
    assert (got is not None) == any(ip in n for n in networks)
    if got is not None:  # the longest prefix wins
        best = max((n for n in networks if ip in n), key=lambda n: n.prefixlen)
        assert ipaddress.ip_network(got.pattern).prefixlen == best.prefixlen
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    assert (expr.lookup(Sample(SmpType.IPV6, mapped)) is not None) == any(ip in n for n in networks)


@settings(max_examples=300, deadline=None)
@given(lo=st.integers(0, 100), hi=st.integers(0, 100), v=st.integers(-50, 150))
def test_int_ranges(lo: int, hi: int, v: int) -> None:
    # (HAProxy reads a leading '-' as the range separator: negative bounds need "le"/"ge".)
    lo, hi = min(lo, hi), max(lo, hi)
    ref = PatRefs().new(None, "test", 2)
    expr = PatternExpr(ref, Method.INT)
    ref.append(f"{lo}:{hi}", None)
    assert (expr.lookup(Sample(SmpType.SINT, v)) is not None) == (lo <= v <= hi)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_expression_parser_only_raises_sample_error(source: str) -> None:
    with contextlib.suppress(SampleError):
        parse_expr(source)
    with contextlib.suppress(SampleError):
        compile_logformat(source, Hook.FE_LOG_END)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30))
def test_argument_parser_only_raises_arg_error(source: str) -> None:
    spec = ArgSpec((ArgType.SINT, ArgType.STR, ArgType.MSK4, ArgType.TIME), 1)
    with contextlib.suppress(ArgError):
        parse_args(source, spec)


def test_map_change_is_seen_by_the_next_lookup(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "m.map"
    path.write_text("a 1\n")
    env = CompileEnv()
    get = compile_logformat(f"%[var(txn.in),map({path},none)]", Hook.FE_LOG_END, env)
    assert get(with_input("b")) == "none"
    assert map_command(env.refs, ["add", "map", str(path), "b", "2"]) == ""
    assert get(with_input("b")) == "2"
    assert map_command(env.refs, ["set", "map", str(path), "b", "3"]) == ""
    assert get(with_input("b")) == "3"
    assert map_command(env.refs, ["del", "map", str(path), "b"]) == ""
    assert get(with_input("b")) == "none"
    # prepare/commit: the new version is invisible until committed.
    assert map_command(env.refs, ["prepare", "map", str(path)]) == "New version created: 1\n"
    assert map_command(env.refs, ["add", "map", "@1", str(path), "c", "9"]) == ""
    assert get(with_input("c")) == "none" and get(with_input("a")) == "1"
    assert map_command(env.refs, ["commit", "map", "@1", str(path)]) == ""
    assert get(with_input("c")) == "9" and get(with_input("a")) == "none"


words = st.lists(
    st.sampled_from(
        [
            "if",
            "unless",
            "{",
            "}",
            "!",
            "||",
            "or",
            "src",
            "-m",
            "-i",
            "-f",
            "--",
            "str",
            "beg",
            "1.2.3.4",
            "req.len",
            "gt",
            "3",
            "TRUE",
            "x",
            "-M",
            "-u",
            "int(1)",
            "str(a),lower",
            "req_ssl_ver",
            "3.1",
            "ge",
            "found",
            "!TRUE",
            "nosuch",
            "var(txn.a)",
        ]
    ),
    max_size=10,
)


@settings(max_examples=500, deadline=None)
@given(ws=words)
def test_condition_parser_only_raises_sample_error(ws: list[str]) -> None:
    from nsproxy.sample import AclSet, compile_condition

    acls = AclSet()
    with contextlib.suppress(SampleError):
        acls.add(["x", *ws])
    with contextlib.suppress(SampleError):
        cond = compile_condition(ws, acls, Hook.FE_REQ_CNT)
        cond(with_input("abc"))
