"""The Kubernetes ingress controllers' configurations load in nsproxy as in HAProxy 2.6.

tests/config/data/haproxy-ingress.cfg renders jcmoraisjr/haproxy-ingress's template and
kubernetes-ingress.cfg haproxytech/kubernetes-ingress's configuration (base file plus what its
controller adds) for one small cluster; the files they name are laid out at test time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingress.files import CONFIGS, lay_out

HAPROXY = shutil.which("haproxy")


def messages(output: str) -> list[str]:
    """ALERT/WARNING texts without the process id and the summary lines."""
    out = []
    for line in output.splitlines():
        m = re.match(r"\[(ALERT|WARNING)\] +\(\d+\) : (.*)", line)
        if m and "Fatal errors" not in m.group(2) and "Error(s) found" not in m.group(2):
            out.append(f"{m.group(1)} {m.group(2)}")
    return out


def check(command: list[str], cfg: Path, root: Path) -> tuple[int, list[str]]:
    env = dict(os.environ, INGRESS_DIR=str(root))
    res = subprocess.run(
        [*command, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=60, env=env
    )
    return res.returncode, messages(res.stdout + res.stderr)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_ingress_config_loads_with_nsproxy_c_as_with_haproxy_c(name: str, tmp_path: Path) -> None:
    files = lay_out(tmp_path / "files")
    code, said = check([sys.executable, "-m", "nsproxy"], CONFIGS[name], files.root)
    assert code == 0, said
    if HAPROXY is None:
        pytest.skip("haproxy is not installed: nsproxy's own verdict only")
    assert (code, said) == check([HAPROXY], CONFIGS[name], files.root)


def test_kubernetes_ingress_warns_for_its_unlogged_frontends(tmp_path: Path) -> None:
    files = lay_out(tmp_path / "files")
    code, said = check([sys.executable, "-m", "nsproxy"], CONFIGS["kubernetes-ingress"], files.root)
    assert code == 0
    assert said == [
        f"WARNING config : log format ignored for frontend '{fe}' since it has no log address."
        for fe in ("healthz", "stats")
    ]
