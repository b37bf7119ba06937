"""Runtime API commands that add and remove tenants: namespaces, binds and servers (admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nsproxy.config.keywords.server import dynamic_server
from nsproxy.config.registry import ConfigError
from nsproxy.ops.runtime_api import ADMIN, CliError, CommandSet, Session
from nsproxy.runtime.dynamic import (
    RUNTIME_WHERE,
    DynamicError,
    add_bind,
    add_netns,
    add_server_cfg,
    del_bind,
    del_netns,
    del_server,
)

if TYPE_CHECKING:
    from nsproxy.runtime.process import Runtime

COMMANDS = CommandSet()  # listed by nsproxy.ops.commands


def _admin(fn: Callable[[Runtime, list[str]], str]) -> Callable[[Session, list[str]], str]:
    """An admin-level handler whose DynamicError and ConfigError become the client's answer."""

    def handler(session: Session, args: list[str]) -> str:
        session.need(ADMIN)
        try:
            return fn(session.rt, args)
        except (DynamicError, ConfigError) as exc:
            raise CliError(f"{exc}\n") from None

    return handler


def _namespace_opt(args: list[str], start: int) -> str | None:
    """The optional `namespace <name>` after the positional words."""
    rest = args[start:]
    if not rest:
        return None
    if rest[0] == "namespace" and len(rest) == 2:
        return rest[1]
    raise DynamicError(f"'{rest[0]}' : unknown or incomplete keyword.")


def _need(args: list[str], n: int, usage: str) -> None:
    if len(args) < n:
        raise DynamicError(f"Usage: {usage}")


def _split_srv(text: str) -> tuple[str, str]:
    be, slash, srv = text.partition("/")
    if not slash or not be or not srv:
        raise DynamicError("Require 'backend/server'.")
    return be, srv


@COMMANDS.command("add", "netns", usage="add netns <name>", help="open a network namespace")
@_admin
def _add_netns(rt: Runtime, args: list[str]) -> str:
    _need(args, 3, "add netns <name>")
    add_netns(rt, args[2])
    return "New namespace registered.\n"


@COMMANDS.command(
    "del", "netns", usage="del netns <name>", help="close a namespace and its listeners"
)
@_admin
def _del_netns(rt: Runtime, args: list[str]) -> str:
    _need(args, 3, "del netns <name>")
    del_netns(rt, args[2])
    return "Namespace deleted.\n"


@COMMANDS.command(
    "add", "bind", usage="add bind <fe> <addr> [namespace <ns>]", help="add a listener"
)
@_admin
def _add_bind(rt: Runtime, args: list[str]) -> str:
    _need(args, 4, "add bind <frontend> <addr> [namespace <name>]")
    add_bind(rt, args[2], args[3], _namespace_opt(args, 4))
    return "New bind registered.\n"


@COMMANDS.command(
    "del", "bind", usage="del bind <fe> <addr> [namespace <ns>]", help="remove a listener"
)
@_admin
def _del_bind(rt: Runtime, args: list[str]) -> str:
    _need(args, 4, "del bind <frontend> <addr> [namespace <name>]")
    del_bind(rt, args[2], args[3], _namespace_opt(args, 4))
    return "Bind deleted.\n"


@COMMANDS.command(
    "add", "server", usage="add server <bk>/<srv> [args]*", help="create a new server"
)
@_admin
def _add_server(rt: Runtime, args: list[str]) -> str:
    """`add server <bk>/<srv> <addr> [options]`: the options of a configuration server line."""
    if len(args) < 3:
        raise DynamicError("'server' expects <name> and <addr>[:<port>] as arguments.")
    be, slash, name = args[2].partition("/")
    # HAProxy 2.6 ends these two answers without the blank line of the others.
    if not slash or not be or not name:
        raise CliError("Require 'backend/server'.")
    if be not in rt.backends:
        raise CliError("No such backend.")
    add_server_cfg(rt, be, dynamic_server(RUNTIME_WHERE, be, name, args[3:]))
    return "New server registered.\n"


@COMMANDS.command("del", "server", usage="del server <bk>/<name>", help="remove a server")
def _del_server(session: Session, args: list[str]) -> str:
    # HAProxy 2.6 ends every answer of this command without the blank line of the others.
    session.need(ADMIN)
    try:
        del_server(session.rt, *_split_srv(args[2] if len(args) > 2 else ""))
    except DynamicError as exc:
        raise CliError(str(exc)) from None
    return "Server deleted."


__all__ = ["COMMANDS"]
