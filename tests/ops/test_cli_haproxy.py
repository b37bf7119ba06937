"""Runtime API answers byte for byte against HAProxy 2.6 on the same configuration."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.netlab import Lab, cli, free_port, tcp_defaults, wait_until

LEVELS = ("admin", "operator", "user")


@dataclass
class Side:
    """One of the two processes: its stats sockets by level and its frontend's port."""

    socks: dict[str, str]
    port: int

    def __call__(self, line: str, level: str = "admin") -> bytes:
        return cli(self.socks[level], line)


BACKEND = "backend be\n  server s1 127.0.0.1:7000 weight 10\n  server s2 127.0.0.1:7001\n"


def _start(lab: Lab, tmp_path: Path, name: str, backend: str = BACKEND) -> Side:
    socks = {lvl: str(tmp_path / f"{name}-{lvl}.sock") for lvl in LEVELS}
    port = free_port()
    config = (
        "global\n"
        + "".join(f"  stats socket {socks[lvl]} level {lvl}\n" for lvl in LEVELS)
        + tcp_defaults(tcplog=False)
        + f"\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n"
        + backend
    )
    if name == "haproxy":
        lab.haproxy(config, socks["user"])
    else:
        lab.proxy(config)
    return Side(socks, port)


@pytest.fixture
def both(lab: Lab, tmp_path: Path) -> tuple[Side, Side]:
    """HAProxy and nsproxy on the same configuration, fresh state."""
    return _start(lab, tmp_path, "haproxy"), _start(lab, tmp_path, "nsproxy")


def _same(both: tuple[Side, Side], commands: list[str], level: str = "admin") -> None:
    theirs, ours = both
    for line in commands:
        assert ours(line, level) == theirs(line, level), (level, line)


def _fe_status(side: Side) -> str:
    lines = side("show stat").decode().splitlines()
    header = lines[0][2:].split(",")
    row = next(dict(zip(header, ln.split(","), strict=False)) for ln in lines if ln[:3] == "fe,")
    return row["status"]


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_weights_parse_ascii_digits_only(both: tuple[Side, Side]) -> None:
    """HAProxy's strtol: a Unicode digit is garbage (nsproxy did not answer '²' and took '٣')."""
    weights = ["²", "٣", "1x", "5%x", "0x10", "+5", "300", "-1", "-5%", "50%", "30000%", ""]
    commands = []
    for w in weights:
        commands += [f"set weight be/s1 {w}", "get weight be/s1"]
        commands += [f"set server be/s2 weight {w}", "get weight be/s2"]
    _same(both, commands)


def test_process_commands(both: tuple[Side, Side]) -> None:
    _same(
        both,
        [
            "show backend",
            "show backend x",
            "set timeout",
            "set timeout foo 5",
            "set timeout cli",
            "set timeout cli x",
            "set timeout cli ²",
            "set timeout cli 0",
            "set timeout cli 5m",
            "clear counters",
            "clear counters all",
            "clear counters foo",
            "set maxconn global",
            "set maxconn global 100000000",
            "set maxconn global 50",
            "set maxconn global 0",
            "show env HOME",
            "show env NSPROXY_NO_SUCH_VARIABLE",
        ],
    )
    date = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}"
    for side in both:
        answer = side("show errors").decode()
        assert re.fullmatch(rf"Total events captured on \[{date}\] : 0\n\n", answer)
        assert re.fullmatch(r"2\.6\.\S+\n\n", side("show version").decode())


def test_levels_of_the_new_commands(both: tuple[Side, Side]) -> None:
    commands = [
        "clear counters",
        "clear counters all",
        "set maxconn global 50",
        "set maxconn frontend fe 5",
        "disable frontend fe",
        "enable frontend fe",
        "shutdown frontend fe",
        "set timeout cli 5",
        "show env HOME",
        "show errors fe",
        "show backend",
    ]
    _same(both, [c for c in commands if c != "show errors fe"], "user")
    _same(both, [c for c in commands if c != "show errors fe"], "operator")


def test_frontend_commands(both: tuple[Side, Side]) -> None:
    theirs, ours = both
    _same(
        both,
        [
            "disable frontend",
            "disable frontend nope",
            "disable frontend be",
            "set maxconn frontend",
            "set maxconn frontend fe",
            "set maxconn frontend nope 5",
            "set maxconn frontend fe 50",
            "set maxconn frontend fe x",
            "set maxconn frontend fe 100",
            "disable frontend fe",
            "disable frontend fe",
        ],
    )
    assert _fe_status(ours) == _fe_status(theirs) == "PAUSED"
    _same(both, ["enable frontend fe", "enable frontend fe"])
    assert _fe_status(ours) == _fe_status(theirs) == "OPEN"
    assert not _refused(ours.port)
    _same(
        both,
        [
            "shutdown frontend",
            "shutdown frontend nope",
            "shutdown frontend fe",
            "shutdown frontend fe",
            "disable frontend fe",
            "enable frontend fe",
        ],
    )
    assert _fe_status(ours) == _fe_status(theirs) == "STOP"
    assert _refused(ours.port) and _refused(theirs.port)


def _typed(text: str) -> dict[tuple[str, str], tuple[str, str, str]]:
    """(object, field) -> (position, tags, type) of `show stat|info typed` lines."""
    out = {}
    for line in text.splitlines():
        if not line:
            continue
        head, tags, kind = line.split(":", 3)[:3]
        parts = head.split(".")
        if parts[0].isdigit():  # show info: pos.name.proc
            out[("I", parts[1])] = (parts[0], tags, kind)
        else:  # show stat: obj.iid.sid.pos.name.proc
            out[(parts[0] + parts[2], parts[4])] = (parts[3], tags, kind)
    return out


def test_typed_and_json_formats_match_haproxys(both: tuple[Side, Side]) -> None:
    theirs, ours = both
    for command in ("show info typed", "show stat typed"):
        t, o = _typed(theirs(command).decode()), _typed(ours(command).decode())
        common = set(t) & set(o)
        assert len(common) > (20 if "info" in command else 60), command
        assert {k: o[k] for k in common} == {k: t[k] for k in common}, command
    for command in ("show info json", "show stat json"):
        t_doc, o_doc = json.loads(theirs(command)), json.loads(ours(command))
        if "info" in command:
            t_doc, o_doc = [t_doc], [o_doc]
        assert len(o_doc) == len(t_doc)  # one list per row (stat) / one list (info)

        def shape(doc: list[list[dict[str, Any]]]) -> dict[tuple[str, str], object]:
            return {
                (f.get("objType", ""), f["field"]["name"]): (
                    f["field"]["pos"],
                    f["tags"],
                    f["value"]["type"],
                    f["processNum"],
                )
                for row in doc
                for f in row
            }

        ts, os_ = shape(t_doc), shape(o_doc)
        common = set(ts) & set(os_)
        assert len(common) > 20
        assert {k: os_[k] for k in common} == {k: ts[k] for k in common}, command
    desc_t = theirs("show info desc").decode().splitlines()[0]
    assert ours("show info desc").decode().splitlines()[0] == desc_t  # Name: HAProxy:"..."


def _rows(side: Side, command: str) -> list[tuple[str, str]]:
    text = side(command).decode()
    return [tuple(ln.split(",")[:2]) for ln in text.splitlines() if ln and ln[0] != "#"]  # type: ignore[misc]


def test_show_stat_filters_match_haproxys(both: tuple[Side, Side]) -> None:
    theirs, ours = both
    _same(both, ["disable server be/s2"])
    for command in (
        "show stat",
        "show stat -1 1 -1",
        "show stat -1 2 -1",
        "show stat -1 4 -1",
        "show stat -1 6 -1",
        "show stat be 4 -1",
        "show stat be 4 1",
        "show stat 99 -1 -1",
        "show stat 3 x",
        "show stat up",
        "show stat no-maint",
        "show stat -1 4 -1 up",
        "show stat -1 4 -1 typed",
    ):
        if "typed" in command:
            got = {k[0] for k in _typed(ours(command).decode())}
            assert got == {k[0] for k in _typed(theirs(command).decode())}, command
            continue
        assert _rows(ours, command) == _rows(theirs, command), command
    assert ours("show stat nope 1 -1") == theirs("show stat nope 1 -1") == b"No such proxy.\n\n"
    backend = [ln for ln in ours("show stat up").decode().splitlines() if ",BACKEND," in ln]
    assert backend[0].split(",")[17] == "UP (1/2)"


def test_proxy_ids_as_haproxy_numbers_them(both: tuple[Side, Side]) -> None:
    """A `stats socket` creates HAProxy's GLOBAL frontend, id 1: proxies count from 2."""

    def ids(side: Side) -> list[tuple[str, ...]]:
        rows = [ln.split(",") for ln in side("show stat").decode().splitlines()[1:] if ln]
        state = [ln.split() for ln in side("show servers state").decode().splitlines()[2:] if ln]
        return [(r[0], r[1], r[27], r[28]) for r in rows] + [tuple(s[:4]) for s in state]

    theirs, ours = both
    assert ids(ours) == ids(theirs)


def test_weights_of_servers_in_every_state_and_of_the_backend(lab: Lab, tmp_path: Path) -> None:
    """`weight` stays the server's while it is down, in maintenance or draining; the
    backend's `weight` and `uweight` count the usable servers only."""
    dead = free_port()
    backend = (
        "backend be\n"
        f"  server s1 127.0.0.1:{dead} check inter 100ms fall 1 weight 5\n"
        "  server s2 127.0.0.1:7001 disabled weight 7\n"
        "  server s3 127.0.0.1:7002 weight 9\n"
        "  server s4 127.0.0.1:7003 weight 11\n"
        "  server s5 127.0.0.1:7004 weight 13 backup\n"
    )
    sides = [_start(lab, tmp_path, name, backend) for name in ("haproxy", "nsproxy")]
    columns = ("svname", "status", "weight", "act", "bck", "uweight")
    seen = []
    for side in sides:
        assert side("set server be/s3 state drain") == b"\n"

        def table(side: Side = side) -> list[tuple[str, ...]] | None:
            lines = side("show stat -1 6 -1").decode().splitlines()
            header = lines[0][2:].split(",")
            rows = [dict(zip(header, ln.split(","), strict=False)) for ln in lines[1:] if ln]
            got = [tuple(r[c] for c in columns) for r in rows]
            return got if got[0][1] == "DOWN" else None

        seen.append(wait_until(table, 10, "s1 DOWN by its check"))
    theirs, ours = seen
    assert ours == theirs


def test_server_commands(both: tuple[Side, Side]) -> None:
    commands = [
        "get var",
        "get var proc.x",
        "show servers conn nope",
        "shutdown sessions server",
        "shutdown sessions server be/nope",
        "shutdown sessions server be/s1",
        "disable agent be/s1",
        "enable agent be/s1",
        "enable agent be/nope",
    ]
    _same(both, commands)
    _same(both, commands, "operator")
    _same(both, commands, "user")

    def conn(side: Side, command: str) -> list[list[str]]:
        # HAProxy runs 2 threads, nsproxy one per process: the per-thread idle counts differ
        lines = side(command).decode().splitlines()
        return [ln.split()[:14] for ln in lines if ln]

    theirs, ours = both
    for command in ("show servers conn", "show servers conn be"):
        assert conn(ours, command) == conn(theirs, command)


def test_shutdown_sessions_server_closes_its_connections(lab: Lab, tmp_path: Path) -> None:
    echo = lab.sink(None, "127.0.0.1", echo=True)
    side = _start(lab, tmp_path, "nsproxy", f"backend be\n  server s1 127.0.0.1:{echo.port}\n")
    with socket.create_connection(("127.0.0.1", side.port), timeout=5) as c:
        c.sendall(b"ping")
        assert c.recv(4) == b"ping"
        assert side("shutdown sessions server be/s1") == b"\n"
        assert c.recv(4) == b""  # closed by nsproxy


def _raw(path: str, data: bytes) -> bytes:
    """`data` sent at once then the write side shut, as `socat` does; the whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = bytearray()
        while chunk := s.recv(65536):
            out += chunk
    return bytes(out)


FRAMING = (
    b"show cli level",  # no newline: dropped at the end of input
    b"show cli level;show cli level",
    b"show cli level\nshow cli level\n",  # both received before the first answer: both run
    b"show cli level;quit;show cli level\n",
    b"quit\n",
    b"",
    b"prompt\n",
    b"prompt\nshow cli level;show cli level\nquit\n",
    b"prompt\nquit;show cli level\n",
    b"prompt\nprompt\nshow cli level\n",
    b"prompt\nshow cli level",
    b"operator;show cli level\n",
)


def test_command_framing_matches_haproxys(both: tuple[Side, Side]) -> None:
    theirs, ours = both
    for data in FRAMING:
        assert _raw(ours.socks["admin"], data) == _raw(theirs.socks["admin"], data), data
    for side in both:  # an empty command gets the help, in both
        assert _raw(side.socks["admin"], b";\n").startswith(b"Unknown command. Please enter")


def test_show_servers_state_matches_haproxys_for_the_same_states(lab: Lab, tmp_path: Path) -> None:
    """srv_op_state, srv_admin_state and the check columns for a server down by its check,
    up by its check, disabled in the configuration, in maintenance, draining, unchecked."""
    alive = lab.sink(None, "127.0.0.1")
    backend = (
        "backend be\n"
        f"  server s1 127.0.0.1:{free_port()} check inter 100ms fall 1\n"
        "  server s2 127.0.0.1:7001 disabled\n"
        "  server s3 127.0.0.1:7002\n"
        f"  server s4 127.0.0.1:{alive.port} check inter 100ms\n"
        "  server s5 127.0.0.1:7004 backup\n"
    )
    sides = [_start(lab, tmp_path, name, backend) for name in ("haproxy", "nsproxy")]

    def state(side: Side) -> dict[str, list[str]]:
        lines = side("show servers state be").decode().splitlines()[2:]
        rows = {ln.split()[3]: ln.split() for ln in lines if ln}
        return {name: r[:9] + r[10:] for name, r in rows.items()}  # not the time since change

    def settled(side: Side) -> dict[str, list[str]] | None:
        rows = state(side)
        checked = rows["s1"][9] == "8" and rows["s4"][9] == "6"  # L4CON, L4OK
        # HAProxy's health climbs one step per check after maintenance: wait for the top
        climbed = rows["s4"][11] == ("4" if rows["s4"][5] == "2" else "0")
        return rows if checked and climbed else None

    for step in (
        [],
        ["set server be/s3 state drain", "disable server be/s5"],
        ["enable server be/s2", "disable server be/s4"],
        ["disable server be/s2", "set server be/s4 state ready"],
        ["set server be/s2 state ready", "set server be/s3 state ready"],
    ):
        seen = []
        for side in sides:
            for command in step:
                assert side(command) == b"\n", command
            try:
                seen.append(wait_until(lambda side=side: settled(side), 10, "the checks results"))
            except TimeoutError:
                raise AssertionError((step, side.socks, state(side))) from None
        theirs, ours = seen
        assert ours == theirs, step
