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
from nsproxy.sample.context import Txn
from nsproxy.sample.types import Sample

Expr = Callable[[Txn], Sample | None]


@dataclass(frozen=True, slots=True)
class TcpRule:
    """One `tcp-request connection|content` or `tcp-response content` rule.

    action: accept, reject, silent-drop, close, expect-proxy, set-var, unset-var, set-src,
    set-dst, set-src-port, set-dst-port. `var` is (scope, name) for set-var/unset-var;
    `expr` the value of set-var/set-src/set-dst/...
    """

    where: Where
    action: str
    cond: Condition | None = None
    expr: Expr | None = None
    var: tuple[str, str] | None = None


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
