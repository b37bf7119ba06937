"""Builds nsproxy; the hot-path modules are compiled with mypyc unless NSPROXY_PURE=1.

`python setup.py build_ext --inplace` (what scripts/setup.sh runs) puts the extension modules
next to their .py files under src/; without mypyc or a C compiler, or with NSPROXY_PURE=1,
nothing is compiled and the same .py files run interpreted (src/nsproxy/hotpath.py decides at
import, module set by module set).
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

from setuptools import setup  # type: ignore[import-untyped]

HERE = os.path.dirname(os.path.abspath(__file__))


def drop_stale_extensions(compiled: set[str]) -> None:
    """Removes in-place extensions of modules no longer compiled: they would shadow the .py."""
    src = os.path.join(HERE, "src")
    for root, _, files in os.walk(os.path.join(src, "nsproxy")):
        for name in files:
            stem, dot, rest = name.partition(".")
            source = os.path.join(root, stem + ".py")
            if not (dot and rest.endswith(".so") and os.path.exists(source)):
                continue
            module = os.path.relpath(os.path.join(root, stem), src).replace(os.sep, ".")
            if module not in compiled:
                os.remove(os.path.join(root, name))


def ext_modules() -> list[Any]:
    if os.environ.get("NSPROXY_PURE") == "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("setup.py: mypyc not installed, nsproxy stays interpreted", file=sys.stderr)
        return []
    info = runpy.run_path(os.path.join(HERE, "src", "nsproxy", "hotpath.py"), run_name="info")
    drop_stale_extensions(set(info["COMPILED"]))
    paths = [os.path.join("src", *m.split(".")) + ".py" for m in info["COMPILED"]]
    return list(
        mypycify(["--strict", *paths], opt_level="3", group_name=info["GROUP"], verbose=False)
    )


setup(ext_modules=ext_modules())
