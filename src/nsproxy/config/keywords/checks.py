"""Whole-configuration checks: references between proxies, modes, missing timeouts."""

from __future__ import annotations

from typing import Any

from nsproxy.config.model import Config, ProxyCfg
from nsproxy.config.registry import post_check


@post_check
def _backends_exist(state: Any, config: Config) -> None:
    """default_backend and fixed use_backend names: the backend must exist, and an HTTP
    frontend cannot use a TCP backend (a TCP frontend may use an HTTP one: HAProxy upgrades
    the stream to HTTP when that backend is chosen)."""
    for px in config.frontends:
        if px.default_backend is not None:
            be = config.proxy(px.default_backend)
            if be is None or not be.is_backend:
                state.errors.append(
                    f"Proxy '{px.name}': unable to find required default_backend: "
                    f"'{px.default_backend}'."
                )
            elif _incompatible(px, be):
                state.errors.append(
                    f"{px.mode} {_kind(px)} '{px.name}' ({px.where}) tries to use incompatible "
                    f"{be.mode} {_kind(be)} '{be.name}' ({be.where}) as its default backend "
                    "(see 'mode')."
                )
        for rule in px.rules.use_backend:
            if rule.dynamic is not None:
                continue
            be = config.proxy(rule.name)
            if be is None or not be.is_backend:
                state.errors.append(
                    f"Proxy '{px.name}': unable to find required use_backend: '{rule.name}'."
                )
            elif _incompatible(px, be):
                state.errors.append(
                    f"{px.mode} {_kind(px)} '{px.name}' ({px.where}) tries to use incompatible "
                    f"{be.mode} {_kind(be)} '{be.name}' ({be.where}) in a 'use_backend' rule "
                    "(see 'mode')."
                )


def _incompatible(px: ProxyCfg, be: ProxyCfg) -> bool:
    return be.mode != px.mode and not (px.mode == "tcp" and be.mode == "http")


def _kind(px: ProxyCfg) -> str:
    """HAProxy's proxy_type_str()."""
    if px.is_frontend and px.is_backend:
        return "listen"
    return "frontend" if px.is_frontend else "backend"


@post_check
def _timeouts(state: Any, config: Config) -> None:
    if state.errors:
        return
    for px in config.proxies:
        t = px.timeouts
        missing = []
        if px.is_frontend and t.client is None:
            missing.append("client")
        if px.is_backend and t.connect is None:
            missing.append("connect")
        if px.is_backend and t.server is None:
            missing.append("server")
        if missing:
            kind = (
                "listen"
                if px.is_frontend and px.is_backend
                else ("frontend" if px.is_frontend else "backend")
            )
            state.warnings.append(
                f"config : missing timeouts for {kind} '{px.name}'.\n   | While not properly "
                "invalid, you will certainly encounter various problems\n   | with such a "
                "configuration. To fix this, please ensure that all following\n   | timeouts "
                f"are set to a non-zero value: {', '.join(repr(m) for m in missing)}."
            )


@post_check
def _frontends_have_binds(state: Any, config: Config) -> None:
    if state.errors:
        return
    for px in config.frontends:
        if not px.binds and not px.disabled:
            state.warnings.append(
                f"config : {'listen' if px.is_backend else 'frontend'} '{px.name}' has no "
                "'bind' directive. Please declare it as a backend if this was intended."
            )


@post_check
def _check_targets(state: Any, config: Config) -> None:
    """A checked server needs a port (its own, `port`, or tcp-check connect ports) and an addr."""
    import ipaddress
    import socket

    from nsproxy.addresses import PortMode

    for px in config.backends:
        kind = "proxy" if px.is_frontend else "backend"
        connects = [r for r in px.tcp_check if r.action == "connect"]
        for srv in px.servers:
            c = srv.check
            if not c.enabled:
                continue
            head = f"parsing [{srv.where}] : {kind} '{px.name}': server '{srv.name}'"
            if c.addr is not None:
                try:
                    ipaddress.ip_address(c.addr.strip("[]"))
                except ValueError:
                    try:
                        socket.getaddrinfo(c.addr, None, type=socket.SOCK_STREAM)
                    except OSError:
                        state.errors.append(f"{head}: could not resolve check addr '{c.addr}'.")
            fixed = srv.addr.family == socket.AF_UNIX or srv.addr.port_mode is PortMode.FIXED
            if fixed or c.port is not None:
                continue
            if (
                px.tcp_check
                and px.tcp_check[0].action == "connect"
                and all(r.arg for r in connects)
            ):
                continue
            state.errors.append(f"{head} has neither service port nor check port.")
