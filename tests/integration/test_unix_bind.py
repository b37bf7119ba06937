"""`unix-bind` beside HAProxy 2.6: the UNIX binds of proxies get its prefix and mode (a bind's
own mode wins); `stats socket` lines are left as written."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from lab.netlab import Lab, wait_until
from sample.haproxy_ref import needs_haproxy

CONFIG = """global
    unix-bind prefix {prefix}/ mode 0640
    stats socket {stats} mode 0600
defaults
    timeout client 1s
    timeout server 1s
    timeout connect 1s
frontend f
    bind unix@front.sock
    bind unix@own.sock mode 0604
    default_backend b
backend b
    server s 127.0.0.1:1
"""


def _sockets(d: Path) -> dict[str, str]:
    return {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in d.iterdir() if p.is_socket()}


@needs_haproxy
def test_unix_bind_prefix_and_mode_like_haproxy(lab: Lab) -> None:
    top = Path(tempfile.mkdtemp(prefix="nsp-unixbind-"))
    seen = []
    for name in ("nsproxy", "haproxy"):
        d = top / name
        d.mkdir()
        stats = top / f"{name}-stats.sock"
        text = CONFIG.format(prefix=d, stats=stats)
        if name == "nsproxy":
            lab.proxy(text)
        else:
            lab.haproxy(text, str(stats))
        wait_until(lambda d=d: len(_sockets(d)) == 2, what=f"{name}'s sockets")
        seen.append((_sockets(d), oct(stat.S_IMODE(os.stat(stats).st_mode))))
    assert seen[0] == seen[1]
    assert seen[0][0] == {"front.sock": "0o640", "own.sock": "0o604"}
