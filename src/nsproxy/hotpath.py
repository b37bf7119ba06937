"""The modules mypyc may compile, and whether this process runs them compiled or interpreted.

One source: setup.py compiles the modules in COMPILED into extension modules placed next to
their .py files (unless NSPROXY_PURE=1 or mypyc is missing). The package's `__init__` calls
`install()` before anything else is imported: the whole set then runs from the .py files when
NSPROXY_PURE=1 is set, when nothing is built, or when any extension is older than its .py (an
edit after the build). Compiled modules call each other natively, so the set runs all compiled
or all interpreted, never mixed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

GROUP = "nsproxy.hotpath"  # the shared library is nsproxy/hotpath__mypyc.*.so

COMPILED: tuple[str, ...] = (
    "nsproxy.runtime.poller",
    "nsproxy.runtime.relay",
    "nsproxy.runtime.mux_pt",
    "nsproxy.runtime.stream",
    "nsproxy.runtime.listener",
    "nsproxy.runtime.mux_h1",
    "nsproxy.runtime.http_ana",
    "nsproxy.runtime.http_txn",
    "nsproxy.runtime.conn",
    "nsproxy.runtime.backend",
    "nsproxy.runtime.analysers",
    "nsproxy.runtime.process",
    "nsproxy.runtime.stickiness",
    "nsproxy.runtime.objects",
    "nsproxy.runtime.deadline",
    "nsproxy.balance",
    "nsproxy.stick.freq",
    "nsproxy.ops.log",
    "nsproxy.ops.stat_counters",
    "nsproxy.config.where",
    "nsproxy.config.model",
    "nsproxy.config.model_http",
    "nsproxy.config.model_rules",
    "nsproxy.proto.h1.head",
    "nsproxy.proto.h1.reader",
    "nsproxy.proto.h1.connection",
    "nsproxy.proto.h1.rewrite",
    "nsproxy.proto.h1.writer",
    "nsproxy.proto.h1.errors",
    "nsproxy.sample.logformat",
    "nsproxy.sample.acl",
    "nsproxy.sample.match",
    "nsproxy.sample.expr",
    "nsproxy.sample.fetch",
    "nsproxy.sample.context",
    "nsproxy.sample.types",
    "nsproxy.sample.maps",
)

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_path(module: str) -> str:
    return os.path.join(SRC, *module.split(".")) + ".py"


def built_path(module: str) -> str | None:
    """The extension module built for `module`, if there is one."""
    base = os.path.join(SRC, *module.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if os.path.exists(base + suffix):
            return base + suffix
    return None


def stale() -> list[str]:
    """Modules of COMPILED without an extension, or whose .py changed after the build.

    The code of every module is in the group's shared library (the per-module extensions only
    load it), so each .py is compared with that library.
    """
    group = built_path(GROUP + "__mypyc")
    built_at = os.path.getmtime(group) if group is not None else 0.0
    out = []
    for module in COMPILED:
        if built_path(module) is None or os.path.getmtime(source_path(module)) > built_at:
            out.append(module)
    return out


_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def orphans() -> list[str]:
    """Modules left with an in-place extension that COMPILED no longer lists.

    Python's import would load the extension before the .py: the finder below stops that.
    """
    top = os.path.join(SRC, "nsproxy")
    group = GROUP.rsplit(".", 1)[1] + "__mypyc"
    out = []
    for root, _, files in os.walk(top):
        for name in files:
            stem = name.partition(".")[0]
            if stem == group or not any(name.endswith(x) for x in _SUFFIXES):
                continue
            if os.path.exists(os.path.join(root, stem + ".py")):
                module = os.path.relpath(os.path.join(root, stem), SRC).replace(os.sep, ".")
                if module not in COMPILED:
                    out.append(module)
    return sorted(out)


def mode() -> str:
    """`pure` (asked for, or nothing built), `stale` (built, then edited, or an extension
    left over from an older COMPILED) or `compiled`."""
    if os.environ.get("NSPROXY_PURE") == "1":
        return "pure"
    old = stale()
    if not old:
        return "stale" if orphans() else "compiled"
    return "pure" if len(old) == len(COMPILED) else "stale"


class SourceFinder(importlib.abc.MetaPathFinder):
    """A meta path finder that loads the given modules from their .py files."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def install() -> str:
    """Runs the set interpreted unless every extension is built and current (and none is left
    over from an older set); returns mode()."""
    current = mode()
    names = frozenset(orphans()) | (frozenset(COMPILED) if current != "compiled" else frozenset())
    if names and not any(isinstance(f, SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, SourceFinder(names))
    return current
