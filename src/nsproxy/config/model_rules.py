"""The parsed rules of a proxy: tcp-request/tcp-response rules and switching rules, compiled.

Each rule holds the callables the sample engine compiled at load; the runtime calls them
with a `Txn`. A `Condition` returns a `Verdict` (PASS: the rule applies; FAIL: it does not;
MISS: wait for more data, as HAProxy during `inspect-delay`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nsproxy.config.where import Where
from nsproxy.sample.acl import Condition
from nsproxy.sample.context import Txn, final_view
from nsproxy.sample.types import Sample, Verdict
from nsproxy.sample.vars import set_var, unset_var

Expr = Callable[[Txn], Sample | None]


@dataclass(frozen=True, slots=True)
class TcpRule:
    """One `tcp-request connection|content` or `tcp-response content` rule.

    action: accept, reject, silent-drop, close, expect-proxy, set-var, unset-var, set-src,
    set-dst, set-src-port, set-dst-port, track-sc0..2, sc-inc-gpc0/1, sc-set-gpt0. `var` is
    (scope, name) for set-var/unset-var; `expr` the value of set-var/set-src/set-dst/...;
    `act` what the stick-counter actions do, run on the stream seen as final.
    """

    where: Where
    action: str
    cond: Condition | None = None
    expr: Expr | None = None
    var: tuple[str, str] | None = None
    var_conds: frozenset[str] = frozenset()  # set-var(name,ifexists,...) conditions
    act: Callable[[Txn], None] | None = None


@dataclass(frozen=True, slots=True)
class SwitchRule:
    """One `use_backend` or `use-server` rule: a fixed name, or a log-format computing it."""

    where: Where
    name: str
    dynamic: Callable[[Txn], str] | None = None
    cond: Condition | None = None


@dataclass(frozen=True, slots=True)
class ProxyRules:
    """All rules of one proxy, in configuration order within each list."""

    inspect_delay: float | None = None  # tcp-request inspect-delay, seconds
    response_inspect_delay: float | None = None  # tcp-response inspect-delay, seconds
    tcp_request_connection: tuple[TcpRule, ...] = ()
    tcp_request_content: tuple[TcpRule, ...] = ()
    tcp_response_content: tuple[TcpRule, ...] = ()
    use_backend: tuple[SwitchRule, ...] = ()
    use_server: tuple[SwitchRule, ...] = ()

    def __deepcopy__(self, memo: dict[int, object]) -> ProxyRules:
        # Immutable: a proxy inherits its defaults section's rules as they are (they run
        # before its own, as HAProxy runs a named defaults section's rules first).
        return self

    @property
    def empty(self) -> bool:
        """No rule at all: the stream needs no analyser (the fast path)."""
        return not (
            self.tcp_request_connection
            or self.tcp_request_content
            or self.tcp_response_content
            or self.use_backend
            or self.use_server
        )


@dataclass(frozen=True, slots=True)
class TcpOutcome:
    """What a list of tcp rules decided.

    action: "accept" or "continue" (go on: an explicit accept, or no rule decided), "reject",
    "silent-drop", "close", or "wait" (a condition needs more data: run the whole list
    again when more arrives or, once the inspect-delay expires, with the data taken as
    final; HAProxy restarts from the first rule, so set-var rules run again). `index` is the
    deciding (or waiting) rule. `effects` are the set-src/set-dst/... values and expect-proxy
    marks to apply, in order; set-var/unset-var have been applied to `txn.vars` already.
    """

    action: str
    index: int
    effects: tuple[tuple[str, Sample | None], ...] = ()


_STOP = frozenset({"accept", "reject", "silent-drop", "close"})


def run_tcp_rules(rules: tuple[TcpRule, ...], txn: Txn) -> TcpOutcome:
    """HAProxy's tcp_inspect_request()/tcp_exec_l4_rules(): the rules in order."""
    effects: list[tuple[str, Sample | None]] = []
    for i, rule in enumerate(rules):
        if rule.cond is not None:
            verdict = rule.cond(txn)
            if verdict is Verdict.MISS:
                return TcpOutcome("wait", i, tuple(effects))
            if verdict is Verdict.FAIL:
                continue
        action = rule.action
        if action in _STOP:
            return TcpOutcome(action, i, tuple(effects))
        if action in ("set-var", "unset-var"):
            assert rule.var is not None
            scope, name = rule.var
            if action == "unset-var":
                unset_var(txn.vars, scope, name)
            else:
                assert rule.expr is not None
                smp = rule.expr(final_view(txn))
                if smp is not None:
                    set_var(txn.vars, scope, name, smp, rule.var_conds)
        elif action == "expect-proxy":
            effects.append((action, None))
        elif rule.act is not None:
            rule.act(final_view(txn))
        elif rule.expr is not None:
            smp = rule.expr(final_view(txn))
            if smp is not None:
                effects.append((action, smp))
    return TcpOutcome("continue", len(rules), tuple(effects))


def choose_backend(
    rules: ProxyRules, txn: Txn, default: str | None, exists: Callable[[str], bool]
) -> str | None:
    """HAProxy's process_switching_rules(): the first rule whose condition passes (evaluated
    as final); a dynamic name that names no backend falls back to the default backend."""
    view = final_view(txn)
    for rule in rules.use_backend:
        if rule.cond is not None and rule.cond(view) is not Verdict.PASS:
            continue
        if rule.dynamic is None:
            return rule.name
        name = rule.dynamic(view)
        return name if name and exists(name) else default
    return default


def choose_server(rules: ProxyRules, txn: Txn, usable: Callable[[str], bool]) -> str | None:
    """HAProxy's use-server rules: the first rule whose condition passes and whose server is
    usable; None lets the balancing algorithm choose."""
    view = final_view(txn)
    for rule in rules.use_server:
        if rule.cond is not None and rule.cond(view) is not Verdict.PASS:
            continue
        name = rule.dynamic(view) if rule.dynamic is not None else rule.name
        if name and usable(name):
            return name
    return None
