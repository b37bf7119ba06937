"""The keywords the ingress configurations brought in, checked against `haproxy -c`: the same
verdict and the same messages for good and bad uses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HAPROXY = shutil.which("haproxy")
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")

HEAD = "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n"
FE = "frontend f\n  bind 127.0.0.1:65001\n  default_backend b\nbackend b\n  server s 10.1.1.1:80\n"

CASES = {
    "unix-bind ok": "global\n  unix-bind prefix /tmp/x mode 0600 uid 0 gid 0 user root group root\n"
    + HEAD
    + FE,
    "unix-bind unknown": "global\n  unix-bind foo\n",
    "unix-bind no prefix": "global\n  unix-bind prefix\n",
    "unix-bind user": "global\n  unix-bind user no-such-user-here\n",
    "unix-bind group": "global\n  unix-bind group no-such-group-here\n",
    "default-path missing": "global\n  default-path\n",
    "default-path unknown": "global\n  default-path somewhere\n",
    "default-path origin": "global\n  default-path origin\n",
    "default-path origin bad": "global\n  default-path origin /no/such/dir/here\n",
    "default-path ok": "global\n  default-path config\n  default-path parent\n"
    "  default-path current\n  default-path origin /tmp\n" + HEAD + FE,
    "init-addr ok": HEAD
    + FE.replace("10.1.1.1:80", "10.1.1.1:80 init-addr last,libc,none,10.0.0.1"),
    "init-addr bad": HEAD + "backend b\n  server s 10.1.1.1:80 init-addr libc,dns\n",
    "init-addr default-server": HEAD
    + FE.replace("  server", "  default-server init-addr none\n  server"),
    "no option abortonclose": HEAD + FE.replace("  server", "  no option abortonclose\n  server"),
    "log-format from defaults, tcp": "global\n  log stdout local0\n"
    + HEAD.replace("defaults\n", "defaults d\n  log global\n  log-format '%ci %tr %HM'\n")
    + "frontend f from d\n  bind 127.0.0.1:65001\n  default_backend b\nbackend b from d\n"
    "  server s 10.1.1.1:80\n",
    "log-format from defaults, http": "global\n  log stdout local0\n"
    + HEAD.replace(
        "defaults\n", "defaults d\n  mode http\n  log global\n  log-format '%ci %tr %HM'\n"
    )
    + "frontend f from d\n  bind 127.0.0.1:65001\n  default_backend b\nbackend b from d\n"
    "  server s 10.1.1.1:80\n",
    "log-format bad fetch": "global\n  log stdout local0\n"
    + HEAD
    + FE.replace(
        "  default_backend",
        "  log global\n  log-format '%[nosuchfetch]'\n"
        "  unique-id-format '%[nosuch2]'\n  default_backend",
    ),
    "log format without log": HEAD
    + FE.replace("  default_backend", "  option tcplog\n  default_backend")
    + "frontend g\n  bind 127.0.0.1:65002\n  log-format '%ci'\n  default_backend b\n",
    "dh-param missing": "global\n  ssl-dh-param-file /no/such/dh.pem\n",
    "dh-param none": "global\n  ssl-dh-param-file\n",
    "lua-load missing": "global\n  lua-load /no/such/file.lua\n",
    "lua-load no arg": "global\n  lua-load\n",
    "lua-load-per-thread no arg": "global\n  lua-load-per-thread\n",
    "lua-prepend-path no arg": "global\n  lua-prepend-path\n",
    "lua-prepend-path type": "global\n  lua-prepend-path /x/?.lua nowhere\n",
    "lua-prepend-path ok": "global\n  lua-prepend-path /x/?.lua path\n"
    "  lua-prepend-path /x/?.so cpath\n" + HEAD + FE,
    "use-service unknown lua": HEAD
    + "frontend f\n  mode http\n  bind 127.0.0.1:65001\n  http-request use-service lua.nope\n",
}


def messages(output: str) -> list[str]:
    out = []
    for line in output.splitlines():
        m = re.match(r"\[(ALERT|WARNING)\] +\(\d+\) : (.*)", line)
        if m and "Fatal errors" not in m.group(2) and "Error(s) found" not in m.group(2):
            out.append(f"{m.group(1)} {m.group(2)}")
    return out


def verdict(command: list[str], cfg: Path) -> tuple[int, list[str]]:
    res = subprocess.run(
        [*command, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=60
    )
    return res.returncode, messages(res.stdout + res.stderr)


@needs_haproxy
@pytest.mark.parametrize("name", sorted(CASES))
def test_keyword_verdicts_match_haproxy(name: str, tmp_path: Path) -> None:
    assert HAPROXY is not None
    cfg = tmp_path / "t.cfg"
    cfg.write_text(CASES[name])
    got = verdict([sys.executable, "-m", "nsproxy"], cfg)
    want = verdict([HAPROXY], cfg)
    assert got == want


LUA = """
core.register_service("hello", "http", function(applet)
    applet:start_response()
end)
"""


@needs_haproxy
@pytest.mark.parametrize(
    "script",
    [LUA, "error('boom')\n", "core.register_service('x', 'http', function(a)\n a:x(\nend)\n"],
    ids=["good", "runtime-error", "syntax-error"],
)
def test_lua_scripts_load_or_fail_like_haproxy(script: str, tmp_path: Path) -> None:
    assert HAPROXY is not None
    (tmp_path / "s.lua").write_text(script)
    cfg = tmp_path / "t.cfg"
    cfg.write_text(
        f"global\n  lua-load {tmp_path}/s.lua\n"
        + HEAD
        + "frontend f\n  mode http\n  bind 127.0.0.1:65001\n  http-request use-service lua.hello\n"
    )
    got = verdict([sys.executable, "-m", "nsproxy"], cfg)
    assert got == verdict([HAPROXY], cfg)


@needs_haproxy
def test_default_path_config_finds_acl_files_beside_the_configuration(tmp_path: Path) -> None:
    """Relative files read while parsing after `default-path config` (here an ACL's `-f`)
    come from the configuration's directory, whatever the working directory."""
    assert HAPROXY is not None
    conf = tmp_path / "conf"
    (conf / "lists").mkdir(parents=True)
    (conf / "lists" / "hosts.lst").write_text("a.example\n")
    body = (
        HEAD + "frontend f\n  mode http\n  bind 127.0.0.1:65001\n"
        "  acl known req.hdr(host) -f lists/hosts.lst\n  http-request deny if !known\n"
        "  default_backend b\nbackend b\n  mode http\n  server s 10.1.1.1:80\n"
    )
    cfg = conf / "t.cfg"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    results = []
    for text in ("global\n  default-path config\n" + body, body):
        cfg.write_text(text)
        for command in ([sys.executable, "-m", "nsproxy"], [HAPROXY]):
            res = subprocess.run(
                [*command, "-c", "-f", str(cfg)],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                cwd=elsewhere,
            )
            results.append((res.returncode, messages(res.stdout + res.stderr)))
    with_path_n, with_path_h, without_n, without_h = results
    assert with_path_n == with_path_h == (0, [])
    assert without_n[0] != 0 and without_n == without_h
