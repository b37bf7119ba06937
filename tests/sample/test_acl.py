"""ACLs and conditions: named/anonymous, OR of same-name lines, !, ||, predefined, tri-state."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsproxy.sample import (
    AclSet,
    CompileEnv,
    Hook,
    Sample,
    SampleError,
    SmpType,
    Verdict,
    compile_condition,
    compile_expr,
)
from nsproxy.sample.acl import Conflict

from .haproxy_ref import HAPROXY, check_config
from .hello import client_hello
from .txn import StubTxn, with_input


def words(text: str) -> list[str]:
    return text.split()


def cond(text: str, acls: AclSet | None = None, where: Hook = Hook.FE_REQ_CNT) -> object:
    return compile_condition(words(text), acls or AclSet(), where)


def test_named_acls_or_and_not() -> None:
    acls = AclSet()
    acls.add(words("net src 10.0.0.0/8"))
    acls.add(words("net src 192.0.2.0/24"))  # same name: ORed
    acls.add(words("port dst_port 443 8443"))
    c = compile_condition(words("if net port"), acls, Hook.FE_REQ_CNT)
    assert c(StubTxn()) is Verdict.PASS  # 192.0.2.10 -> 198.51.100.1:443
    assert c(StubTxn(src=("10.1.1.1", 1))) is Verdict.PASS
    assert c(StubTxn(src=("11.1.1.1", 1))) is Verdict.FAIL
    assert c(StubTxn(dst=("1.1.1.1", 80))) is Verdict.FAIL
    c2 = compile_condition(words("if !net || port"), acls, Hook.FE_REQ_CNT)
    assert c2(StubTxn(dst=("1.1.1.1", 80))) is Verdict.FAIL
    assert c2(StubTxn(src=("11.1.1.1", 1), dst=("1.1.1.1", 80))) is Verdict.PASS
    c3 = compile_condition(words("unless net or port"), acls, Hook.FE_REQ_CNT)
    assert c3(StubTxn()) is Verdict.FAIL
    assert c3(StubTxn(src=("11.1.1.1", 1), dst=("1.1.1.1", 80))) is Verdict.PASS
    assert compile_condition(words("if !!net"), acls, Hook.FE_REQ_CNT)(StubTxn()) is Verdict.PASS


def test_acl_lines_added_after_a_condition_still_count() -> None:
    acls = AclSet()
    acls.add(words("net src 10.0.0.0/8"))
    c = compile_condition(words("if net"), acls, Hook.FE_REQ_CNT)
    assert c(StubTxn()) is Verdict.FAIL
    acls.add(words("net src 192.0.2.0/24"))
    assert c(StubTxn()) is Verdict.PASS


def test_anonymous_and_predefined() -> None:
    t = StubTxn(src=("127.0.0.1", 5))
    assert cond("if LOCALHOST")(t) is Verdict.PASS
    assert cond("if LOCALHOST")(StubTxn(src=("::1", 5))) is Verdict.PASS
    assert cond("if LOCALHOST")(StubTxn()) is Verdict.FAIL
    assert cond("if TRUE")(t) is Verdict.PASS
    assert cond("if FALSE")(t) is Verdict.FAIL
    assert cond("if TRUE !FALSE { src 127.0.0.0/8 }")(t) is Verdict.PASS
    assert cond("if REQ_CONTENT")(StubTxn()) is Verdict.MISS
    assert cond("if REQ_CONTENT")(StubTxn(req_final=True)) is Verdict.FAIL
    assert cond("if REQ_CONTENT")(StubTxn(req_data=b"x")) is Verdict.PASS
    assert cond("if WAIT_END")(StubTxn()) is Verdict.MISS
    assert cond("if WAIT_END")(StubTxn(req_final=True)) is Verdict.PASS


def test_tri_state_combinations() -> None:
    partial = StubTxn(req_data=client_hello()[:10])
    # MISS AND FAIL is FAIL; MISS OR PASS is PASS; !MISS is MISS.
    assert cond("if { req.ssl_hello_type 1 } FALSE")(partial) is Verdict.MISS
    assert cond("if FALSE { req.ssl_hello_type 1 }")(partial) is Verdict.FAIL
    assert cond("if { req.ssl_hello_type 1 } || TRUE")(partial) is Verdict.PASS
    assert cond("if !{ req.ssl_hello_type 1 }")(partial) is Verdict.MISS
    assert cond("if { req.ssl_sni -m end .com }")(partial) is Verdict.MISS
    full = StubTxn(req_data=client_hello(b"shop.example.com"))
    assert cond("if { req.ssl_sni -m end .com }")(full) is Verdict.PASS
    assert cond("if { req_ssl_sni -i SHOP.example.com }")(full) is Verdict.PASS
    assert cond("if { req.len gt 10 }")(StubTxn(req_data=b"abc")) is Verdict.MISS
    assert cond("if { req.len gt 10 }")(StubTxn(req_data=b"abc", req_final=True)) is Verdict.FAIL


def test_multi_valued_fetch_matches_any_value() -> None:
    t = StubTxn(req_data=client_hello(b"a.example", (b"http/1.1", b"h2")))
    assert cond("if { req.ssl_alpn h2 }")(t) is Verdict.PASS
    assert cond("if { req.ssl_alpn,upper H2 }")(t) is Verdict.PASS
    assert cond("if { req.ssl_alpn h3 }")(t) is Verdict.FAIL
    # As an expression the fetch gives its first value.
    assert compile_expr("req.ssl_alpn", Hook.FE_REQ_CNT)(t) == Sample(SmpType.STR, "http/1.1")


def test_operators_and_versions() -> None:
    hello = StubTxn(req_data=client_hello())
    assert cond("if { req.ssl_ver 3.3 }")(hello) is Verdict.PASS
    assert cond("if { req.ssl_ver ge 3.1 }")(hello) is Verdict.PASS
    assert cond("if { req.ssl_ver lt 3.3 }")(hello) is Verdict.FAIL
    assert cond("if { req_ssl_ver 3.0:3.2 }")(hello) is Verdict.FAIL
    assert cond("if { dst_port ge 400 le 500 }")(StubTxn()) is Verdict.PASS


def test_files_and_flags(tmp_path: Path) -> None:
    acl_file = tmp_path / "nets.acl"
    acl_file.write_text("# nets\n10.0.0.0/8\n\n  192.0.2.0/24\n")
    map_file = tmp_path / "hosts.map"
    map_file.write_text("example.com be1\nexample.org be2\n")
    env = CompileEnv()
    c = compile_condition(
        ["if", "{", "src", "-f", str(acl_file), "}"], AclSet(), Hook.FE_REQ_CNT, env
    )
    assert c(StubTxn()) is Verdict.PASS
    c = compile_condition(
        ["if", "{", "var(txn.in)", "-m", "str", "-M", "-f", str(map_file), "}"],
        AclSet(),
        Hook.FE_REQ_CNT,
        env,
    )
    assert c(with_input("example.org")) is Verdict.PASS
    assert c(with_input("be1")) is Verdict.FAIL
    c = compile_condition(words("if { var(txn.in) -m beg -- -x }"), AclSet(), Hook.FE_REQ_CNT)
    assert c(with_input("-xyz")) is Verdict.PASS


def test_conflicts_are_reported() -> None:
    warnings: list[str] = []
    acls = AclSet()
    acls.add(words("L req.len gt 0"))
    compile_condition(["if", "L"], acls, Hook.FE_CON_ACC, warn=warnings.append)
    assert warnings == [
        "acl 'L' will never match because it only involves keywords that are incompatible "
        "with 'frontend tcp-request connection rule'"
    ]
    acls.add(words("L src 1.2.3.4"))
    c = compile_condition(["if", "L"], acls, Hook.FE_CON_ACC)
    assert c.conflict(Hook.FE_CON_ACC) == Conflict("L", "req.len", False)
    c = compile_condition(words("if { req.len gt 0 }"), acls, Hook.FE_CON_ACC)
    assert c.conflict(Hook.FE_CON_ACC) == Conflict("", "req.len", True)
    assert c.conflict(Hook.FE_REQ_CNT) is None


HTTP_HEAD = """
defaults
  mode http
  timeout client 1s
  timeout server 1s
  timeout connect 1s
frontend fe
  bind 127.0.0.1:65000
"""

BAD_ACLS = [
    "a src -m foo 1",
    "a src 1.2.3.x",
    "a var(txn.x) abc",
    "a str(x) -m int abc",
    "a str(x) -x abc",
    "a str(x) -f /nonexistent",
    "a req.ssl_ver gt 3.x",
    "a src -u x 1.2.3.4",
    "a str(x) -m len 3-1",
    "a str(x) -m bin 0g",
    "a nosuch(1) x",
    "a str(x),nosuch x",
    "a req_ssl_sni,nosuch x",
]


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
@pytest.mark.parametrize("line", BAD_ACLS)
def test_acl_errors_match_haproxy(tmp_path: Path, line: str) -> None:
    out = check_config(HTTP_HEAD + f"  acl {line}\n", tmp_path)
    prefix = (
        "parsing [" + str(tmp_path / "check.cfg") + ":9] : error detected while parsing ACL 'a' : "
    )
    want = next(x for x in out if x.startswith(prefix))[len(prefix) :].removesuffix(".")
    with pytest.raises(SampleError) as exc:
        AclSet().add(line.split())
    assert str(exc.value) == want


BAD_CONDITIONS = ["if nosuch", "if { src 1.2.3.4", "if { nosuch }", "if { src -m nope }"]


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
@pytest.mark.parametrize("text", BAD_CONDITIONS)
def test_condition_errors_match_haproxy(tmp_path: Path, text: str) -> None:
    out = check_config(HTTP_HEAD + f"  use_backend b {text}\nbackend b\n", tmp_path)
    joined = "\n".join(out)
    with pytest.raises(SampleError) as exc:
        compile_condition(text.split(), AclSet(), Hook.FE_REQ_CNT)
    assert str(exc.value) in joined, joined
