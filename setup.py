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


def ext_modules() -> list[Any]:
    if os.environ.get("NSPROXY_PURE") == "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("setup.py: mypyc not installed, nsproxy stays interpreted", file=sys.stderr)
        return []
    info = runpy.run_path(os.path.join(HERE, "src", "nsproxy", "hotpath.py"), run_name="info")
    paths = [os.path.join("src", *m.split(".")) + ".py" for m in info["COMPILED"]]
    return list(
        mypycify(["--strict", *paths], opt_level="3", group_name=info["GROUP"], verbose=False)
    )


setup(ext_modules=ext_modules())
