"""A live `peers` section: the local peer's listener, sessions to remote peers over
non-blocking sockets, HAProxy 2.6's reconnect delays, resync after start, lesson on reload.

The scheduling is HAProxy's process_peer_sync(). A starting process that replaces old ones
(-sf/-st) first waits up to 5 s for the old process's lesson over the local peer; otherwise,
or then, it asks one connected remote peer for a full resync (5 s more before it gives up).
A soft-stopping process closes its listener and remote sessions, connects to its own local
peer address (where its successor now listens) under its own name, teaches every entry and
stays alive until the successor confirms (or cannot be reached).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from typing import Protocol

from nsproxy.config.model_stick import PeerCfg, PeersCfg
from nsproxy.ops import log
from nsproxy.runtime.clock import Clock, Timer
from nsproxy.stick import peers_proto as pp
from nsproxy.stick.peers_session import CLOSED, ESTABLISHED, Events, PeerSession
from nsproxy.stick.table import StickTable

RESYNC_TIMEOUT_MS = 5000
RECONNECT_MS = 5000
# peer status codes besides the handshake's (HAProxy's PEER_SESS_SC_*)
CONNECT_CODE, CONNECTED_CODE = 100, 110
READ_BATCH = 16


class StopHolder(Protocol):
    """What keeps a soft-stopping process alive (HAProxy's `jobs`)."""

    def hold_stop(self) -> None: ...

    def release_stop(self) -> None: ...


def net_name(t: StickTable) -> str:
    """The name a table has on the wire: a proxy's table, the proxy's name; a peers
    section's `table T` ("<peers>/T" locally), "/T" (HAProxy 2.6 cuts the section name
    but keeps the slash)."""
    _, slash, rest = t.name.partition("/")
    return slash + rest if slash else t.name


def peer_address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    h = "127.0.0.1" if host == "localhost" else host
    return (socket.AF_INET6 if ":" in h else socket.AF_INET), (h, port)


def _bind_address(cfg: PeersCfg) -> tuple[str, int] | None:
    local = cfg.local
    if local is not None and local.host is not None and local.port is not None:
        return local.host, local.port
    if cfg.bind:
        host, _, port = cfg.bind.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        if port.isdigit():
            return host, int(port)
    return None


class Peer:
    """One `peer` line as the section tracks it (HAProxy's struct peer)."""

    def __init__(self, cfg: PeerCfg, address: tuple[str, int] | None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.local = cfg.local
        self.address = address
        self.link: Link | None = None
        self.status = 0
        self.reconnect = 0  # ms date before which no new connection is tried
        self.learn = False  # assigned to teach us a full resync
        self.not_up_to_date = False  # its last lesson was partial
        self.teach_complete = False  # (local peer, stopping) our successor confirmed


class Link:
    """One TCP connection carrying one PeerSession."""

    def __init__(
        self,
        section: PeersSection,
        sock: socket.socket,
        session: PeerSession,
        peer: Peer | None,
        connecting: bool,
    ) -> None:
        self.section = section
        self.sock = sock
        self.fd = sock.fileno()
        self.session = session
        self.peer = peer
        self.accepted = not connecting
        self.connected = not connecting
        self.closed = False
        self._wbuf = bytearray()
        self._writing = False
        self._timer: Timer | None = None
        loop = section.loop
        if connecting:
            loop.add_writer(self.fd, self._on_connected)
        else:
            loop.add_reader(self.fd, self._on_read)
        self._arm()

    def _on_connected(self) -> None:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.section.loop.remove_writer(self.fd)
        if err:
            self.close()
            return
        self.connected = True
        if self.peer is not None:
            self.peer.status = CONNECTED_CODE
        self.section.loop.add_reader(self.fd, self._on_read)
        self.flush()

    def _on_read(self) -> None:
        for _ in range(READ_BATCH):
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            ev = self.session.receive(data, self.section.now_ms())
            self.section.handle(self, ev)
            if self.closed or self.session.state == CLOSED or not data:
                break
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed:
            return
        ev = self.session.tick(self.section.now_ms())
        self.section.handle(self, ev)
        self.flush()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.session.next_deadline()
        if deadline is not None and not self.closed:
            self._timer = self.section.clock.call_at((deadline + 1) / 1000, self._on_timer)

    def flush(self) -> None:
        """Writes what the session has to say; closes once a closed session said it all
        (at once while still connecting: a silent peer's 5 s are over)."""
        if self.closed:
            return
        self._wbuf += self.session.outgoing()
        if not self.connected:
            if self.session.state == CLOSED:
                self.close()
            return
        if self._wbuf:
            try:
                del self._wbuf[: self.sock.send(self._wbuf)]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._wbuf.clear()
                self.session.state = CLOSED
        want = bool(self._wbuf)
        if want != self._writing:
            if want:
                self.section.loop.add_writer(self.fd, self.flush)
            else:
                self.section.loop.remove_writer(self.fd)
            self._writing = want
        if self.session.state == CLOSED and not self._wbuf:
            self.close()
            return
        self._arm()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop = self.section.loop
        loop.remove_reader(self.fd)
        loop.remove_writer(self.fd)
        self.sock.close()
        self.section.released(self)


class PeersSection:
    """One `peers` section with a local peer: its listener, peers, links and resync state."""

    def __init__(
        self,
        cfg: PeersCfg,
        tables: list[StickTable],
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        holder: StopHolder,
        old_processes: int = 0,
    ) -> None:
        assert cfg.local is not None
        self.cfg = cfg
        self.loop = loop
        self.clock = clock
        self.holder = holder
        self.old_processes = old_processes
        self.local_name = cfg.local.name
        self.names = tuple(p.name for p in cfg.peers)
        self.tables = {net_name(t): t for t in tables}
        bind = _bind_address(cfg)
        self.local = Peer(cfg.local, bind)
        self.remotes = [
            Peer(p, (p.host, p.port) if p.host is not None and p.port is not None else None)
            for p in cfg.peers
            if not p.local
        ]
        self.listener: socket.socket | None = None
        self.links: set[Link] = set()
        # resync state (HAProxy's PEERS_F_RESYNC_* flags)
        self.local_done = False
        self.remote_done = False
        self.assigned: Peer | None = None
        self.resync_timeout: int | None = None
        self.stopping = False
        self.holding = False
        self._task: Timer | None = None
        self._task_at: float | None = None
        self._push_pending = False
        self.closed = False
        for t in tables:
            t.keep_update_log()
            t.on_update = self._local_update

    # -- state ------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    @property
    def up_to_date(self) -> bool:
        """Our own resync is finished (PEERS_RESYNC_FINISHED): a lesson we give is complete."""
        return self.local_done and self.remote_done

    def peer(self, name: str) -> Peer | None:
        if name == self.local_name:
            return self.local
        return next((p for p in self.remotes if p.name == name), None)

    # -- starting and stopping ----------------------------------------------------------------
    def open(self) -> bool:
        """Listens on the local peer's address (next to a predecessor: SO_REUSEPORT).
        False after HAProxy's alert when the address cannot be bound."""
        addr = self.local.address
        if addr is None or self.listener is not None:
            return True
        family, sa = peer_address(*addr)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(sa)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            log.alert(
                f"Binding [{self.local.cfg.where}] for proxy {self.local_name}: cannot bind "
                f"socket ({exc.strerror}) for [{addr[0]}:{addr[1]}]"
            )
            return False
        self.listener = sock
        return True

    def start(self) -> None:
        """Accepts peers (the listener is opened now if `open` was not called) and starts
        the sync task: connections, resync."""
        self.open()
        if self.listener is not None:
            self.loop.add_reader(self.listener.fileno(), self._on_accept)
        self.wakeup()

    def soft_stop(self) -> None:
        """Stop signal: no more listening, remote sessions closed (to be retried by nobody:
        the process is stopping), the lesson for the successor starts."""
        if self.stopping:
            return
        self.stopping = True
        self._close_listener()
        if not self.holding:
            self.holding = True
            self.holder.hold_stop()
            now = self.now_ms()
            for ps in self.remotes:
                ps.reconnect = now + 50 + random.randrange(2000)
                if ps.link is not None:
                    ps.link.close()
        self.wakeup()

    def _release_hold(self) -> None:
        if self.holding:
            self.holding = False
            self.holder.release_stop()

    def _close_listener(self) -> None:
        if self.listener is not None:
            self.loop.remove_reader(self.listener.fileno())
            self.listener.close()
            self.listener = None

    def close(self) -> None:
        self.closed = True
        self._close_listener()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for link in list(self.links):
            link.close()
        for t in self.tables.values():
            t.on_update = None
        self._release_hold()

    # -- connections ----------------------------------------------------------------------------
    def _on_accept(self) -> None:
        if self.listener is None:
            return
        for _ in range(READ_BATCH):
            try:
                sock, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s = PeerSession.accept(self.local_name, self.names, self.tables, self.now_ms())
            s.admit = self._admit
            s.up_to_date = self.up_to_date
            self.links.add(Link(self, sock, s, None, connecting=False))

    def _admit(self, name: str) -> int:
        """A hello from peer `name`: the local peer gets `try again` while it already has a
        session; a remote peer's new session replaces ours (both sides connecting at once)."""
        ps = self.peer(name)
        if ps is None or ps.link is None:
            return pp.SUCCESS
        if ps.local:
            return pp.TRY_AGAIN
        ps.reconnect = self.now_ms() + 50 + random.randrange(2000)
        old = ps.link
        ps.link = None
        self._unassign(ps)
        old.close()
        return pp.SUCCESS

    def connect(self, ps: Peer) -> None:
        """peer_session_create(): a new outgoing session; the next try waits 5 s."""
        now = self.now_ms()
        ps.reconnect = now + RECONNECT_MS
        ps.status = CONNECT_CODE
        if ps.address is None:
            return
        family, sa = peer_address(*ps.address)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex(sa)
        if err not in (0, 115):  # EINPROGRESS
            sock.close()
            self.wakeup()
            return
        s = PeerSession.connect(self.local_name, ps.name, self.tables, now)
        s.up_to_date = self.up_to_date
        link = Link(self, sock, s, ps, connecting=True)
        ps.link = link
        self.links.add(link)

    def released(self, link: Link) -> None:
        """peer_session_release(): a learner gone unassigns the lesson (retried in 5 s)."""
        self.links.discard(link)
        ps = link.peer
        if ps is not None and ps.link is link:
            ps.link = None
            self._unassign(ps)
        self.wakeup()

    def _unassign(self, ps: Peer) -> None:
        """A learner's session ends: the lesson goes to another peer, in 5 s at the latest."""
        if ps.learn:
            ps.learn = False
            self.assigned = None
            self.resync_timeout = self.now_ms() + RESYNC_TIMEOUT_MS

    # -- session events ----------------------------------------------------------------------
    def handle(self, link: Link, ev: Events) -> None:
        s = link.session
        if ev.established:
            ps = link.peer if link.peer is not None else self.peer(s.remote_name)
            if ps is not None:
                link.peer = ps
                ps.link = link
                ps.status = pp.SUCCESS
                self._established(ps, s, link.accepted)
        ps = link.peer
        if ps is not None and (ev.resync_finished or ev.resync_partial) and ps.learn:
            ps.learn = False
            self.assigned = None
            if ev.resync_finished:
                self.local_done = self.remote_done = True
                self._refresh()
            else:
                ps.not_up_to_date = True
                self.resync_timeout = self.now_ms() + RESYNC_TIMEOUT_MS
            self.wakeup()
        if ps is not None and ev.resync_confirmed and ps.local:
            ps.teach_complete = True
            self.wakeup()
        if ev.closed is not None and ps is not None and s.status is not None and ps.link is link:
            ps.status = s.status  # a refusal (50x) is never retried, as in HAProxy 2.6

    def _established(self, ps: Peer, s: PeerSession, accepted: bool) -> None:
        now = self.now_ms()
        self._unassign(ps)
        ps.not_up_to_date = False
        if ps.local:
            if not accepted:
                s.teach_all(now, finished=self.up_to_date)  # init_connected_peer(): teach
            elif not self.local_done and self.assigned is None:
                # init_accepted_peer(): the predecessor's lesson, considered requested
                ps.learn = True
                self.assigned = ps
                s.learning = True
        elif self.local_done and not self.remote_done and self.assigned is None:
            ps.learn = True
            self.assigned = ps
            s.request_resync(now)

    def _refresh(self) -> None:
        for link in self.links:
            link.session.up_to_date = self.up_to_date

    # -- pushes ---------------------------------------------------------------------------------
    def _local_update(self) -> None:
        if not self._push_pending:
            self._push_pending = True
            self.clock.call_later(0, self._push)

    def _push(self) -> None:
        self._push_pending = False
        if self.closed:
            return
        now = self.now_ms()
        for link in list(self.links):
            s = link.session
            if s.state == ESTABLISHED and link.peer is not None and s.push(now):
                link.flush()

    # -- the sync task ---------------------------------------------------------------------------
    def wakeup(self) -> None:
        """Runs the sync task soon (once, however many wake-ups come first)."""
        if not self.closed:
            self._schedule(self.clock.time())

    def _schedule(self, when: float) -> None:
        if self._task is not None and self._task_at is not None and self._task_at <= when:
            return
        if self._task is not None:
            self._task.cancel()
        self._task_at = when
        self._task = self.clock.call_at(when, self._run)

    def _run(self) -> None:
        self._task = None
        self._task_at = None
        if self.closed:
            return
        expire = self.sync(self.now_ms())
        if expire is not None:
            self._schedule((expire + 1) / 1000)

    def sync(self, now: int) -> int | None:
        """process_peer_sync(): connects, assigns lessons, ends resync phases, and in a
        stopping process drives the lesson to the successor. Returns the next date to run."""
        if self.stopping:
            self._sync_stopping(now)
            return None
        expire: int | None = None
        if self.resync_timeout is None:
            self.resync_timeout = now + RESYNC_TIMEOUT_MS
        if (
            not self.local_done
            and (not self.old_processes or now >= self.resync_timeout)
            and self.assigned is None
        ):
            self.local_done = True
            self.resync_timeout = now + RESYNC_TIMEOUT_MS
        for ps in self.remotes:
            if ps.link is None:
                if ps.status == 0 or (
                    ps.status in (CONNECT_CODE, pp.SUCCESS, CONNECTED_CODE) and now >= ps.reconnect
                ):
                    self.connect(ps)
                    if ps.link is None:
                        expire = _first(expire, ps.reconnect)
                elif now < ps.reconnect:
                    expire = _first(expire, ps.reconnect)
            elif (
                ps.status == pp.SUCCESS
                and self.local_done
                and not self.remote_done
                and self.assigned is None
                and not ps.not_up_to_date
            ):
                ps.learn = True
                self.assigned = ps
                ps.link.session.request_resync(now)
                ps.link.flush()
        if (
            self.local_done
            and not self.remote_done
            and self.assigned is None
            and now >= self.resync_timeout
        ):
            self.remote_done = True
        if not self.up_to_date and now < self.resync_timeout:
            expire = _first(expire, self.resync_timeout)
        self._refresh()
        return expire

    def _sync_stopping(self, now: int) -> None:
        ps = self.local
        if ps.teach_complete:
            self._release_hold()
        elif ps.link is None:
            if ps.status in (0, pp.SUCCESS, CONNECTED_CODE, pp.TRY_AGAIN):
                if self.holding:
                    self.connect(ps)
                    if ps.link is None:
                        self._release_hold()
            else:
                self._release_hold()  # the successor cannot be reached: stop anyway
        elif ps.status == pp.SUCCESS and ps.link.session.push(now):
            ps.link.flush()


def _first(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


__all__ = ["Link", "Peer", "PeersSection", "StopHolder", "net_name"]
