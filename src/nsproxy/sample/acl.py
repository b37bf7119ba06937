"""ACLs: `acl` lines, named and anonymous, predefined ones, and conditions compiled to callables.

A condition (`if a !b || { src 10.0.0.0/8 }`) compiles to a `Condition`: calling it with a
`Txn` returns a `Verdict` that already includes if/unless: PASS = the rule applies, FAIL =
it does not, MISS = the data may still change (wait, as HAProxy's ACL_TEST_MISS).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nsproxy.sample.context import Txn
from nsproxy.sample.expr import Expr, apply_convs, id_end, parse_expr
from nsproxy.sample.fetch import find_fetch
from nsproxy.sample.maps import load_ref
from nsproxy.sample.match import (
    DEFAULT_METHOD,
    EXPECT,
    METHODS,
    Method,
    PatternError,
    PatternExpr,
    parse_dotted_ver,
)
from nsproxy.sample.patref import ACL, MAP, CompileEnv, PatternFileError
from nsproxy.sample.places import Hook, Use, hook_name
from nsproxy.sample.types import MISSING, Sample, SampleError, SmpType, Verdict, can_cast

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class AclKeyword:
    """An ACL-only keyword: the fetch it reads and its default match method."""

    name: str
    fetch: str
    method: Method
    dotted: bool = False  # patterns are major.minor versions


ACL_KEYWORDS: dict[str, AclKeyword] = {}


def register_acl_keyword(*kws: AclKeyword) -> None:
    for kw in kws:
        ACL_KEYWORDS[kw.name] = kw


register_acl_keyword(
    AclKeyword("payload", "req.payload", Method.BIN),
    AclKeyword("payload_lv", "req.payload_lv", Method.BIN),
    AclKeyword("req_ssl_sni", "req.ssl_sni", Method.STR),
    AclKeyword("req_ssl_ver", "req.ssl_ver", Method.INT, dotted=True),
    AclKeyword("req.ssl_ver", "req.ssl_ver", Method.INT, dotted=True),
)

# HAProxy 2.6's predefined ACLs; those over HTTP fetches work once those fetches exist.
PREDEFINED: dict[str, tuple[str, ...]] = {
    "TRUE": ("always_true",),
    "FALSE": ("always_false",),
    "LOCALHOST": ("src", "127.0.0.1/8", "::1"),
    "HTTP": ("req.proto_http",),
    "HTTP_1.0": ("req.ver", "1.0"),
    "HTTP_1.1": ("req.ver", "1.1"),
    "HTTP_2.0": ("req.ver", "2.0"),
    "METH_CONNECT": ("method", "CONNECT"),
    "METH_DELETE": ("method", "DELETE"),
    "METH_GET": ("method", "GET", "HEAD"),
    "METH_HEAD": ("method", "HEAD"),
    "METH_OPTIONS": ("method", "OPTIONS"),
    "METH_POST": ("method", "POST"),
    "METH_PUT": ("method", "PUT"),
    "METH_TRACE": ("method", "TRACE"),
    "HTTP_URL_ABS": ("url_reg", "^[^/:]*://"),
    "HTTP_URL_SLASH": ("url_beg", "/"),
    "HTTP_URL_STAR": ("url", "*"),
    "HTTP_CONTENT": ("req.hdr_val(content-length)", "gt", "0"),
    "RDP_COOKIE": ("req.rdp_cookie_cnt", "gt", "0"),
    "REQ_CONTENT": ("req.len", "gt", "0"),
    "WAIT_END": ("wait_end",),
}

_OPS = {"eq", "ge", "gt", "le", "lt"}


@dataclass(slots=True)
class AclExpr:
    """One `acl` line's test: an expression, a match method and its pattern lists."""

    kw: str
    expr: Expr
    method: Method
    pats: list[PatternExpr]

    @property
    def use(self) -> Use:
        return self.expr.fetch.use

    @property
    def val(self) -> Hook:
        return self.expr.fetch.val

    def tester(self) -> Callable[[Txn], int]:
        """`test` specialised for the common shapes (one pattern list, no iteration)."""
        get = self.expr.get
        if self.expr.fetch.iterate is not None or len(self.pats) != 1:
            return self.test
        if self.method is Method.FOUND:

            def found(txn: Txn) -> int:
                r = get(txn)
                return 3 if isinstance(r, Sample) else 1 if r is MISSING else 0

            return found
        look = self.pats[0].lookup

        def one(txn: Txn) -> int:
            r = get(txn)
            if isinstance(r, Sample):
                if look(r) is not None:
                    return 3
                return 1 if r.may_change else 0
            return 1 if r is MISSING else 0

        return one

    def test(self, txn: Txn) -> int:
        """FAIL 0 / MISS 1 / PASS 3 for this expression alone."""
        fetch = self.expr.fetch
        if fetch.iterate is not None:
            values = fetch.iterate(txn, self.expr.fetch_args)
            if values is None:
                r = self.expr.get(txn)
                return 1 if r is MISSING else 0
            res = 0
            for v in values:
                smp = apply_convs(self.expr.convs, v, txn)
                if isinstance(smp, Sample):
                    if self.matches(smp):
                        return 3
                    if smp.may_change:
                        res = 1
                elif smp is MISSING:
                    res = 1
            return res
        got = self.expr.get(txn)
        if not isinstance(got, Sample):
            return 1 if got is MISSING else 0
        smp = got
        if self.matches(smp):
            return 3
        return 1 if smp.may_change else 0

    def matches(self, smp: Sample) -> bool:
        if self.method is Method.FOUND:
            return True
        if self.method is Method.BOOL:
            return self.pats[0].lookup(smp) is not None
        return any(p.lookup(smp) is not None for p in self.pats)


@dataclass(slots=True)
class Acl:
    """A named ACL: every `acl` line with this name, ORed (anonymous ones have name '')."""

    name: str
    exprs: list[AclExpr] = field(default_factory=list)

    @property
    def val(self) -> Hook:
        v = Hook(0)
        for e in self.exprs:
            v |= e.val
        return v

    def test(self, txn: Txn) -> int:
        res = 0
        for e in self.exprs:
            res |= e.test(txn)
            if res == 3:
                break
        return res

    def tester(self) -> Callable[[Txn], int]:
        """A fast callable computing `test`. An `acl` line added later under the same name
        still counts (as in HAProxy): the callable rebuilds itself when the lines change."""
        built = -1
        fn: Callable[[Txn], int] = self.test

        def run(txn: Txn) -> int:
            nonlocal built, fn
            if built != len(self.exprs):
                fn = self._specialised()
                built = len(self.exprs)
            return fn(txn)

        return run

    def _specialised(self) -> Callable[[Txn], int]:
        if len(self.exprs) == 1:
            return self.exprs[0].tester()
        tests = [e.tester() for e in self.exprs]

        def any_of(txn: Txn) -> int:
            res = 0
            for t in tests:
                res |= t(txn)
                if res == 3:
                    break
            return res

        return any_of


class AclSet:
    """A proxy's named ACLs."""

    def __init__(self) -> None:
        self.acls: dict[str, Acl] = {}

    def __deepcopy__(self, memo: dict[int, object]) -> AclSet:
        # A proxy does not inherit the ACLs of its defaults section (HAProxy's rule).
        return AclSet()

    def get(self, name: str) -> Acl | None:
        return self.acls.get(name)

    def add(
        self, words: Sequence[str], env: CompileEnv | None = None, warn: Warn | None = None
    ) -> Acl:
        """Adds one `acl NAME criterion [flags] [patterns]` line (words after `acl`)."""
        name = words[0] if words else ""
        bad = next((c for c in name if not (c.isascii() and c.isalnum()) and c not in "._-:"), None)
        if bad is not None:
            raise SampleError(f"invalid character in ACL name : '{bad}'")
        expr = parse_acl_expr(words[1:], env, warn)
        acl = self.acls.setdefault(name, Acl(name))
        acl.exprs.append(expr)
        return acl


def parse_acl_expr(
    words: Sequence[str], env: CompileEnv | None = None, warn: Warn | None = None
) -> AclExpr:
    """Parses `criterion [flags] [operator] [patterns]` as HAProxy's parse_acl_expr()."""
    env = env or CompileEnv()
    if not words or not words[0]:
        raise SampleError("missing fetch method in ACL expression ''")
    first = words[0]
    kwname = first[: id_end(first, 0)]
    aclkw = ACL_KEYWORDS.get(kwname)
    if aclkw is not None:
        text = aclkw.fetch + first[len(kwname) :]
        expr, _ = parse_expr(text, env, acl_kw=aclkw.name)
        kw = aclkw.name
    else:
        try:
            expr, _ = parse_expr(first, env)
        except SampleError as e:
            raise SampleError(f"{e} in ACL expression '{first}'") from None
        kw = expr.fetch.name
    cur_type = expr.out_type
    method: Method | None
    dotted = False
    if aclkw is not None and not expr.convs:
        method, dotted = aclkw.method, aclkw.dotted
    else:
        method = DEFAULT_METHOD.get(cur_type)
    rest = list(words[1:])
    if method is not None and cur_type is not SmpType.BOOL and not rest and warn is not None:
        warn(
            f"parsing acl keyword '{first}' :\n"
            "  no pattern to match against were provided, so this ACL will never match.\n"
            "  If this is what you intended, please add '--' to get rid of this warning.\n"
            "  If you intended to match only for existence, please use '-m found'.\n"
            "  If you wanted to force an int to match as a bool, please use '-m bool'."
        )
    icase = False
    unique_id = -1
    as_map = False
    loaded = False
    files: list[str] = []
    i = 0
    while i < len(rest) and rest[i].startswith("-"):
        opt = rest[i]
        if opt == "-i":
            icase = True
        elif opt == "-n":
            pass
        elif opt == "-u":
            arg = rest[i + 1] if i + 1 < len(rest) else ""
            try:
                unique_id = int(arg)
            except ValueError:
                raise SampleError("the argument of -u must be an integer") from None
            if any(r.unique_id == unique_id for r in env.refs.refs):
                raise SampleError("the id is already used")
            i += 1
        elif opt == "-f":
            if method is None:
                raise SampleError(
                    "matching method must be specified first (using '-m') when using a sample "
                    f"fetch of this type ('{kw}')"
                )
            files.append(rest[i + 1] if i + 1 < len(rest) else "")
            loaded = True
            i += 1
        elif opt == "-m":
            arg = rest[i + 1] if i + 1 < len(rest) else ""
            if loaded:
                raise SampleError(
                    "'-m' must only be specified before patterns and files in parsing ACL "
                    "expression"
                )
            m = METHODS.get(arg)
            if m is None:
                raise SampleError(f"unknown matching method '{arg}' when parsing ACL expression")
            if m is not Method.FOUND and not can_cast(cur_type, EXPECT[m]):
                raise SampleError(
                    f"matching method '{arg}' cannot be used with fetch keyword '{kw}'"
                )
            method, dotted = m, False
            i += 1
        elif opt == "-M":
            as_map = True
        elif opt == "--":
            i += 1
            break
        else:
            raise SampleError(
                f"'{opt}' is not a valid ACL option. Please use '--' before any pattern "
                "beginning with a '-'"
            )
        i += 1
    if method is None:
        raise SampleError(
            "matching method must be specified first (using '-m') when using a sample fetch "
            f"of this type ('{kw}')"
        )
    pats: list[PatternExpr] = []
    for fname in files:
        try:
            ref = load_ref(
                env.refs, fname, as_map, ACL | (MAP if as_map else 0), env.file, env.line
            )
        except PatternFileError as ferr:
            raise SampleError(str(ferr)) from None
        pexpr = PatternExpr(ref, method, icase)
        for entry in ref.current():
            try:
                pexpr.check(entry.pattern)
            except PatternError as perr:
                raise SampleError(f"{perr} at line {entry.line} of file '{fname}'") from None
        pats.append(pexpr)
    inline = env.refs.new(None, f"acl '{kw}' file '{env.file}' line {env.line}", ACL, unique_id)
    pexpr = PatternExpr(inline, method, icase)
    operator = "eq"
    for word in rest[i:]:
        if method in (Method.INT, Method.LEN) or dotted:
            if word in _OPS:
                operator = word
                continue
            if ":" not in word and "-" not in word and operator != "eq":
                word = _apply_operator(word, operator, dotted)
        try:
            if dotted:
                parse_dotted_ver(word)
            else:
                pexpr.check(word)
        except PatternError as err:
            raise SampleError(str(err)) from None
        inline.append(_dotted_to_range(word) if dotted else word, None)
    pats.insert(0, pexpr)
    return AclExpr(kw, expr, method, pats)


def _dotted_to_range(text: str) -> str:
    """A dotted version pattern turned into the integer range the int matcher reads."""
    r = parse_dotted_ver(text)
    lo = "" if r.lo is None else str(r.lo)
    hi = "" if r.hi is None else str(r.hi)
    return lo if r.lo == r.hi else f"{lo}:{hi}"


def _apply_operator(word: str, op: str, dotted: bool) -> str:
    major, dot, minor_t = word.partition(".")
    minor = 0
    if dotted and dot:
        try:
            minor = int(minor_t)
        except ValueError:
            raise SampleError(f"'{word}' is neither a number nor a supported operator") from None
        if minor >= 65536:
            raise SampleError(f"'{word}' contains too large a minor value")
    try:
        value = int(major if dotted or not dot else word)
    except ValueError:
        raise SampleError(f"'{word}' is neither a number nor a supported operator") from None
    if dotted:
        if value >= 65536:
            raise SampleError(f"'{word}' contains too large a major value")
        value = (value << 16) | (minor & 0xFFFF)
    if op == "gt":
        value += 1
    if op == "lt":
        value -= 1
    text = f"{value >> 16}.{value & 0xFFFF}" if dotted else str(value)
    return f"{text}:" if op in ("ge", "gt") else f":{text}"


def predefined(name: str, env: CompileEnv | None = None) -> Acl | None:
    """A predefined ACL (TRUE, LOCALHOST, REQ_CONTENT, ...) compiled, or None if unknown or
    if the fetch it needs is not registered."""
    words = PREDEFINED.get(name)
    kw = words[0].split("(", 1)[0] if words is not None else ""
    if words is None or (find_fetch(kw) is None and kw not in ACL_KEYWORDS):
        return None
    acl = Acl(name)
    acl.exprs.append(parse_acl_expr(words, env))
    return acl


@dataclass(frozen=True, slots=True)
class Term:
    acl: Acl
    neg: bool


@dataclass(frozen=True, slots=True)
class Conflict:
    """An ACL of a condition that reads data unavailable where the condition runs."""

    acl: str  # '' for an anonymous ACL
    kw: str
    full: bool  # True: the ACL can never match there


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled `if`/`unless` condition: call it with a Txn to get a Verdict."""

    unless: bool
    suites: tuple[tuple[Term, ...], ...]
    run: Callable[[Txn], Verdict]

    def __call__(self, txn: Txn) -> Verdict:
        return self.run(txn)

    @property
    def use(self) -> Use:
        u = Use(0)
        for suite in self.suites:
            for t in suite:
                for e in t.acl.exprs:
                    u |= e.use
        return u

    def conflict(self, where: Hook) -> Conflict | None:
        """HAProxy's acl_cond_conflicts() then acl_cond_kw_conflicts()."""
        for suite in self.suites:
            for t in suite:
                if not t.acl.val & where:
                    return Conflict(t.acl.name, t.acl.exprs[0].kw, True)
        for suite in self.suites:
            for t in suite:
                for e in t.acl.exprs:
                    if not e.val & where:
                        return Conflict(t.acl.name, e.kw, False)
        return None


def conflict_warning(c: Conflict, where: Hook) -> str:
    """The warning HAProxy's warnif_cond_conflicts() prints (after 'parsing [f:l] : ')."""
    place = hook_name(where)
    if c.full:
        if c.acl:
            return (
                f"acl '{c.acl}' will never match because it only involves keywords that are "
                f"incompatible with '{place}'"
            )
        return (
            f"anonymous acl will never match because it uses keyword '{c.kw}' which is "
            f"incompatible with '{place}'"
        )
    if c.acl:
        return f"acl '{c.acl}' involves keywords '{c.kw}' which is incompatible with '{place}'"
    return f"anonymous acl involves keyword '{c.kw}' which is incompatible with '{place}'"


def _evaluator(suites: tuple[tuple[Term, ...], ...], unless: bool) -> Callable[[Txn], Verdict]:
    plan = [[(t.acl.tester(), t.neg) for t in s] for s in suites]
    PASS, MISS, FAIL = Verdict.PASS, Verdict.MISS, Verdict.FAIL

    def run(txn: Txn) -> Verdict:
        cond = 0
        for suite in plan:
            res = 3
            for test, neg in suite:
                r = test(txn)
                if neg:
                    r = 3 >> r
                res &= r
                if res != 3:
                    break
            cond |= res
            if cond == 3:
                break
        if cond == 1:
            return MISS
        passed = cond == 3
        return PASS if passed != unless else FAIL

    return run


def compile_condition(
    words: Sequence[str],
    acls: AclSet,
    where: Hook,
    env: CompileEnv | None = None,
    warn: Warn | None = None,
    *,
    check_conflicts: bool = True,
) -> Condition:
    """`if|unless terms...` compiled; warns (through `warn`) as HAProxy's
    warnif_cond_conflicts() when the condition reads data unavailable at `where`.
    Raises SampleError with HAProxy's message."""
    if not words or words[0] not in ("if", "unless"):
        raise SampleError("conditions must start with either 'if' or 'unless'")
    unless = words[0] == "unless"
    suites: list[tuple[Term, ...]] = []
    cur: list[Term] = []
    neg = False
    i = 1
    while i < len(words):
        word = words[i]
        while word.startswith("!"):
            neg = not neg
            word = word[1:]
        if not word:
            i += 1
            continue
        if word.lower() == "or" or word == "||":
            suites.append(tuple(cur))
            cur = []
            neg = False
            i += 1
            continue
        if word == "{":
            end = i + 1
            while end < len(words) and words[end] != "}":
                end += 1
            if end >= len(words):
                raise SampleError("missing closing '}' in condition")
            acl = Acl("")
            acl.exprs.append(parse_acl_expr(words[i + 1 : end], env, warn))
            i = end
        else:
            found = acls.get(word) or predefined(word, env)
            if found is None:
                raise SampleError(f"no such ACL : '{word}'")
            acl = found
        cur.append(Term(acl, neg))
        neg = False
        i += 1
    suites.append(tuple(cur))
    final = tuple(s for s in suites if s)
    cond = Condition(unless, final, _evaluator(final, unless))
    if warn is not None and check_conflicts:
        c = cond.conflict(where)
        if c is not None:
            warn(conflict_warning(c, where))
    return cond
