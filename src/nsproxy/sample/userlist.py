"""Userlists (`userlist` sections: users, passwords, groups) and HTTP Basic credentials."""

from __future__ import annotations

import base64
import binascii
import hmac
import warnings
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class User:
    """`user NAME password HASH|insecure-password PASS [groups G,...]`."""

    name: str
    password: str
    hashed: bool
    groups: tuple[str, ...] = ()


@dataclass(slots=True)
class Userlist:
    """One `userlist` section; `group NAME users U,...` lines add to the users' groups."""

    name: str
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group -> its users

    def groups_of(self, user: str) -> tuple[str, ...]:
        """The groups `user` belongs to, from both `user ... groups` and `group ... users`."""
        u = self.users.get(user)
        own = u.groups if u is not None else ()
        extra = tuple(g for g, members in self.groups.items() if user in members)
        return own + tuple(g for g in extra if g not in own)

    def check(self, user: str, password: str) -> bool:
        """HAProxy's check_user(): the password matches (crypt(3) for hashed ones)."""
        u = self.users.get(user)
        if u is None:
            return False
        if not u.hashed:
            return hmac.compare_digest(u.password.encode(), password.encode())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        got = crypt.crypt(password, u.password)
        return got is not None and hmac.compare_digest(got.encode(), u.password.encode())


class Userlists:
    """The userlists of a configuration, by name; filled as `userlist` sections are parsed
    and read when a request is checked (a userlist may follow the rules using it)."""

    def __init__(self) -> None:
        self.by_name: dict[str, Userlist] = {}
        self.uses: list[tuple[str, int, str, str]] = []  # (file, line, userlist, fetch)

    def get(self, name: str) -> Userlist | None:
        return self.by_name.get(name)


def basic_credentials(value: bytes) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` value, or None."""
    scheme, _, token = value.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("latin-1"), password.decode("latin-1")
