"""Differential tests: the engine and the local HAProxy 2.6 on the same inputs.

HAProxy reads each input from a request header into `txn.in` and answers with
`http-request return ... lf-string "%[var(txn.in),<chain>]"` (converters) or with "1"/"0"
according to an ACL (matches); the engine computes the same text from the same variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nsproxy.sample import AclSet, CompileEnv, Hook, Verdict, compile_condition, compile_logformat

from .haproxy_ref import Client, needs_haproxy, running
from .txn import with_input

pytestmark = needs_haproxy

INPUTS = [
    "",
    "abc",
    "AbC",
    "a.b.c",
    "..a..b..",
    "www.Example.com",
    "example.com",
    "sub.example.com.evil",
    "/api/v1/users",
    "/api",
    "10.1.2.3",
    "10.1.2.300",
    "192.168.1.200",
    "2001:db8::1",
    "::ffff:10.1.2.3",
    "42",
    "-17",
    "007",
    "12abc",
    "9223372036854775807",
    "x y\tz",
    'qu"ote\\',
    "caf\xe9",
    "a,b;c=d",
]

CHAINS = [
    "lower",
    "upper",
    "length",
    "hex",
    "field(2,.)",
    "field(-1,.)",
    "field(1,.,2)",
    "field(2,.,0)",
    "field(-2,.,2)",
    "word(1,.)",
    "word(2,.)",
    "word(-1,.)",
    "word(2,./,0)",
    "regsub(a,X)",
    "regsub(a,X,g)",
    "regsub(a,X,ig)",
    "regsub(c*,X,g)",
    "regsub('^([^.]*)\\\\.','\\\\1-')",
    "json",
    "json(utf8s)",
    "concat(<,,>)",
    "bytes(1)",
    "bytes(1,2)",
    "ltrim(.a)",
    "rtrim(.b)",
    "add(3)",
    "sub(10)",
    "mul(-3)",
    "div(4)",
    "mod(5)",
    "and(6)",
    "or(1)",
    "xor(5)",
    "neg",
    "cpl",
    "not",
    "bool",
    "odd",
    "even",
    "ipmask(24)",
    "ipmask(16,64)",
    "ipmask(255.0.255.0)",
    "base64",
    "crc32",
    "djb2",
    "sdbm",
    "crc32(1)",
    "hex2i",
    "cut_crlf",
    "lower,upper,length,add(1)",
    "set-var(txn.copy),upper,concat(-,txn.copy,-)",
    "strcmp(txn.in)",
    "be2dec(-,2)",
    "be2dec(:,1,1)",
    "be2dec(,3,1)",
    "be2hex",
    "be2hex(:,2)",
    "be2hex(,3,1)",
    "htonl,hex",
    "utime(%Y%m%d-%H%M%S)",
    "utime(%d/%b/%Y,3600)",
    "ub64enc",
    "ub64dec,hex",
    "crc32c",
    "crc32c(1)",
    "set-var(txn.c),set-var(txn.c,ifnotexists)",
    "set-var(txn.c,ifexists)",
    "set-var(txn.c,ifnotempty),length",
    "set-var(txn.c,ifempty),length",
    "add(0),set-var(txn.c),add(1),set-var(txn.c,ifgt)",
    "add(0),set-var(txn.c),add(1),set-var(txn.c,iflt)",
    "set-var(txn.c),unset-var(txn.c),set-var(txn.c,ifset)",
    "set-var(txn.c),unset-var(txn.c),set-var(txn.c,ifnotset),concat(:,txn.c)",
    "set-var(txn.c,ifnotset,ifnotexists)",
]


def _q(chain: str) -> str:
    return chain.replace('"', '\\"')


@pytest.fixture(scope="module")
def reference() -> Iterator[Client]:
    lines = ["  http-request set-var(txn.in) req.fhdr(x-in)"]
    for i, chain in enumerate(CHAINS):
        lines.append(
            f"  http-request return status 200 content-type text/plain lf-string "
            f'"%[var(txn.in),{_q(chain)}]" if {{ path /c{i} }}'
        )
    with running("\n".join(lines)) as port:
        client = Client(port)
        yield client
        client.close()


@pytest.mark.parametrize("index", range(len(CHAINS)), ids=CHAINS)
def test_converters_match_haproxy(reference: Client, index: int) -> None:
    # The configuration lexer removes one level of backslashes before the engine sees it.
    chain = CHAINS[index].replace("\\\\", "\\")
    render = compile_logformat(
        f"%[var(txn.in),{chain}]", Hook.FE_HRQ_HDR, mandatory=False, merge_spaces=False, http=True
    )
    for value in INPUTS:
        want = reference.get(f"/c{index}", value)
        assert render(with_input(value)) == want, (chain, value)


MATCHES = [
    "-m str abc",
    "-m str -i abc",
    "-m str abc example.com",
    "-m beg www. /ap",
    "-m beg -i WWW.",
    "-m end .com",
    "-m end -i .COM",
    "-m sub b.c",
    "-m sub -i B.C",
    "-m dom example.com",
    "-m dom -i EXAMPLE.com",
    "-m dom .a.",
    "-m dir api",
    "-m dir /api/v1",
    "-m reg ^[0-9]+$",
    "-m reg -i ^A",
    "-m len 3",
    "-m len 4:",
    "-m len :2",
    "-m int 42",
    "-m int 0:50",
    "-m int gt 10",
    "-m int le 7",
    "-m int lt -17",
    "-m ip 10.0.0.0/8",
    "-m ip 10.1.2.3 2001:db8::/32",
    "-m ip 192.168.1.0/255.255.255.0",
    "-m ip 10.1.2.3/32",
    "-m found",
    "-m bool",
    "-m bin 616263",
    "-m beg -- -1",
    "-m dom .",
    "-m dir /",
    "-m reg -i ^a.*C$",
]

# Conditions over named ACLs: several lines per name (ORed), '!', '||', 'or', predefined.
NAMED_ACLS = [
    "short var(txn.in) -m len :3",
    "short var(txn.in) -m beg www.",
    "num var(txn.in) -m reg ^-?[0-9]+$",
    "dotted var(txn.in) -m sub .",
    "local var(txn.in),ipmask(8) -m ip 10.0.0.0",
]
CONDITIONS = [
    "if short",
    "if !short",
    "if short num",
    "if short || dotted",
    "if short or !dotted num",
    "unless num",
    "if TRUE !FALSE short",
    "if local || { var(txn.in) -m str 42 }",
    "if !short !num !dotted",
]


@pytest.fixture(scope="module")
def matcher() -> Iterator[Client]:
    lines = ["  http-request set-var(txn.in) req.fhdr(x-in)"]
    lines += [f"  acl {a}" for a in NAMED_ACLS]
    for i, c in enumerate(CONDITIONS):
        # '||' binds loosest, so a condition is evaluated on its own into a variable.
        lines.append(f"  http-request set-var(txn.r{i}) str(1) {c}")
        lines.append(
            f"  http-request return status 200 content-type text/plain lf-string "
            f'"%[var(txn.r{i},0)]" if {{ path /n{i} }}'
        )
    for i, m in enumerate(MATCHES):
        lines.append(
            f"  http-request return status 200 content-type text/plain string 1 "
            f"if {{ path /m{i} }} {{ var(txn.in) {m} }}"
        )
        lines.append(
            f"  http-request return status 200 content-type text/plain string 0 if {{ path /m{i} }}"
        )
    with running("\n".join(lines)) as port:
        client = Client(port)
        yield client
        client.close()


@pytest.mark.parametrize("index", range(len(MATCHES)), ids=MATCHES)
def test_matches_match_haproxy(matcher: Client, index: int) -> None:
    words = ["if", "{", "var(txn.in)", *MATCHES[index].split(), "}"]
    cond = compile_condition(words, AclSet(), Hook.FE_HRQ_HDR)
    for value in INPUTS:
        want = matcher.get(f"/m{index}", value)
        got = cond(with_input(value, req_final=True))
        assert ("1" if got is Verdict.PASS else "0") == want, (MATCHES[index], value)


@pytest.mark.parametrize("index", range(len(CONDITIONS)), ids=CONDITIONS)
def test_conditions_match_haproxy(matcher: Client, index: int) -> None:
    acls = AclSet()
    for a in NAMED_ACLS:
        acls.add(a.split())
    cond = compile_condition(CONDITIONS[index].split(), acls, Hook.FE_HRQ_HDR)
    for value in INPUTS:
        want = matcher.get(f"/n{index}", value)
        got = cond(with_input(value, req_final=True))
        assert ("1" if got is Verdict.PASS else "0") == want, (CONDITIONS[index], value)


MAP_FILE = """\
# a comment line
example.com      be_example
www.example.com  be_www
  indented.com   be_indented
   # not a comment: a key
dup.com  first
dup.com  second
/api     be_api
/api/v1  be_api_v1
.com     dotcom
^[0-9]+$ digits
noval
"""

MAP_CHAINS = [
    "map(MAP)",
    "map(MAP,none)",
    "map_str(MAP,none)",
    "map_beg(MAP,none)",
    "map_end(MAP,none)",
    "map_sub(MAP,none)",
    "map_dom(MAP,none)",
    "map_dir(MAP,none)",
    "map_reg(MAP,none)",
    "map_ip(IPMAP,none)",
    "map_ip_int(IPMAP2,0)",
    "lower,map_dom(MAP,none)",
    "map_str_int(INTMAP,-1)",
    "map_beg_int(INTMAP,-1),add(1)",
    "map_int(INTMAP2,none)",
    "map_regm(REGM,none)",
]

INT_MAP = "abc 1\nexample.com 2\n/api 3\n42 4\n"
INT_MAP2 = "42 answer\n0:10 small\n-17 neg\n"
IP_MAP = (
    "10.0.0.0/8   net8\n10.1.0.0/16  net16\n10.1.2.3 host\n2001:db8::/32 net6\n"
    "192.168.1.0/255.255.255.128 low\n"
)
IP_MAP2 = "10.0.0.0/8 8\n0.0.0.0/0 1\n"
REGM_MAP = "^([a-z]+)\\.(.*)$ \\2/\\1\n"


@pytest.fixture(scope="module")
def map_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("maps")
    files = {
        "MAP": MAP_FILE,
        "INTMAP": INT_MAP,
        "INTMAP2": INT_MAP2,
        "REGM": REGM_MAP,
        "IPMAP": IP_MAP,
        "IPMAP2": IP_MAP2,
    }
    out = {}
    for name, text in files.items():
        p = d / f"{name.lower()}.map"
        p.write_text(text)
        out[name] = p
    return out


def _with_files(chain: str, files: dict[str, Path], index: int) -> str:
    """The chain with its file names; each chain reads its own copy of the file, because
    HAProxy shares one lookup cache between map converters reading the same file, so one
    converter's cached miss can answer another's lookup."""
    for name in sorted(files, key=len, reverse=True):
        if f"({name}" in chain:
            copy = files[name].with_suffix(f".{index}.map")
            copy.write_text(files[name].read_text())
            chain = chain.replace(f"({name}", f"({copy}")
    return chain


@pytest.fixture(scope="module")
def mapper(map_files: dict[str, Path]) -> Iterator[Client]:
    lines = ["  http-request set-var(txn.in) req.fhdr(x-in)"]
    for i, chain in enumerate(MAP_CHAINS):
        lines.append(
            f"  http-request return status 200 content-type text/plain lf-string "
            f'"%[var(txn.in),{_with_files(chain, map_files, i)}]" if {{ path /p{i} }}'
        )
    with running("\n".join(lines)) as port:
        client = Client(port)
        yield client
        client.close()


MAP_INPUTS = [
    *INPUTS,
    "indented.com",
    "#",
    "dup.com",
    "/api/v1/x",
    "/api/v2",
    "10.1.9.9",
    "10.200.0.1",
    "::ffff:10.1.2.3",
    "noval",
    "foo.com",
    "www.example.com.com",
]


@pytest.mark.parametrize("index", range(len(MAP_CHAINS)), ids=MAP_CHAINS)
def test_maps_match_haproxy(mapper: Client, map_files: dict[str, Path], index: int) -> None:
    chain = _with_files(MAP_CHAINS[index], map_files, index)
    render = compile_logformat(
        f"%[var(txn.in),{chain}]",
        Hook.FE_HRQ_HDR,
        CompileEnv(),
        mandatory=False,
        merge_spaces=False,
        http=True,
    )
    for value in MAP_INPUTS:
        want = mapper.get(f"/p{index}", value)
        assert render(with_input(value)) == want, (MAP_CHAINS[index], value)
