"""The hot path runs all compiled or all interpreted, and NSPROXY_PURE=1 forces interpreted."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import pathlib
import subprocess
import sys

import pytest

import nsproxy
from nsproxy import hotpath


def _files(env: dict[str, str]) -> list[str]:
    code = (
        "import importlib, nsproxy, nsproxy.hotpath as h\n"
        "print(nsproxy.MODE)\n"
        "for m in h.COMPILED: print(importlib.import_module(m).__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out


def test_nsproxy_pure_runs_every_hot_module_from_its_source() -> None:
    out = _files({**os.environ, "NSPROXY_PURE": "1"})
    assert out[0] == "pure"
    assert len(out) == 1 + len(hotpath.COMPILED)
    assert all(f.endswith(".py") for f in out[1:])


def test_the_set_is_never_mixed_and_matches_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    files = [importlib.import_module(m).__file__ or "" for m in hotpath.COMPILED]
    compiled = [f for f in files if not f.endswith(".py")]
    if nsproxy.MODE == "compiled":
        assert compiled == files
    else:
        assert compiled == []
    monkeypatch.delenv("NSPROXY_PURE", raising=False)
    out = _files(dict(os.environ))
    assert out[0] == hotpath.mode()
    assert {f.endswith(".py") for f in out[1:]} == {out[0] != "compiled"}


def test_an_extension_left_from_an_older_set_is_found_and_never_loaded(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = os.path.join(str(tmp_path), "nsproxy")
    os.makedirs(os.path.join(root, "runtime"))
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for name in ("netns.py", "netns" + suffix, "runtime/poller.py", "runtime/poller" + suffix):
        with open(os.path.join(root, name), "w") as f:
            f.write("")
    with open(os.path.join(root, "hotpath__mypyc" + suffix), "w") as f:
        f.write("")
    monkeypatch.setattr(hotpath, "SRC", str(tmp_path))
    assert hotpath.orphans() == ["nsproxy.netns"]
    finder = hotpath.SourceFinder(frozenset(hotpath.orphans()))
    spec = finder.find_spec("nsproxy.netns", None)
    assert spec is not None and spec.origin == os.path.join(root, "netns.py")
    assert finder.find_spec("nsproxy.runtime.poller", None) is None
