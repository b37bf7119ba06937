"""The peers codec against a live HAProxy 2.6: handshake, learn its entries, teach it ours."""

from __future__ import annotations

import re
import socket
import time

from haproxy_live import Haproxy, free_port, wait_for

from nsproxy.stick import peers_proto as pp
from nsproxy.stick.peers_sync import apply_update, entry_update, table_def
from nsproxy.stick.table import StickTable

CONFIG = """
global
    stats socket {SOCK} level admin
    localpeer hap
defaults
    timeout client 5s
    timeout server 5s
    timeout connect 1s
peers mesh
    peer hap 127.0.0.1:HAP_PORT
    peer py 127.0.0.1:PY_PORT
backend t
    stick-table type ip size 100 expire 60s peers mesh store server_id,gpc0,conn_rate(10s),conn_cur
"""


class PeerConn:
    """The Python side of one peer session, blocking, every read bounded in time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(0.2)
        self.buf = bytearray()

    def _fill(self, deadline: float) -> None:
        if time.monotonic() > deadline:
            raise TimeoutError("peer data")
        try:
            b = self.sock.recv(65536)
        except TimeoutError:
            return
        if not b:
            raise ConnectionError("peer closed")
        self.buf += b

    def lines(self, n: int, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while (r := pp.split_lines(bytes(self.buf), n)) is None:
            self._fill(deadline)
        lines, used = r
        del self.buf[:used]
        return lines

    def frame(self, want: object, timeout: float = 5.0) -> pp.Frame:
        """The next frame for which want(frame) is true (others, heartbeats..., skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            for f in pp.read_frames(self.buf):
                if want(f):  # type: ignore[operator]
                    return f
            self._fill(deadline)


def test_handshake_learn_and_teach() -> None:
    hap_port, py_port = free_port(), free_port()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", py_port))
    listener.listen(1)
    listener.settimeout(15)
    h = Haproxy(CONFIG.replace("HAP_PORT", str(hap_port)).replace("PY_PORT", str(py_port)))
    try:
        conn, _ = listener.accept()
        with conn:
            pc = PeerConn(conn)
            status, hello = pp.check_hello(pc.lines(3), "py", ["hap", "py"])
            assert status == pp.SUCCESS and hello is not None
            assert hello.local_id == "hap" and hello.version == (2, 1)
            assert hello.pid == h.proc.pid
            conn.sendall(pp.status_line(pp.SUCCESS))
            # HAProxy, not yet synced, asks us for a full resync: we have nothing to teach
            f = pc.frame(lambda f: f.cls == pp.CLASS_CONTROL)
            assert f.encode() == pp.control(pp.RESYNC_REQUEST) == b"\x00\x00"
            conn.sendall(pp.control(pp.RESYNC_FINISHED))
            f = pc.frame(lambda f: f.cls == pp.CLASS_CONTROL)
            assert f.type == pp.RESYNC_CONFIRM
            conn.sendall(pp.control(pp.HEARTBEAT))

            # learn: HAProxy announces its table then sends the entry set on its CLI
            assert (
                h.cli("set table t key 192.0.2.1 data.gpc0 5 data.server_id 2 data.conn_rate 4")
                == "\n"
            )
            f = pc.frame(lambda f: f.type == pp.DEFINE)
            td = pp.TableDef.decode(f.payload)
            assert (td.name, td.key_type, td.key_size, td.expire) == ("t", "ip", 4, 60000)
            assert td.data_types == (0, 2, 5, 6) and td.periods == ((5, 10000),)
            assert td.encode() == pp.Frame(f.cls, f.type, f.payload).encode()
            f = pc.frame(lambda f: f.type in (pp.UPDATE, pp.UPDATE_TIMED))
            u = pp.decode_update(td, f)
            assert f.type in (pp.UPDATE, pp.UPDATE_TIMED) and u.update_id == 1
            assert u.key == 0xC0000201
            assert u.values[0] == 2 and u.values[1] == 5 and u.values[3] == 0
            rate = u.values[2]
            assert isinstance(rate, pp.FreqValue) and (rate.curr, rate.prev) == (4, 0)
            assert u.expire is None or 59000 < u.expire <= 60000
            assert pp.encode_update(td, u) == f.encode()
            ours = StickTable(
                "t",
                "ip",
                100,
                expire_ms=60000,
                store=[
                    ("server_id", None),
                    ("gpc0", None),
                    ("conn_rate", 10000),
                    ("conn_cur", None),
                ],
            )
            ts = apply_update(ours, td, u, 1_000_000)
            assert ts is not None and ours.get(ts, "gpc0", 1_000_000) == 5
            assert ours.get(ts, "conn_rate", 1_000_000) == 4
            conn.sendall(pp.ack(td.table_id, 1))

            # teach: our table definition and an entry; HAProxy then shows it
            mine = ours.get_entry(ours.make_key("198.51.100.7"), 1_000_000)
            assert mine is not None
            ours.set(mine, "gpc0", 77, 1_000_000)
            ours.set(mine, "server_id", 3, 1_000_000)
            ours.set(mine, "conn_rate", 9, 1_000_000)
            ours.touch_local(mine, 1_000_000, decref=True)
            mydef = table_def(ours, 7)
            conn.sendall(mydef.encode())
            conn.sendall(pp.encode_update(mydef, entry_update(ours, mine, 1_000_050, 1)))
            ackf = pc.frame(lambda f: f.type == pp.ACK)
            assert pp.decode_ack(ackf.payload) == (7, 1)  # our table id, our update id

            def shown() -> str | None:
                out = h.cli("show table t key 198.51.100.7")
                return out if "key=198.51.100.7" in out else None

            line = str(wait_for(shown, what="our entry in haproxy"))
            assert re.search(r" server_id=3 gpc0=77 conn_rate\(10000\)=9 conn_cur=0\n", line)
            exp = int(re.search(r"exp=(\d+)", line).group(1))  # type: ignore[union-attr]
            assert 58000 < exp <= 60000
    finally:
        h.close()
        listener.close()
