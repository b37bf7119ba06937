"""Sample expressions: parsing, HAProxy's error texts, fetches and converters on known inputs."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from nsproxy.sample import (
    CompileEnv,
    Hook,
    Sample,
    SampleError,
    SmpType,
    compile_expr,
    parse_expr,
)
from nsproxy.sample.context import Txn
from nsproxy.sample.types import MISSING

from .txn import StubTxn, with_input


def value(text: str, txn: Txn | None = None) -> object:
    """The value of `text` for `txn` (no check of where the fetch may run)."""
    smp = parse_expr(text)[0].get(txn or StubTxn())
    return smp.value if isinstance(smp, Sample) else None


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("src", IPv4Address("192.0.2.10")),
        ("src_port", 40000),
        ("dst", IPv4Address("198.51.100.1")),
        ("dst_port", 443),
        ("so_id", 1),
        ("so_name", "sock-1"),
        ("fe_name", "fe_main"),
        ("fe_id", 2),
        ("be_name", None),
        ("srv_name", None),
        ("fc_netns", None),
        ("always_true", True),
        ("always_false", False),
        ("int(-12)", -12),
        ("str(abc)", "abc"),
        ("bool(true)", True),
        ("bool(0)", False),
        ("ipv4(10.1.2.3)", IPv4Address("10.1.2.3")),
        ("ipv6(2001:db8::1)", IPv6Address("2001:db8::1")),
        ("bin(0aFF)", b"\x0a\xff"),
        ("meth(get)", "GET"),
        ("str(AbC),lower", "abc"),
        ("str(AbC),upper", "ABC"),
        ("str(abc),length", 3),
        ("str(abc),hex", "616263"),
        ("str(a.b.c.d),field(2,.)", "b"),
        ("str(a.b.c.d),field(-1,.)", "d"),
        ("str(a.b.c.d),field(2,.,2)", "b.c"),
        ("str(a.b.c.d),field(2,.,0)", "b.c.d"),
        ("str(a.b.c.d),field(-2,.,2)", "b.c"),
        ("str(a.b.c.d),field(9,.)", None),
        ("str(..a..b..),word(2,.)", "b"),
        ("str(..a..b..),word(-1,.)", "b"),
        ("str(..a..b..),word(9,.)", ""),
        ("str(abcabc),regsub(b,X)", "aXcabc"),
        ("str(abcabc),regsub(b,X,g)", "aXcaXc"),
        ("str(abc),regsub(c*,X,g)", "XaXbXX"),
        ("str(host.Example.com),regsub('^([^.]*)\\.','\\1-')", "host-Example.com"),
        ("str('a\"b/'),json", 'a\\"b\\/'),
        ("str(abc),concat(-,,-)", "abc--"),
        ("str(abcdef),bytes(2)", b"cdef"),
        ("str(abcdef),bytes(2,3)", b"cde"),
        ("str(abcdef),bytes(9)", b""),
        ("str(xxabcxx),ltrim(x)", "abcxx"),
        ("str(xxabcxx),rtrim(x)", "xxabc"),
        ("int(7),add(5)", 12),
        ("int(7),sub(10)", -3),
        ("int(7),mul(-3)", -21),
        ("int(-7),div(2)", -3),
        ("int(7),div(0)", 2**63 - 1),
        ("int(-7),mod(3)", -1),
        ("int(7),mod(0)", 0),
        ("int(6),and(3)", 2),
        ("int(6),or(3)", 7),
        ("int(6),xor(3)", 5),
        ("int(6),neg", -6),
        ("int(6),cpl", -7),
        ("int(6),not", False),
        ("int(0),not", True),
        ("int(6),bool", True),
        ("int(5),odd", True),
        ("int(9223372036854775807),add(1)", 2**63 - 1),
        ("int(-9223372036854775808),neg", 2**63 - 1),
        ("src,ipmask(24)", IPv4Address("192.0.2.0")),
        ("ipv6(2001:db8::1),ipmask(24,64)", IPv6Address("2001:db8::")),
        ("ipv6(2001:db8::1),ipmask(24)", None),
        ("ipv4(10.1.2.3),ipmask(255.255.0.0)", IPv4Address("10.1.0.0")),
        ("str(10.1.2.3),ipmask(8)", IPv4Address("10.0.0.0")),
        ("int(1),iif(yes,no)", "yes"),
        ("str(abc),base64", "YWJj"),
        ("str(YWJj),b64dec", b"abc"),
        ("str(ff),hex2i", 255),
        ("str(abc),crc32", 891568578),
        ("str(abc),djb2", 193485963),
    ],
)
def test_fetch_and_converters(text: str, want: object) -> None:
    assert value(text) == want


def test_set_var_and_var() -> None:
    t = StubTxn()
    assert value("str(x1),set-var(txn.foo),upper", t) == "X1"
    assert value("var(txn.foo)", t) == "x1"
    assert value("var(txn.bar)", t) is None
    assert value("var(txn.bar,dflt)", t) == "dflt"
    assert value("str(abc),concat(<,txn.foo,>)", t) == "abc<x1>"
    assert value("str(x1),strcmp(txn.foo)", t) == 0
    assert value("str(x0),strcmp(txn.foo)", t) == -1
    t.vars["txn"]["n"] = Sample(SmpType.SINT, 4)
    assert value("int(10),sub(txn.n)", t) == 6
    assert value("int(10),add(txn.missing)", t) is None


def test_nbsrv_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    t = StubTxn(backend_name="be1", servers={"be1": 3, "be2": 0})
    assert value("nbsrv", t) == 3
    assert value("nbsrv(be2)", t) == 0
    assert value("str(be1),nbsrv", t) == 3
    monkeypatch.setenv("NSPROXY_TEST_ENV", "hello")
    assert value("env(NSPROXY_TEST_ENV)") == "hello"
    assert value("env(NSPROXY_TEST_UNSET_ENV)") is None


def test_empty_backend_argument_is_the_current_proxy() -> None:
    t = StubTxn(backend_name="other", servers={"be1": 3, "other": 1})
    get = parse_expr("nbsrv", CompileEnv(proxy="be1"))[0].get
    assert get(t) == Sample(SmpType.SINT, 3)


def test_fc_netns_is_a_fetch() -> None:
    t = StubTxn(fc_netns="tenant-a", bc_netns="tenant-b")
    assert value("fc_netns", t) == "tenant-a"
    assert value("fc_netns,upper,concat(-be)", t) == "TENANT-A-be"


# Each text is also checked against `haproxy -c` in test_differential_config.py.
BAD_EXPRESSIONS = [
    ("nosuch", "unknown fetch method 'nosuch'"),
    ("src,nosuch", "unknown converter 'nosuch'"),
    ("src)", "missing comma after fetch keyword 'src'"),
    ("str(a),lower)", "missing comma after converter 'lower'"),
    ("int(x)", "fetch method 'int' : failed to parse 'x' as type 'integer' at position 1"),
    ("int(1", "fetch method 'int' : expected ')'"),
    ("str(a),field(0,.)", "invalid args in converter 'field' : Unexpected value 0 for index"),
    ("str(a),field(1,)", "invalid args in converter 'field' : Empty separators list"),
    (
        "str(a),field",
        "invalid arg 1 in converter 'field' : expected type 'integer' at position 1, "
        "but got nothing",
    ),
    ("int(1),add(x)", "invalid args in converter 'add' : expects an integer or a variable name"),
    ("str(a),lower(1)", "invalid arg 1 in converter 'lower' : expected ')' before '1)'"),
    (
        "var(foo)",
        "invalid args in fetch method 'var' : invalid variable name 'foo'. A variable name must "
        "be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'",
    ),
    ("bool(maybe)", "invalid args in fetch method 'bool' : Expects 'true', 'false', '0' or '1'"),
    (
        "str(a),json(x)",
        "invalid args in converter 'json' : Unexpected input code type. Allowed value are "
        "'ascii', 'utf8', 'utf8s', 'utf8p' and 'utf8ps'",
    ),
    (
        "src,ipmask(33)",
        "invalid arg 1 in converter 'ipmask' : failed to parse '33' as type 'IPv4 mask' at "
        "position 1",
    ),
    (
        "str(a),bytes",
        "invalid arg 1 in converter 'bytes' : expected type 'integer' at position 1, "
        "but got nothing",
    ),
    ("bin(zz)", "invalid args in fetch method 'bin' : an hex digit is expected (found 'z')"),
    ("bin(abc)", "invalid args in fetch method 'bin' : an even number of hex digit is expected"),
    ("meth(G@T)", "invalid args in fetch method 'meth' : expects valid method."),
    (
        "str(a),regsub(a,b,x)",
        "invalid args in converter 'regsub' : invalid regex flag 'x', only 'i' and 'g' are "
        "supported",
    ),
    ("str(a),concat(a,b", "invalid arg 2 in converter 'concat' : expected ')'"),
    (
        "str(a),strcmp(foo)",
        "invalid args in converter 'strcmp' : failed to register variable name 'foo'",
    ),
    (
        "str(a),map(/nonexistent)",
        "invalid args in converter 'map' : failed to open pattern file </nonexistent>",
    ),
    (
        "req.payload_lv(-1,1)",
        "invalid args in fetch method 'req.payload_lv' : payload offset1 must be positive",
    ),
    (
        "req.payload_lv(0,0)",
        "invalid args in fetch method 'req.payload_lv' : payload length must be > 0",
    ),
    (
        "req.payload_lv(0,1,x)",
        "invalid args in fetch method 'req.payload_lv' : payload offset2 is not a number",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_EXPRESSIONS)
def test_errors_have_haproxy_texts(text: str, message: str) -> None:
    with pytest.raises(SampleError) as exc:
        compile_expr(text, Hook.FE_REQ_CNT)
    assert str(exc.value) == message


@pytest.mark.parametrize("text", ["str", "src,lower", "str(),length"])
def test_accepted_as_haproxy_does(text: str) -> None:
    compile_expr(text, Hook.FE_REQ_CNT)


def test_fetch_unavailable_where_used() -> None:
    with pytest.raises(SampleError) as exc:
        compile_expr("req.ssl_sni", Hook.FE_CON_ACC)
    assert str(exc.value) == (
        "fetch method 'req.ssl_sni' extracts information from 'request buffer', "
        "none of which is available here"
    )
    with pytest.raises(SampleError) as exc:
        compile_expr("be_name", Hook.FE_REQ_CNT)
    assert "'backend', none of which" in str(exc.value)
    compile_expr("be_name", Hook.BE_REQ_CNT)


def test_payload_fetches_and_may_change() -> None:
    get = parse_expr("req.payload(0,3)")[0].get
    assert get(StubTxn(req_data=b"ab")) is MISSING
    assert get(StubTxn(req_data=b"ab", req_final=True)) is None
    assert get(StubTxn(req_data=b"abcd")) == Sample(SmpType.BIN, b"abc")
    rest = parse_expr("req.payload(1,0)")[0].get
    assert rest(StubTxn(req_data=b"abcd")) == Sample(SmpType.BIN, b"bcd", True)
    lv = parse_expr("req.payload_lv(0,1)")[0].get
    assert lv(StubTxn(req_data=b"\x03abcz")) == Sample(SmpType.BIN, b"abc")
    assert lv(StubTxn(req_data=b"\x05abc")) is MISSING
    lv2 = parse_expr("req.payload_lv(0,1,+1)")[0].get
    assert lv2(StubTxn(req_data=b"\x02xabz")) == Sample(SmpType.BIN, b"ab")
    n = parse_expr("req.len")[0].get
    assert n(StubTxn(req_data=b"abc")) == Sample(SmpType.SINT, 3, True)
    assert n(StubTxn(req_data=b"abc", req_final=True)) == Sample(SmpType.SINT, 3, False)


def test_conversion_failure_keeps_may_change() -> None:
    get = parse_expr("req.payload(0,0),field(2,x)")[0].get
    assert get(StubTxn(req_data=b"abc")) is MISSING
    assert get(StubTxn(req_data=b"abc", req_final=True)) is None


def test_input_via_var() -> None:
    assert value("var(txn.in),lower", with_input("ABC")) == "abc"
