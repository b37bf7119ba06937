"""`userlist` sections: `user` and `group` lines, kept for the http_auth() fetches."""

from __future__ import annotations

from typing import Any

from nsproxy.config.keywords.rules import env_of
from nsproxy.config.model import Config
from nsproxy.config.registry import (
    KEYWORDS,
    SECTIONS,
    ConfigError,
    ConfigWarning,
    Ctx,
    Section,
    post_check,
)
from nsproxy.sample.userlist import User, Userlist, Userlists


def _userlists(ctx: Ctx) -> Userlists:
    return env_of(ctx).refs.userlists


@SECTIONS.register("userlist", "")
def _userlist(ctx: Ctx, args: list[str]) -> None:
    section = Section("userlist", args[1] if len(args) > 1 else "", ctx.where)
    ctx.state.current = section
    if len(args) < 2:
        section.skip = True
        raise ConfigError("'userlist' expects <name> as arguments.", style="nospace")
    lists = _userlists(ctx)
    if args[1] in lists.by_name:
        section.skip = True
        raise ConfigWarning(f"ignoring duplicated userlist '{args[1]}'.")
    section.fields["userlist"] = lists.by_name[args[1]] = Userlist(args[1])


def _current(ctx: Ctx) -> Userlist:
    ul: Userlist = ctx.section.fields["userlist"]
    return ul


@KEYWORDS.register("user", "userlist")
def _user(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'user' expects <name> as arguments.", style="nospace")
    ul = _current(ctx)
    if args[1] in ul.users:
        raise ConfigWarning(f"ignoring duplicated user '{args[1]}' in userlist '{ul.name}'.")
    password, hashed = "", False
    groups: tuple[str, ...] = ()
    i = 2
    while i < len(args):
        word = args[i]
        value = args[i + 1] if i + 1 < len(args) else ""
        if word in ("password", "insecure-password"):
            password, hashed = value, word == "password"
        elif word == "groups":
            groups = tuple(g for g in value.split(",") if g)
        else:
            raise ConfigError(
                f"'user' only supports 'password', 'insecure-password' and 'groups' "
                f"options (got '{word}').",
                style="nospace",
            )
        i += 2
    ul.users[args[1]] = User(args[1], password, hashed, groups)


@KEYWORDS.register("group", "userlist")
def _group(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'group' expects <name> as arguments.", style="nospace")
    ul = _current(ctx)
    if args[1] in ul.groups:
        raise ConfigWarning(f"ignoring duplicated group '{args[1]}' in userlist '{ul.name}'.")
    users: tuple[str, ...] = ()
    if len(args) > 3 and args[2] == "users":
        users = tuple(u for u in args[3].split(",") if u)
    ul.groups[args[1]] = users


@post_check
def _userlists_exist(state: Any, config: Config) -> None:
    """HAProxy's errors for a user in an undeclared group and for an http_auth() naming a
    userlist no section declares."""
    refs = state.global_.fields.get("pattern_refs")
    if refs is None:
        return
    lists: Userlists = refs.userlists
    for ul in lists.by_name.values():
        for user in ul.users.values():
            for group in user.groups:
                if group not in ul.groups:
                    state.errors.append(
                        f"config : userlist '{ul.name}': no such group '{group}' specified in "
                        f"user '{user.name}'"
                    )
    for file, line, name, fetch in lists.uses:
        if lists.get(name) is None:
            state.errors.append(
                f"parsing [{file}:{line}]: unable to find userlist '{name}' referenced in arg 1 "
                f"of sample fetch keyword '{fetch}'."
            )
