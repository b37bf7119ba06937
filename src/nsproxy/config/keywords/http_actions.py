"""`http-request`, `http-response` and `http-after-response` actions compiled into callables.

`parse_action()` reads one action and its arguments with HAProxy 2.6's messages and returns
a callable doing only that action on a Txn (`Act`); the keyword handler adds the condition.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from nsproxy.config.keywords.http_reply import (
    compile_error_reply,
    compile_redirect,
    compile_reply,
    parse_redirect,
    parse_reply,
    reason,
)
from nsproxy.config.keywords.lua import lua_service
from nsproxy.config.keywords.track import (
    is_sc_action,
    is_track,
    parse_sc_action,
    parse_track,
)
from nsproxy.config.model_http import ALLOW, REJECT, ErrorFile, HttpResult, Verb
from nsproxy.config.registry import ConfigError
from nsproxy.http import answers
from nsproxy.proto.h1 import replace_uri
from nsproxy.proto.h1.head import Header, RequestHead
from nsproxy.proto.h1.rewrite import (
    add_header,
    del_header,
    replace_header,
    replace_value,
    set_header,
    set_method,
    set_path,
    set_uri,
)
from nsproxy.sample import CompileEnv, Hook, SampleError, compile_logformat
from nsproxy.sample.context import Txn
from nsproxy.sample.expr import parse_expr, unavailable
from nsproxy.sample.types import Missing, Sample, SmpType, text_of
from nsproxy.sample.vars import parse_var_name

Act = Callable[[Txn], HttpResult | None]

REQUEST_ACTIONS = (
    "'wait-for-handshake', 'ot-group', 'set-log-level', 'set-nice', 'use-service', "
    "'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', 'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', "
    "'send-spoe-group', 'do-resolve(*)', 'cache-use', 'add-acl(*)', 'add-header', 'allow', "
    "'auth', 'capture', 'del-acl(*)', 'del-header', 'del-map(*)', 'deny', 'disable-l7-retry', "
    "'early-hint', 'normalize-uri', 'redirect', 'reject', 'replace-header', 'replace-path', "
    "'replace-pathq', 'replace-uri', 'replace-value', 'return', 'set-header', 'set-map(*)', "
    "'set-method', 'set-path', 'set-pathq', 'set-query', 'set-uri', 'strict-mode', 'tarpit', "
    "'track-sc(*)', 'set-timeout', 'wait-for-body', 'set-var-fmt(*)', 'set-var(*)', "
    "'unset-var(*)', 'set-dst', 'set-dst-port', 'set-mark', 'set-src', 'set-src-port', "
    "'set-tos', 'silent-drop', 'set-priority-class', 'set-priority-offset'"
)
RESPONSE_ACTIONS = (
    "'ot-group', 'set-log-level', 'set-nice', 'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', "
    "'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'send-spoe-group', 'cache-store', "
    "'add-acl(*)', 'add-header', 'allow', 'capture', 'del-acl(*)', 'del-header', 'del-map(*)', "
    "'deny', 'redirect', 'replace-header', 'replace-value', 'return', 'set-header', "
    "'set-map(*)', 'set-status', 'strict-mode', 'track-sc(*)', 'wait-for-body', "
    "'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'set-mark', 'set-tos', 'silent-drop'"
)
AFTER_RESPONSE_ACTIONS = (
    "'ot-group', 'add-header', 'allow', 'capture', 'del-header', 'replace-header', "
    "'replace-value', 'set-header', 'set-status', 'strict-mode', 'set-var-fmt(*)', "
    "'set-var(*)', 'unset-var(*)'"
)

_COMMON = {
    "add-header",
    "allow",
    "capture",
    "del-header",
    "replace-header",
    "replace-value",
    "set-header",
    "set-var",
    "set-var-fmt",
    "unset-var",
}
_STICK = ("sc-inc-gpc0", "sc-inc-gpc1", "sc-set-gpt0")
SUPPORTED: dict[str, frozenset[str]] = {
    "http-request": frozenset(
        _COMMON
        | {
            "auth",
            "deny",
            "redirect",
            "reject",
            *replace_uri.ACTIONS,
            "return",
            "set-log-level",
            "set-method",
            "set-path",
            "set-pathq",
            "set-query",
            "set-uri",
            "tarpit",
            "use-service",
            *_STICK,
            *(f"track-sc{n}" for n in range(10)),
        }
    ),
    "http-response": frozenset(
        _COMMON | {"deny", "redirect", "return", "set-log-level", "set-status", *_STICK}
    ),
    "http-after-response": frozenset(_COMMON | {"set-status"}),
}
KNOWN: dict[str, str] = {
    "http-request": REQUEST_ACTIONS,
    "http-response": RESPONSE_ACTIONS,
    "http-after-response": AFTER_RESPONSE_ACTIONS,
}
LOG_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "silent")
SERVICES = ("prometheus-exporter",)


def known_action(kind: str, action: str) -> bool:
    """Whether HAProxy 2.6 knows `action` in `kind` rules (implemented here or not)."""
    base = action.split("(", 1)[0]
    listed = KNOWN[kind]
    if f"'{base}(*)'" in listed:
        return "(" in action
    if base.startswith("track-sc") and "'track-sc(*)'" in listed:
        return base[8:].isdigit()
    return f"'{action}'" in listed


def _fingerprint(word: str) -> dict[int, int]:
    """HAProxy's word fingerprint: counts of transitions between character classes
    (1..26 letters, 27 digits, 28 anything else and the word's ends), plus presence marks."""
    fp: dict[int, int] = {}
    prev = 28
    for ch in word.lower():
        if "a" <= ch <= "z":
            cur = ord(ch) - 96
        elif "0" <= ch <= "9":
            cur = 27
        else:
            cur = 28
        fp[cur] = 1
        fp[32 * prev + cur] = fp.get(32 * prev + cur, 0) + 1
        prev = cur
    fp[32 * prev + 28] = fp.get(32 * prev + 28, 0) + 1
    return fp


def _distance(a: dict[int, int], b: dict[int, int]) -> int:
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in a.keys() | b.keys())


def suggest(kind: str, word: str) -> str | None:
    """HAProxy's action_suggest(): the closest known action to `word`, if close enough."""
    if not word:
        return None
    mine = _fingerprint(word)
    best: str | None = None
    best_prefix = False
    best_dist = 1 << 30
    for item in KNOWN[kind].split(", "):
        name = item.strip("'")
        prefix = name.endswith("(*)")
        name = name.removesuffix("(*)")
        dist = _distance(mine, _fingerprint(name))
        if dist < best_dist:
            best, best_dist, best_prefix = name, dist, prefix
    if best is None:
        return None
    limit = 2 + (1 if best_prefix else 0)
    if best_dist > limit * len(word) or best_dist > limit * len(best):
        return None
    return best


@dataclass(slots=True)
class RuleEnv:
    """What an action needs from the proxy being parsed."""

    kind: str  # http-request, http-response, http-after-response
    proxy: str  # the proxy's name (default auth realm)
    hook: Hook
    env: CompileEnv
    warn: Callable[[str], None]
    errorfile: Callable[[int], ErrorFile | None]
    new_capture: Callable[[int], int]  # `capture ... len N`: a new request slot's index
    capture_len: Callable[[int], int | None]  # length of slot N of this direction


def _format(text: str, renv: RuleEnv) -> Callable[[Txn], bytes]:
    """A header value / URI format: a constant is encoded once."""
    if "%" not in text:
        const = text.encode("latin-1", "surrogateescape")
        return lambda txn: const
    try:
        fmt = compile_logformat(
            text, renv.hook, renv.env, mandatory=False, merge_spaces=False, http=True
        )
    except SampleError as e:
        raise ConfigError(str(e)) from None
    return lambda txn: fmt(txn).encode("latin-1", "replace")


Heads = Callable[[Txn], list[Header] | None]


def _req_headers(txn: Txn) -> list[Header] | None:
    req = txn.http_req
    return None if req is None else req.headers


def _res_headers(txn: Txn) -> list[Header] | None:
    resp = txn.http_resp
    return None if resp is None else resp.headers


def _need(args: list[str], i: int, count: int, msg: str, exact: bool = False) -> None:
    """`count` arguments before the condition (HAProxy stops counting at if/unless or at an
    empty word)."""
    got = 0
    while i + got < len(args) and args[i + got] not in ("if", "unless", ""):
        got += 1
    if got < count or (exact and got > count):
        raise ConfigError(msg)


def _header_action(
    action: str, args: list[str], i: int, renv: RuleEnv, heads: Heads
) -> tuple[Act, int]:
    if action in ("set-header", "add-header"):
        _need(args, i, 2, "expects exactly 2 arguments")
        name = args[i].lower().encode("latin-1")
        edit = set_header if action == "set-header" else add_header
        return _set_or_add(edit, name, args[i + 1], renv), i + 2
    if action == "del-header":
        _need(args, i, 1, "expects at least 1 argument")
        name = args[i].lower().encode("latin-1")
        i += 1
        method = "str"
        if i + 1 < len(args) and args[i] == "-m":
            method = args[i + 1]
            if method not in ("str", "beg", "end", "sub", "reg"):
                raise ConfigError(f"-m with unsupported matching method '{method}'")
            i += 2
        if method == "str":
            return _delete(name, renv.kind != "http-request"), i
        test = _name_test(method, name)

        def delete_matching(txn: Txn) -> HttpResult | None:
            headers = heads(txn)
            if headers is not None:
                headers[:] = [h for h in headers if not test(h[0])]
            return None

        return delete_matching, i
    _need(args, i, 3, "expects exactly 3 arguments")
    name = args[i].lower().encode("latin-1")
    try:
        regex = re.compile(args[i + 1].encode("latin-1", "surrogateescape"))
    except re.error as e:
        raise ConfigError(f"regex '{args[i + 1]}' is invalid (error={e})") from None
    fmt = _format(args[i + 2], renv)
    edit_re = replace_header if action == "replace-header" else replace_value

    def replace(txn: Txn) -> HttpResult | None:
        headers = heads(txn)
        if headers is not None:
            edit_re(headers, name, regex, fmt(txn))
        return None

    return replace, i + 3


def _set_or_add(
    edit: Callable[[list[Header], bytes, bytes], None], name: bytes, text: str, renv: RuleEnv
) -> Act:
    """set-header/add-header, specialised for the direction and for a constant value (the
    common case: one attribute read and one list edit per request)."""
    response = renv.kind != "http-request"
    if "%" not in text:
        const = text.encode("latin-1", "surrogateescape")
        if response:

            def res_const(txn: Txn) -> HttpResult | None:
                resp = txn.http_resp
                if resp is not None:
                    edit(resp.headers, name, const)
                return None

            return res_const

        def req_const(txn: Txn) -> HttpResult | None:
            req = txn.http_req
            if req is not None:
                edit(req.headers, name, const)
            return None

        return req_const
    value = _format(text, renv)
    heads = _res_headers if response else _req_headers

    def set_or_add(txn: Txn) -> HttpResult | None:
        headers = heads(txn)
        if headers is not None:
            edit(headers, name, value(txn))
        return None

    return set_or_add


def _delete(name: bytes, response: bool) -> Act:
    if response:

        def res_delete(txn: Txn) -> HttpResult | None:
            resp = txn.http_resp
            if resp is not None:
                del_header(resp.headers, name)
            return None

        return res_delete

    def req_delete(txn: Txn) -> HttpResult | None:
        req = txn.http_req
        if req is not None:
            del_header(req.headers, name)
        return None

    return req_delete


def _name_test(method: str, name: bytes) -> Callable[[bytes], bool]:
    if method == "beg":
        return lambda n: n.startswith(name)
    if method == "end":
        return lambda n: n.endswith(name)
    if method == "sub":
        return lambda n: name in n
    try:
        rx = re.compile(name, re.IGNORECASE)
    except re.error as e:
        raise ConfigError(f"regex '{name.decode('latin-1')}' is invalid (error={e})") from None
    return lambda n: rx.search(n) is not None


def set_query_keep_mark(req: RequestHead, query: bytes) -> None:
    """`set-query` as HAProxy 2.6 does it: the `?` stays even when the new query is empty."""
    cut = req.target.find(b"?")
    req.target = (req.target if cut < 0 else req.target[:cut]) + b"?" + query


_URI_EDITS = {
    "set-path": set_path,
    "set-query": set_query_keep_mark,
    "set-uri": set_uri,
    "set-method": set_method,
}


def _uri_action(action: str, args: list[str], i: int, renv: RuleEnv) -> tuple[Act, int]:
    _need(args, i, 1, "expects exactly 1 argument <format>", exact=True)
    fmt = _format(args[i], renv)
    if action == "set-pathq":

        def set_pathq(txn: Txn) -> HttpResult | None:
            req = txn.http_req
            if req is not None:
                path, q, query = fmt(txn).partition(b"?")
                t = req.target
                start = 0 if t[:1] == b"/" else t.find(b"/", t.find(b"://") + 3)
                prefix = t[:start] if start > 0 else b""
                req.target = prefix + path + q + query
            return None

        return set_pathq, i + 1
    edit = _URI_EDITS[action]

    def rewrite(txn: Txn) -> HttpResult | None:
        req = txn.http_req
        if req is not None:
            edit(req, fmt(txn))
        return None

    return rewrite, i + 1


def _replace_uri_action(action: str, args: list[str], i: int, renv: RuleEnv) -> tuple[Act, int]:
    msg = "expects exactly 2 arguments <match-regex> and <replace-format>"
    _need(args, i, 2, msg, exact=True)
    try:
        regex = re.compile(args[i].encode("latin-1", "surrogateescape"))
    except re.error as e:
        raise ConfigError(
            f"failed to parse the regex : regex '{args[i]}' is invalid (error={e})"
        ) from None
    fmt = _format(args[i + 1], renv)

    def replace(txn: Txn) -> HttpResult | None:
        req = txn.http_req
        if req is not None:
            req.target = replace_uri.replace_target(action, req.target, regex, fmt(txn))
        return None

    return replace, i + 2


def _var_action(action: str, args: list[str], i: int, renv: RuleEnv) -> tuple[Act, int]:
    base, _, rest = action.partition("(")
    if not rest.endswith(")"):
        raise ConfigError(
            f"invalid or incomplete action '{action}'. Expects 'set-var(<var-name>)', "
            "'set-var-fmt(<var-name>)' or 'unset-var(<var-name>)'"
        )
    try:
        scope, name = parse_var_name(rest[:-1])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if base == "unset-var":

        def unset(txn: Txn) -> HttpResult | None:
            txn.vars.get(scope, {}).pop(name, None)
            return None

        return unset, i
    text = args[i] if i < len(args) else ""
    if base == "set-var-fmt":
        try:
            fmt = compile_logformat(text, renv.hook, renv.env, mandatory=False, merge_spaces=False)
        except SampleError as e:
            raise ConfigError(str(e)) from None

        def set_fmt(txn: Txn) -> HttpResult | None:
            txn.vars.setdefault(scope, {})[name] = Sample(SmpType.STR, fmt(txn))
            return None

        return set_fmt, i + 1
    try:
        expr, _ = parse_expr(text, renv.env)
    except SampleError as e:
        raise ConfigError(str(e)) from None
    msg = unavailable(expr, renv.hook)
    if msg is not None:
        raise ConfigError(msg.replace(f"'{expr.fetch.name}'", f"'{action}'", 1))
    get = expr.get

    def set_var(txn: Txn) -> HttpResult | None:
        smp = get(txn)
        if isinstance(smp, Sample):
            txn.vars.setdefault(scope, {})[name] = smp
        return None

    return set_var, i + 1


def _capture_action(args: list[str], i: int, renv: RuleEnv) -> tuple[Act, int]:
    response = renv.kind != "http-request"
    usage = (
        "expects <expression> id <idx>"
        if response
        else "expects <expression> [ 'len' <length> | id <idx> ]"
    )
    try:
        expr, _ = parse_expr(args[i], renv.env)
    except SampleError as e:
        raise ConfigError(str(e)) from None
    msg = unavailable(expr, renv.hook)
    if msg is not None:
        raise ConfigError(msg)
    kw, value = args[i + 1], args[i + 2]
    if response and kw != "id":
        raise ConfigError(f"expects 'id', found '{kw}'")
    if kw == "len":
        length = int(value) if value.isdigit() else 0
        if length <= 0:
            raise ConfigError("length must be > 0")
        idx = renv.new_capture(length)
        fixed: int | None = length
    elif kw == "id":
        if not value.isdigit():
            raise ConfigError(f"cannot parse id '{value}'")
        idx = int(value)
        fixed = None
    else:
        raise ConfigError(usage)
    get = expr.get
    slot_len = renv.capture_len
    known: list[int] = [] if fixed is None else [fixed]

    def capture(txn: Txn) -> HttpResult | None:
        if not known:
            n = slot_len(idx)
            if n is None:
                return None
            known.append(n)
        smp = get(txn)
        if isinstance(smp, Missing) or smp is None:
            return None
        text = text_of(smp)
        if text is not None:
            slots = txn.res_captures if response else txn.req_captures
            if idx < len(slots):
                slots[idx] = text[: known[0]]
        return None

    return capture, i + 3


def _capture_args_ok(args: list[str], i: int) -> bool:
    n = 0
    while i + n < len(args) and args[i + n] not in ("if", "unless"):
        n += 1
    return n >= 3


def parse_action(args: list[str], renv: RuleEnv) -> tuple[Act, int]:
    """Parses args[1] (the action) and its arguments; returns the action and the index of
    the first word after them. Raises ConfigError with the text HAProxy puts after
    "error detected in <proxy> while parsing '<kind> <action>' rule : "."""
    act, i = _parse_action(args, renv)
    if renv.kind == "http-request" and args[1].split("(", 1)[0] in ("deny", "tarpit", "auth"):
        act = _count_error(act)  # a denied request is an HTTP error of the tracked counters
    return act, i


def _parse_action(args: list[str], renv: RuleEnv) -> tuple[Act, int]:
    action = args[1]
    base = action.split("(", 1)[0]
    i = 2
    response = renv.kind != "http-request"
    heads = _res_headers if response else _req_headers
    if base in ("set-header", "add-header", "del-header", "replace-header", "replace-value"):
        return _header_action(base, args, i, renv, heads)
    if base in ("set-path", "set-pathq", "set-query", "set-uri", "set-method"):
        return _uri_action(base, args, i, renv)
    if base in ("set-var", "set-var-fmt", "unset-var"):
        return _var_action(action, args, i, renv)
    if base in replace_uri.ACTIONS:
        return _replace_uri_action(base, args, i, renv)
    if base == "allow":
        return (lambda txn: ALLOW), i
    if base == "reject":
        return (lambda txn: REJECT), i
    if base in ("deny", "tarpit", "return"):
        verb = Verb.TARPIT if base == "tarpit" else Verb.ANSWER
        spec, i = parse_reply(args, i, renv.env, renv.hook, deny=base != "return", warn=renv.warn)
        if not spec.status_given and base != "return":
            spec.status = 500 if base == "tarpit" else 502 if response else 403
        if base != "return" and not spec.has_payload and spec.errorfile is None:
            if spec.headers:
                return compile_reply(spec, verb, renv.errorfile), i
            return compile_error_reply(spec.status, verb, renv.errorfile), i
        return compile_reply(spec, verb, renv.errorfile), i
    if base == "redirect":
        rspec, i = parse_redirect(args, i, renv.env, renv.hook, response=response)
        return compile_redirect(rspec), i
    if base == "auth":
        realm = renv.proxy
        if i < len(args) and args[i] == "realm":
            if i + 1 >= len(args):
                raise ConfigError("missing realm value")
            realm = args[i + 1]
            i += 2
        result = HttpResult(
            Verb.ANSWER, 401, answers.auth_required(realm.encode("latin-1", "surrogateescape"))
        )
        return (lambda txn: result), i
    if base == "capture":
        if not _capture_args_ok(args, i):
            raise ConfigError(
                "expects <expression> id <idx>"
                if response
                else "expects <expression> [ 'len' <length> | id <idx> ]"
            )
        return _capture_action(args, i, renv)
    if base == "set-log-level":
        level = args[i] if i < len(args) else ""
        if level not in LOG_LEVELS:
            raise ConfigError("expects exactly 1 argument (log level name or 'silent')")

        def set_level(txn: Txn) -> HttpResult | None:
            txn.set_log_level(level)
            return None

        return set_level, i + 1
    if base == "use-service":
        name = args[i] if i < len(args) else ""
        if not name:
            raise ConfigError("'use-service' expects a service name.")
        lua = lua_service(renv.env.refs, name)
        if lua is not None:
            return lua, i + 1
        if name not in SERVICES:
            raise ConfigError(f"'{name}' unknown service name.")
        result = HttpResult(Verb.SERVICE, service=name)
        return (lambda txn: result), i + 1
    if base == "set-status":
        return _set_status(args, i)
    if is_track(base):
        track, i = parse_track(action, args, i, renv.env, renv.hook, http=True)
        return _no_result(track), i
    if is_sc_action(base):
        sc, i = parse_sc_action(action, args, i, renv.env, renv.hook)
        return _no_result(sc), i
    raise AssertionError(f"unhandled action {action}")


def _count_error(inner: Act) -> Act:
    def act(txn: Txn) -> HttpResult | None:
        result = inner(txn)
        sticks = txn.sticks
        if result is not None and sticks is not None:
            sticks.http_error()
        return result

    return act


def _no_result(fn: Callable[[Txn], None]) -> Act:
    def act(txn: Txn) -> HttpResult | None:
        fn(txn)
        return None

    return act


def _set_status(args: list[str], i: int) -> tuple[Act, int]:
    usage = "expects 1 argument: <status>; or 3 arguments: <status> reason <fmt>"
    if i >= len(args) or args[i] in ("if", "unless"):
        raise ConfigError(usage)
    text = args[i]
    code = int(text) if text.isdigit() else 0
    if not 100 <= code <= 999:
        raise ConfigError("expects an integer status code between 100 and 999")
    i += 1
    phrase = reason(code).encode()
    if i + 1 < len(args) and args[i] == "reason":
        phrase = args[i + 1].encode("latin-1", "surrogateescape")
        i += 2

    def set_status(txn: Txn) -> HttpResult | None:
        resp = txn.http_resp
        if resp is not None:
            resp.status = code
            resp.reason = phrase
        return None

    return set_status, i
