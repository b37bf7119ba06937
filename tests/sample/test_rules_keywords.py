"""The rule keywords (acl, use_backend, use-server, tcp-request, tcp-response) through the
configuration parser, with HAProxy 2.6's messages, and the rules they compile."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsproxy.config.model import Where
from nsproxy.config.model_rules import ProxyRules
from nsproxy.config.parser import ParseState, parse_files
from nsproxy.sample import Verdict

from .hello import client_hello
from .txn import StubTxn

HEAD = """defaults
  mode tcp
  timeout client 1s
  timeout server 1s
  timeout connect 1s
"""


def parse(tmp_path: Path, body: str) -> ParseState:
    cfg = tmp_path / "t.cfg"
    cfg.write_text(HEAD + body)
    return parse_files([str(cfg)])[1]


def messages(state: ParseState, tmp_path: Path) -> list[str]:
    prefix = str(tmp_path / "t.cfg")
    return [m.replace(prefix, "t.cfg") for m in state.errors + state.warnings]


def rules_of(state: ParseState, name: str) -> ProxyRules:
    sec = next(s for s in state.proxies if s.name == name)
    rules: ProxyRules = sec.fields.get("rules", ProxyRules())
    return rules


ERRORS = [
    (
        "  acl a src 1.2.3.4",
        "parsing [t.cfg:6] : 'acl' not allowed in anonymous 'defaults' section.",
    ),
    (
        "  tcp-request content accept",
        "parsing [t.cfg:6] : tcp-request content is not allowed in anonymous 'defaults' sections",
    ),
    (
        "  tcp-request inspect-delay 3s",
        "parsing [t.cfg:6] : tcp-request inspect-delay is not allowed in anonymous 'defaults' "
        "sections",
    ),
    ("frontend fe\n  use_backend", "parsing [t.cfg:7] : 'use_backend' expects a backend name."),
    (
        "frontend fe\n  use_backend b foo",
        "parsing [t.cfg:7] : unexpected keyword 'foo' after switching rule, only 'if' and "
        "'unless' are allowed.",
    ),
    (
        "frontend fe\n  use_backend %[nosuch]",
        "parsing [t.cfg:7]: failed to parse use_backend rule '%[nosuch]' : failed to parse "
        "sample expression <nosuch]> : unknown fetch method 'nosuch'.",
    ),
    (
        "frontend fe\n  tcp-request content accept foo",
        "parsing [t.cfg:7] : 'tcp-request content accept' only accepts 'if' or 'unless', in "
        "frontend 'fe' (got 'foo')",
    ),
    (
        "frontend fe\n  tcp-request content set-var(txn.x)",
        "parsing [t.cfg:7] : missing fetch method",
    ),
    (
        "frontend fe\n  tcp-request content set-var(x) src",
        "parsing [t.cfg:7] : invalid variable name 'x'. A variable name must be start by its "
        "scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'",
    ),
    (
        "frontend fe\n  tcp-request foo",
        "parsing [t.cfg:7] : 'tcp-request' expects 'inspect-delay', 'connection', or 'content' "
        "in frontend 'fe' (got 'foo')",
    ),
    (
        "frontend fe\n  tcp-request inspect-delay",
        "parsing [t.cfg:7] : 'tcp-request inspect-delay' expects a positive delay in "
        "milliseconds, in frontend 'fe'",
    ),
    (
        "frontend fe\n  tcp-request inspect-delay x",
        "parsing [t.cfg:7] : 'tcp-request inspect-delay' expects a positive delay in "
        "milliseconds, in frontend 'fe' (unexpected character 'x')",
    ),
    (
        "frontend fe\n  tcp-request connection accept if { req.len gt 0 }",
        "parsing [t.cfg:7] : anonymous acl will never match in 'tcp-request connection' because "
        "it uses keyword 'req.len' which is incompatible with 'frontend tcp-request connection "
        "rule'",
    ),
    (
        "frontend fe\n  tcp-request connection set-var(txn.x) req.len",
        "parsing [t.cfg:7] : fetch method 'set-var(txn.x)' extracts information from 'request "
        "buffer', none of which is available here",
    ),
    (
        "frontend fe\n  tcp-response content accept",
        "parsing [t.cfg:7] : tcp-response content is only allowed in 'backend' sections or "
        "'defaults' section with a name",
    ),
    (
        "frontend fe\n  tcp-request content reject if TRUE extra",
        "parsing [t.cfg:7] : 'tcp-request content reject' : error detected in frontend 'fe' "
        "while parsing 'if' condition : no such ACL : 'extra'",
    ),
    ("backend b\n  use-server", "parsing [t.cfg:7] : 'use-server' expects a server name."),
    (
        "backend b\n  use-server s1",
        "parsing [t.cfg:7] : 'use-server' requires either 'if' or 'unless' followed by a "
        "condition.",
    ),
    (
        "backend b\n  use-server s1 if { nosuch }",
        "parsing [t.cfg:7] : error detected while parsing switching rule : unknown fetch method "
        "'nosuch' in ACL expression 'nosuch'.",
    ),
    (
        "backend b\n  tcp-response content accept if { req.len gt 0 }",
        "parsing [t.cfg:7] : anonymous acl will never match in 'tcp-response content' because "
        "it uses keyword 'req.len' which is incompatible with 'backend tcp-response content "
        "rule'",
    ),
    (
        "frontend fe\n  tcp-request content expect-proxy layer4",
        "parsing [t.cfg:7] : 'expect-proxy layer4' is not allowed in 'tcp-request content' rules "
        "in frontend 'fe'",
    ),
    (
        "frontend fe\n  tcp-request connection expect-proxy foo",
        "parsing [t.cfg:7] : 'tcp-request connection expect-proxy' only supports 'layer4' in "
        "frontend 'fe' (got 'foo')",
    ),
    (
        "frontend fe\n  tcp-request content set-var(txn.x src",
        "parsing [t.cfg:7] : incomplete argument after action 'set-var(txn.x'. Expects "
        "'set-var(<var-name>)', 'set-var-fmt(<var-name>)' or 'unset-var(<var-name>)'",
    ),
    (
        "frontend fe\n  tcp-request content accept\n  tcp-request connection accept",
        "parsing [t.cfg:8] : a 'tcp-request' rule placed after a 'tcp-request content' rule will "
        "still be processed before.",
    ),
    (
        "backend be\n  tcp-request connection accept",
        "parsing [t.cfg:7] : tcp-request connection is not allowed because backend be is not a "
        "frontend",
    ),
    (
        "backend be\n  tcp-response content foo",
        "parsing [t.cfg:7] : 'tcp-response content' expects 'accept', 'close', 'reject', "
        "'ot-group', 'set-log-level', 'set-nice', 'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', "
        "'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'send-spoe-group', "
        "'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'set-mark', 'set-tos', 'silent-drop' "
        "in backend 'be' (got 'foo').",
    ),
    (
        "frontend fe\n  tcp-request content accept if { src }",
        "parsing acl keyword 'src' :\n"
        "  no pattern to match against were provided, so this ACL will never match.\n"
        "  If this is what you intended, please add '--' to get rid of this warning.\n"
        "  If you intended to match only for existence, please use '-m found'.\n"
        "  If you wanted to force an int to match as a bool, please use '-m bool'.",
    ),
    (
        "frontend fe\n  acl a! src 1.2.3.4",
        "parsing [t.cfg:7] : character '!' is not permitted in acl name 'a!'.",
    ),
    (
        "frontend fe\n  acl a src 1.2.3.x",
        "parsing [t.cfg:7] : error detected while parsing ACL 'a' : '1.2.3.x' is not a valid "
        "IPv4 or IPv6 address.",
    ),
]


@pytest.mark.parametrize(("body", "message"), ERRORS)
def test_messages_are_haproxys(tmp_path: Path, body: str, message: str) -> None:
    # Every text above is what `haproxy -c` 2.6 printed for the same line.
    assert message in messages(parse(tmp_path, body), tmp_path)


def test_openshift_public_ssl_frontend(tmp_path: Path) -> None:
    passthrough = tmp_path / "os_sni_passthrough.map"
    passthrough.write_text("^secure\\.apps\\.example\\.com$ 1\n")
    tcp_be = tmp_path / "os_tcp_be.map"
    tcp_be.write_text("^secure\\.apps\\.example\\.com$ be_tcp:ns1:secure\n")
    state = parse(
        tmp_path,
        f"""frontend public_ssl
  bind 127.0.0.1:10443
  tcp-request inspect-delay 5s
  tcp-request content accept if {{ req_ssl_hello_type 1 }}
  acl sni req.ssl_sni -m found
  acl sni_passthrough req.ssl_sni,lower,map_reg({passthrough}) -m found
  use_backend %[req.ssl_sni,lower,map_reg({tcp_be})] if sni sni_passthrough
  use_backend be_sni if sni
  default_backend be_no_sni
backend be_sni
backend be_no_sni
backend be_tcp:ns1:secure
""",
    )
    assert state.errors == []
    rules = rules_of(state, "public_ssl")
    assert rules.inspect_delay == 5.0
    (accept,) = rules.tcp_request_content
    assert accept.action == "accept" and accept.cond is not None
    dynamic, static = rules.use_backend
    assert static.name == "be_sni" and static.dynamic is None
    t = StubTxn(req_data=client_hello(b"SECURE.apps.example.com"))
    assert accept.cond(t) is Verdict.PASS
    assert dynamic.cond is not None and dynamic.cond(t) is Verdict.PASS
    assert dynamic.dynamic is not None and dynamic.dynamic(t) == "be_tcp:ns1:secure"
    other = StubTxn(req_data=client_hello(b"edge.apps.example.com"))
    assert dynamic.cond(other) is Verdict.FAIL
    assert static.cond is not None and static.cond(other) is Verdict.PASS
    assert accept.cond(StubTxn(req_data=client_hello()[:12])) is Verdict.MISS
    assert state.global_.fields["pattern_refs"].lookup(str(tcp_be)) is not None


def test_tcp_rule_actions(tmp_path: Path) -> None:
    state = parse(
        tmp_path,
        """frontend fe
  bind 127.0.0.1:10443
  tcp-request connection expect-proxy layer4 if { src 10.0.0.0/8 }
  tcp-request connection reject if { src 192.0.2.0/24 }
  tcp-request content set-var(sess.tenant) fc_netns,lower
  tcp-request content set-dst ipv4(10.1.2.3)
  tcp-request content silent-drop if { req.len gt 100 }
  tcp-request content unset-var(sess.tenant)
backend b
  tcp-response inspect-delay 1s
  tcp-response content close if { res.len gt 0 }
""",
    )
    assert state.errors == [], state.errors
    fe = rules_of(state, "fe")
    assert [r.action for r in fe.tcp_request_connection] == ["expect-proxy", "reject"]
    assert [r.action for r in fe.tcp_request_content] == [
        "set-var",
        "set-dst",
        "silent-drop",
        "unset-var",
    ]
    setvar = fe.tcp_request_content[0]
    assert setvar.var == ("sess", "tenant") and setvar.expr is not None
    smp = setvar.expr(StubTxn(fc_netns="Tenant-A"))
    assert smp is not None and smp.value == "tenant-a"
    be = rules_of(state, "b")
    assert be.response_inspect_delay == 1.0
    assert be.tcp_response_content[0].action == "close"
    assert not be.empty and ProxyRules().empty
    assert fe.tcp_request_connection[0].where == Where(str(tmp_path / "t.cfg"), 8)


def test_inspect_rules_wait_then_resume(tmp_path: Path) -> None:
    from nsproxy.config.model_rules import choose_backend, choose_server, run_tcp_rules

    state = parse(
        tmp_path,
        """frontend fe
  bind 127.0.0.1:10443
  tcp-request inspect-delay 5s
  tcp-request content set-var(sess.seen) int(1)
  tcp-request content set-var(sess.sni) req.ssl_sni
  tcp-request content accept if { req.ssl_hello_type 1 }
  tcp-request content reject
  use_backend be_%[var(sess.sni),field(1,.)] if { var(sess.sni) -m found }
backend be
  use-server s2 if { src 192.0.2.0/24 }
  use-server s1 if TRUE
""",
    )
    assert state.errors == [], state.errors
    fe, be = rules_of(state, "fe"), rules_of(state, "be")
    hello = client_hello(b"www.example.com")
    t = StubTxn(req_data=hello[:10])
    first = run_tcp_rules(fe.tcp_request_content, t)
    # The hello is incomplete: wait at the accept rule; the set-var rules before it ran.
    assert (first.action, first.index) == ("wait", 2)
    assert "seen" in t.vars["sess"] and "sni" not in t.vars["sess"]
    t.req_data = hello
    second = run_tcp_rules(fe.tcp_request_content, t)
    assert second.action == "accept"
    # HAProxy runs the list again from the top: set-var now sees the whole hello.
    assert choose_backend(fe, t, "dflt", lambda n: n == "be_www") == "be_www"
    t2 = StubTxn(req_data=hello)
    assert run_tcp_rules(fe.tcp_request_content, t2).action == "accept"
    assert choose_backend(fe, t2, "dflt", lambda n: n == "be_www") == "be_www"
    assert choose_backend(fe, t2, "dflt", lambda n: False) == "dflt"
    expired = StubTxn(req_data=hello[:10], req_final=True)
    assert run_tcp_rules(fe.tcp_request_content, expired).action == "reject"
    assert choose_server(be, StubTxn(), lambda n: True) == "s2"
    assert choose_server(be, StubTxn(), lambda n: n != "s2") == "s1"
    assert choose_server(be, StubTxn(src=("10.0.0.1", 1)), lambda n: True) == "s1"


def test_named_defaults_rules_are_inherited_acls_are_not(tmp_path: Path) -> None:
    state = parse(
        tmp_path,
        """defaults base
  mode tcp
  acl x src 1.2.3.4
  tcp-request inspect-delay 2s
  tcp-request content reject if x
frontend fe from base
  bind 127.0.0.1:10443
  tcp-request content accept if { src 10.0.0.0/8 }
frontend fe2 from base
  bind 127.0.0.1:10444
  tcp-request content accept if x
""",
    )
    assert messages(state, tmp_path) == [
        "parsing [t.cfg:16] : 'tcp-request content accept' : error detected in frontend 'fe2' "
        "while parsing 'if' condition : no such ACL : 'x'"
    ]
    fe = rules_of(state, "fe")
    assert fe.inspect_delay == 2.0
    assert [r.action for r in fe.tcp_request_content] == ["reject", "accept"]
