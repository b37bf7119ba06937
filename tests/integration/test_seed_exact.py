"""The seed's three examples, byte for byte as written, in a private mount + network lab."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lab.netlab import Lab

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "seed_lab.py"


def test_seed_examples_run_exactly_as_written(lab: Lab) -> None:
    res = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for n in (1, 2, 3):
        # (the seeds have no timeouts: as HAProxy, -c says "Warnings were found." first)
        assert (
            f"nsproxy -c -f examples/seed-{n}.cfg: exit 0, Warnings were found.\n"
            "Configuration file is valid" in out
        )
    assert "seed 1: client in netns2 -> 192.168.1.1:80\n    server in host" in out
    assert "seed 2: client in host -> 127.0.0.1:8080\n    server in netns2" in out
    assert "\n    server in netns2 saw 198.18.5.7:" in out
