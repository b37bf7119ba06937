"""Rules from real configurations compile and route as written: the OpenShift router's
passthrough frontend (public_ssl) and the haproxytech ingress TCP custom-resource example."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nsproxy.sample import AclSet, CompileEnv, Hook, Verdict, compile_condition, compile_logformat
from nsproxy.sample.context import Txn

from .hello import client_hello
from .txn import StubTxn

Rule = tuple[Callable[[Txn], str], Callable[[Txn], Verdict] | None]


def switch(rules: list[Rule], default: str, txn: Txn) -> str | None:
    """HAProxy's backend switching: first rule whose condition passes; None = wait (MISS)."""
    for name, cond in rules:
        verdict = Verdict.PASS if cond is None else cond(txn)
        if verdict is Verdict.MISS:
            return None
        if verdict is Verdict.PASS:
            chosen = name(txn)
            if chosen:
                return chosen
    return default


def use_backend(words: list[str], acls: AclSet, env: CompileEnv) -> Rule:
    """`use_backend NAME|%[expr] [if|unless cond]` compiled as HAProxy does (no '-' for absent)."""
    name = compile_logformat(words[0], Hook.FE_SET_BCK, env, mandatory=False, merge_spaces=False)
    cond = compile_condition(words[1:], acls, Hook.FE_SET_BCK, env) if len(words) > 1 else None
    return name, cond


def test_openshift_passthrough_frontend(tmp_path: Path) -> None:
    passthrough = tmp_path / "os_sni_passthrough.map"
    passthrough.write_text("^secure\\.apps\\.example\\.com$ 1\n^db\\.apps\\.example\\.com$ 1\n")
    tcp_be = tmp_path / "os_tcp_be.map"
    tcp_be.write_text(
        "^secure\\.apps\\.example\\.com$ be_tcp:ns1:secure\n"
        "^db\\.apps\\.example\\.com$ be_tcp:ns2:db\n"
    )
    env = CompileEnv()
    acls = AclSet()
    accept = compile_condition(
        ["if", "{", "req_ssl_hello_type", "1", "}"], acls, Hook.FE_REQ_CNT, env
    )
    acls.add(["sni", "req.ssl_sni", "-m", "found"], env)
    acls.add(["sni_passthrough", f"req.ssl_sni,lower,map_reg({passthrough})", "-m", "found"], env)
    rules = [
        use_backend(
            [f"%[req.ssl_sni,lower,map_reg({tcp_be})]", "if", "sni", "sni_passthrough"], acls, env
        ),
        use_backend(["be_sni", "if", "sni"], acls, env),
    ]

    def route(data: bytes, final: bool = False) -> tuple[Verdict, str | None]:
        t = StubTxn(req_data=data, req_final=final)
        return accept(t), switch(rules, "be_no_sni", t)

    assert route(client_hello(b"Secure.Apps.Example.com")) == (Verdict.PASS, "be_tcp:ns1:secure")
    assert route(client_hello(b"db.apps.example.com")) == (Verdict.PASS, "be_tcp:ns2:db")
    assert route(client_hello(b"edge.apps.example.com")) == (Verdict.PASS, "be_sni")
    assert route(client_hello(None)) == (Verdict.PASS, "be_no_sni")
    partial = client_hello(b"db.apps.example.com")[:30]
    assert route(partial) == (Verdict.MISS, None)
    # inspect-delay over: the rules run on what arrived.
    assert route(partial, final=True) == (Verdict.FAIL, "be_no_sni")


def test_openshift_whitelist_and_v6_check(tmp_path: Path) -> None:
    whitelist = tmp_path / "whitelist"
    whitelist.write_text("192.0.2.0/24\n2001:db8::/32\n")
    env = CompileEnv()
    acls = AclSet()
    acls.add(["whitelist", "src", "-f", str(whitelist)], env)
    acls.add(["ipv6_addr", "src", "-m", "sub", ":"], env)
    reject = compile_condition(["if", "!whitelist"], acls, Hook.BE_REQ_CNT, env)
    v6 = compile_condition(["if", "ipv6_addr"], acls, Hook.BE_REQ_CNT, env)
    assert reject(StubTxn()) is Verdict.FAIL
    assert reject(StubTxn(src=("203.0.113.9", 1))) is Verdict.PASS
    assert reject(StubTxn(src=("2001:db8::5", 1))) is Verdict.FAIL
    assert v6(StubTxn(src=("2001:db8::5", 1))) is Verdict.PASS
    assert v6(StubTxn()) is Verdict.FAIL


def test_haproxytech_tcp_custom_resource() -> None:
    env = CompileEnv()
    acls = AclSet()
    acls.add(["switch_be_0", "req_ssl_sni", "-i", "backend0.example.com"], env)
    acls.add(["switch_be_1", "req_ssl_sni", "-i", "backend1.example.com"], env)
    accept = compile_condition(
        ["if", "{", "req_ssl_hello_type", "1", "}"], acls, Hook.FE_REQ_CNT, env
    )
    rules = [
        use_backend(["e2e-tests-crd-tcp_http-echo-0_https", "if", "switch_be_0"], acls, env),
        use_backend(["e2e-tests-crd-tcp_http-echo-1_https", "if", "switch_be_1"], acls, env),
        use_backend(
            [
                "e2e-tests-crd-tcp_http-echo-0_https",
                "if",
                "{",
                "req_ssl_sni",
                "-i",
                "backend0.example.com",
                "}",
            ],
            acls,
            env,
        ),
    ]
    log = compile_logformat("%{+Q}o %t %s", Hook.FE_LOG_END, env)
    t = StubTxn(req_data=client_hello(b"BACKEND1.example.com"))
    assert accept(t) is Verdict.PASS
    assert switch(rules, "default", t) == "e2e-tests-crd-tcp_http-echo-1_https"
    t0 = StubTxn(req_data=client_hello(b"backend0.example.com"))
    assert switch(rules, "default", t0) == "e2e-tests-crd-tcp_http-echo-0_https"
    assert switch(rules, "default", StubTxn(req_data=client_hello(b"x.example.com"))) == "default"
    assert log(StubTxn(server_name="srv1")).endswith(' "srv1"')


def test_tenant_routing_by_namespace(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.map"
    tenants.write_text("tenant-a be_a\ntenant-b be_b\n")
    env = CompileEnv()
    acls = AclSet()
    rules = [
        use_backend([f"%[fc_netns,map({tenants})]"], acls, env),
    ]
    assert switch(rules, "be_default", StubTxn(fc_netns="tenant-b")) == "be_b"
    assert switch(rules, "be_default", StubTxn(fc_netns="tenant-z")) == "be_default"
    assert switch(rules, "be_default", StubTxn(fc_netns=None)) == "be_default"
    direct = [use_backend(["be_%[fc_netns]"], acls, env)]
    assert switch(direct, "be_default", StubTxn(fc_netns="tenant-a")) == "be_tenant-a"
