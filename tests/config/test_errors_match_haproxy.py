"""`nsproxy -c` reports configuration errors with HAProxy 2.6's exact texts and locations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFIG = """namespace_list
 namespace nsp-no-such-ns-a
 namespace bad/name
listen x
 bind 127.0.0.1:9999 namespace nsp-no-such-ns-b
 bind 127.0.0.1:9998 namespace
 server s1 127.0.0.1:80 namespace nsp-no-such-ns-c
 server s2 127.0.0.1:80 namespace
 server s3 127.0.0.1:80 proxy-v2-options foo
 tcp-request connection expect-proxy layer7
 usesrc clientip
 frobnicate
 timeout client 5q
"""


def test_every_error_reported_like_haproxy(tmp_path: Path) -> None:
    cfg = tmp_path / "e.cfg"
    cfg.write_text(CONFIG)
    res = subprocess.run(
        [sys.executable, "-m", "nsproxy", "-c", "-f", str(cfg)], capture_output=True, text=True
    )
    assert res.returncode == 1
    got = [ln.split(" : config : ", 1)[1] for ln in res.stderr.splitlines() if "[ALERT]" in ln]
    f = str(cfg)
    assert got == [
        f"parsing [{f}:2]: Cannot open namespace 'nsp-no-such-ns-a'.",
        f"parsing [{f}:3]: character '/' is not permitted in 'namespace' name 'bad/name'.",
        "Cannot open namespace 'nsp-no-such-ns-b'.",
        f"parsing [{f}:5] : 'bind 127.0.0.1:9999' in section 'listen' : error encountered "
        "while processing 'namespace'.",
        f"parsing [{f}:6] : 'bind 127.0.0.1:9998' in section 'listen' : 'namespace' : "
        "missing namespace id",
        f"[{f}:7] : 'server x/s1' : Cannot open namespace 'nsp-no-such-ns-c'.",
        f"[{f}:8] : 'server x/s2' : 'namespace' : expects <name> as argument.",
        f"[{f}:9] : 'server x/s3' : 'foo' : proxy v2 option not implemented.",
        f"parsing [{f}:10] : 'tcp-request connection expect-proxy' only supports 'layer4' in "
        "proxy 'x' (got 'layer7')",
        f"parsing [{f}:11] : 'usesrc' only allowed after a 'source' statement.",
        f"parsing [{f}:12] : unknown keyword 'frobnicate' in 'listen' section",
        f"parsing [{f}:13] : unexpected character 'q' in 'timeout client'",
        f"Error(s) found in configuration file : {f}",
        "Fatal errors found in configuration.",
    ]


def test_seed_examples_parse(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "examples"
    for name in ("seed-1.cfg", "seed-2.cfg", "seed-3.cfg"):
        from nsproxy.config.lexer import split_line
        from nsproxy.config.model import Where
        from nsproxy.config.parser import parse_lines

        lines = [
            (Where(name, i), split_line(t, {}))
            for i, t in enumerate((root / name).read_text().split("\n"), 1)
        ]
        lines = [(w, words) for w, words in lines if words]
        # namespaces are checked against the real /var/run/netns; only syntax matters here
        from nsproxy.config.parser import ParseState

        state = ParseState(netns_dir=str(tmp_path))
        for n in ("netns1", "netns2"):
            (tmp_path / n).write_text("")
        config, state = parse_lines(lines, state)
        assert config is not None, state.errors
