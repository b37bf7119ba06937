"""Pattern references: the versioned contents of map and ACL files (HAProxy's pat_ref).

One `PatRef` per file (or per inline ACL); every expression using it is rebuilt from it when
its `revision` changes, so a runtime API change is seen by the next lookup. `PatRefs` is the
registry the runtime API looks references up in (`#<id>` or file name).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nsproxy.sample.userlist import Userlists

MAP = 1  # the reference is used by a map
ACL = 2  # the reference is used by an ACL
SMP = 4  # entries carry a value (two-column file)


@dataclass(slots=True, eq=False)
class PatElt:
    """One entry: the pattern text, its value (maps), and the generation it belongs to."""

    pattern: str
    value: str | None
    gen: int
    line: int = 0
    uid: int = 0

    @property
    def ident(self) -> str:
        """The `0x...` identifier `show map` prints and `del map #0x...` accepts."""
        return f"0x{self.uid:x}"


_UIDS = itertools.count(0x55D0C0DE1000, 0x40)


@dataclass(slots=True, eq=False)
class PatRef:
    """A named list of entries with HAProxy's generation scheme for prepare/commit."""

    reference: str | None  # the file name, or None for inline patterns
    display: str
    flags: int
    unique_id: int
    entries: list[PatElt] = field(default_factory=list)
    curr_gen: int = 0
    next_gen: int = 0
    revision: int = 0
    users: list[object] = field(default_factory=list)  # expressions reading this reference
    # HAProxy's entry_cnt: +1 per entry and per indexed expression, -1 per deleted entry.
    entry_cnt: int = 0

    def append(
        self, pattern: str, value: str | None, line: int = 0, gen: int | None = None
    ) -> PatElt:
        elt = PatElt(pattern, value, self.curr_gen if gen is None else gen, line, next(_UIDS))
        self.entries.append(elt)
        self.entry_cnt += len(self.users)
        self.revision += 1
        return elt

    def remove(self, keep: Callable[[PatElt], bool]) -> int:
        """Drops the entries `keep` refuses; returns how many were dropped."""
        before = len(self.entries)
        self.entries = [e for e in self.entries if keep(e)]
        dropped = before - len(self.entries)
        if dropped:
            self.entry_cnt -= dropped
            self.revision += 1
        return dropped

    def current(self) -> list[PatElt]:
        """The entries of the current generation, in insertion order."""
        return [e for e in self.entries if e.gen == self.curr_gen]

    def entry_count(self) -> int:
        return len(self.entries)

    def new_gen(self) -> int:
        """`prepare`: a new, empty next generation (HAProxy's pat_ref_newgen)."""
        self.next_gen = (self.next_gen + 1) & 0xFFFFFFFF
        self.purge(self.next_gen)
        return self.next_gen

    def purge(self, gen: int) -> None:
        self.remove(lambda e: e.gen != gen)

    def commit(self, gen: int) -> bool:
        """`commit`: `gen` becomes current and older generations are dropped."""
        if ((gen - (self.curr_gen + 1)) & 0xFFFFFFFF) >= (
            (self.next_gen - self.curr_gen) & 0xFFFFFFFF
        ):
            return False
        self.curr_gen = gen
        self.revision += 1
        self.remove(lambda e: ((e.gen - gen) & 0xFFFFFFFF) < 0x80000000)
        return True


class PatRefs:
    """All pattern references of a configuration, by unique id and by file name."""

    def __init__(self) -> None:
        self.refs: list[PatRef] = []
        self._next_id = 0
        self.userlists = Userlists()  # the configuration's userlists, for http_auth()
        # stick tables named by fetch arguments: (file, line, table, arg pos, keyword, proxy)
        self.table_uses: list[tuple[str, int, str, int, str, str]] = []
        self.lua: Any = None  # the configuration's Lua state (`lua-load`), services by name

    def lookup(self, name: str) -> PatRef | None:
        """`#<id>` or a file name, as HAProxy's pat_ref_lookup_ref()."""
        if name.startswith("#"):
            try:
                uid = int(name[1:])
            except ValueError:
                return None
            return next((r for r in self.refs if r.unique_id == uid), None)
        return next((r for r in self.refs if r.reference == name), None)

    def new(self, reference: str | None, display: str, flags: int, unique_id: int = -1) -> PatRef:
        if unique_id < 0:
            used = {r.unique_id for r in self.refs}
            while self._next_id in used:
                self._next_id += 1
            unique_id = self._next_id
            self._next_id += 1
        ref = PatRef(reference, display, flags, unique_id)
        self.refs.append(ref)
        return ref


@dataclass(slots=True)
class CompileEnv:
    """What compiling an expression or ACL needs besides its text: the pattern references to
    share map/ACL files through, and the configuration place for reference descriptions."""

    refs: PatRefs = field(default_factory=lambda: PatRefs())
    file: str = ""
    line: int = 0
    proxy: str | None = None  # the proxy being parsed: the default of backend arguments


class PatternFileError(Exception):
    """A pattern file that cannot be read; the message is HAProxy's."""


def read_file(ref: PatRef, filename: str, with_values: bool) -> None:
    """Loads `filename` into `ref`: one pattern per line, or `key value` for maps.

    HAProxy's rules: a line starting with '#' in its first column is a comment, leading
    blanks are skipped, blank lines are ignored; a map key ends at the first blank, its
    value is the rest of the line without surrounding blanks; an ACL pattern is the rest
    of the line (inner and trailing blanks included).
    """
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError:
        raise PatternFileError(f"failed to open pattern file <{filename}>") from None
    for lineno, raw in enumerate(data.decode("latin-1").split("\n"), 1):
        if raw.startswith("#"):
            continue
        line = raw.lstrip(" \t")
        cut = min((i for i in (line.find("\r"), line.find("\n")) if i >= 0), default=len(line))
        line = line[:cut]
        if not line:
            continue
        if with_values:
            end = 0
            while end < len(line) and line[end] not in " \t":
                end += 1
            key = line[:end]
            value = line[end:].lstrip(" \t").rstrip(" \t")
            ref.append(key, value, lineno)
        else:
            ref.append(line, None, lineno)
