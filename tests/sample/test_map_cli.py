"""The runtime API's map/acl commands: replies compared with HAProxy 2.6's on the same files."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsproxy.sample import (
    AclSet,
    CompileEnv,
    Hook,
    compile_condition,
    compile_logformat,
    map_command,
)
from nsproxy.sample.patref import PatRefs

from .haproxy_ref import needs_haproxy, running

pytestmark = needs_haproxy

MAP = "example.com be_example\nwww.example.com be_www\n/api be_api\ndup dup1\ndup dup2\n"
ACL = "10.0.0.0/8\n192.0.2.1\n"

SCRIPT = [
    "show map",
    "show acl",
    "show map {map}",
    "show acl {acl}",
    "get map {map} example.com",
    "get map {map} www.example.com.org",
    "get map {map} nothing",
    "get acl {acl} 10.1.2.3",
    "get acl {acl} 11.1.2.3",
    "get map",
    "get map nosuch.map x",
    "show map nosuch.map",
    "add map {map} new.com be_new",
    "show map {map}",
    "get map {map} new.com",
    "set map {map} new.com be_newer",
    "set map {map} dup dupX",
    "show map {map}",
    "set map {map} nosuch x",
    "set map {map} new.com",
    "del map {map} new.com",
    "del map {map} new.com",
    "del map {map}",
    "add map {map} onlykey",
    "prepare map {map}",
    "add map @1 {map} v1.com be_v1",
    "add map @5 {map} v5.com be_v5",
    "show map @1 {map}",
    "show map",
    "commit map {map}",
    "commit map @7 {map}",
    "commit map @1 {map}",
    "show map {map}",
    "show map",
    "get map {map} example.com",
    "get map {map} v1.com",
    "add acl {acl} 10.9.9.9",
    "add acl {acl} notanip",
    "get acl {acl} 10.9.9.9",
    "del acl {acl} 10.9.9.9",
    "add acl {map} x",
    "clear acl {acl}",
    "show acl {acl}",
    "clear map @1 {map}",
    "show map {map}",
    "clear map",
    "prepare acl nosuch",
    "commit map",
]


def _normalize(text: str) -> str:
    """Entry addresses differ by nature; HAProxy's internal httpclient proxy has ACLs of its own."""
    lines = [x for x in text.split("\n") if "file 'httpclient'" not in x]
    return re.sub(r"0x[0-9a-f]+", "0xPTR", "\n".join(lines))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "hosts.map").write_text(MAP)
    (tmp_path / "nets.acl").write_text(ACL)
    return {"map": str(tmp_path / "hosts.map"), "acl": str(tmp_path / "nets.acl")}


def _haproxy_replies(files: dict[str, str], sock: Path, cfg: Path) -> Iterator[str]:
    ret = "  http-request return status 200 content-type text/plain lf-string"
    body = (
        f'{ret} "%[req.fhdr(x),map_str({files["map"]})]" if {{ src -f {files["acl"]} }}\n'
        f'{ret} "%[req.fhdr(x),map_beg({files["map"]})]"\n'
    )
    head = f"\nglobal\n  stats socket {sock} level admin\n" + HTTP
    with running(body, "", head, cfg):
        for line in SCRIPT:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(str(sock))
                s.sendall(line.format(**files).encode() + b"\n")
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
            yield out.decode()


HTTP = """
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 2s
"""


def test_map_commands_reply_as_haproxy(files: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "ref.cfg"
    theirs = list(_haproxy_replies(files, tmp_path / "admin.sock", cfg))
    lines = cfg.read_text().splitlines()
    first = next(i for i, x in enumerate(lines, 1) if "map_str(" in x)
    second = next(i for i, x in enumerate(lines, 1) if "map_beg(" in x)
    # The same expressions as the reference's frontend, at the same configuration lines.
    env = CompileEnv(PatRefs(), file=str(cfg), line=first)
    compile_logformat(f"%[str(x),map_str({files['map']})]", Hook.FE_HRQ_HDR, env)
    compile_condition(["if", "{", "src", "-f", files["acl"], "}"], AclSet(), Hook.FE_HRQ_HDR, env)
    env.line = second
    compile_logformat(f"%[str(x),map_beg({files['map']})]", Hook.FE_HRQ_HDR, env)
    ours = []
    for line in SCRIPT:
        ours.append(map_command(env.refs, line.format(**files).split()) + "\n")
    for cmd, mine, ref in zip(SCRIPT, ours, theirs, strict=True):
        assert _normalize(mine) == _normalize(ref), cmd
