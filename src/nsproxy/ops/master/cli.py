"""The master's runtime API: the configured `stats socket`s on the shared dispatcher.

Session commands (prompt, quit, levels, `_getsocks`) are the workers' own; `show proc`,
`reload` and the `@` prefixes are the master's; anything else is asked of every current
worker at the client's level and their answers are merged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import selectors
import socket
import time
from typing import TYPE_CHECKING

from nsproxy.ops import log
from nsproxy.ops.cli_stream import CliStream
from nsproxy.ops.identity import VERSION
from nsproxy.ops.master.merge import merge_info, merge_netns, merge_stat
from nsproxy.ops.master.workers import Worker, proc_line, query, uptime
from nsproxy.ops.runtime_api import (
    ADMIN,
    LEVEL_NAMES,
    OPERATOR,
    SESSION,
    SESSION_TIMEOUT,
    CommandSet,
    CommandTable,
    Session,
)
from nsproxy.ops.stats_socket import StatsSocket

if TYPE_CHECKING:
    from nsproxy.config.model import StatsSocketCfg
    from nsproxy.ops.master.process import Master
    from nsproxy.runtime.process import Runtime

MASTER_HELP = (
    f"  {'@<relative pid>':<40}: send a command to the <relative pid> process\n"
    f"  {'@!<pid>':<40}: send a command to the <pid> process\n"
    f"  {'@master':<40}: send a command to the master process\n"
    f"  {'show proc':<40}: show the list of processes\n"
    f"  {'reload':<40}: reload the configuration (new workers, old ones finish)\n"
)


@dataclasses.dataclass(slots=True)
class Client:
    """One connection to a `stats socket` served by the master."""

    sock: socket.socket
    cli: CliStream
    origin: StatsSocket
    deadline: float

    @property
    def session(self) -> Session:
        return self.cli.session


class MasterCli:
    """The master's stats sockets, their clients and the command table they share."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.sel = master.sel
        self.sockets: list[StatsSocket] = []
        self.clients: dict[int, Client] = {}
        own = CommandSet()
        own.command("show", "proc")(self._show_proc)
        own.command("reload")(self._reload)
        self.table = CommandTable((SESSION, own), fallback=self._forward)

    # -- sockets ------------------------------------------------------------------------------
    def socket_cfgs(self, rt: Runtime) -> tuple[StatsSocketCfg, ...]:
        """The sockets this CLI serves: the `stats socket` lines of `rt`'s configuration."""
        return rt.config.global_.stats_sockets

    def open_sockets(self, rt: Runtime) -> list[StatsSocket]:
        """The sockets of `socket_cfgs`; one already open with the same line is kept.
        Raises OSError (after the alert) if one cannot be bound."""
        current = {s.cfg: s for s in self.sockets}
        out: list[StatsSocket] = []
        for cfg in self.socket_cfgs(rt):
            kept = current.pop(cfg, None)
            if kept is not None:
                out.append(kept)
                continue
            s = StatsSocket(rt, cfg, self.table)
            try:
                s.open()
            except OSError as exc:
                log.alert(
                    f"Starting frontend GLOBAL: cannot bind socket ({exc.strerror}) for "
                    f"[{cfg.addr}]"
                )
                for opened in out:
                    if opened not in self.sockets:
                        self.close_socket(opened)
                raise
            out.append(s)
        return out

    def use(self, sockets: list[StatsSocket], rt: Runtime) -> None:
        """Serves `sockets` from now on (others are closed); clients see runtime `rt`."""
        for s in self.sockets:
            if s not in sockets:
                self.close_socket(s)
        for s in sockets:
            if s not in self.sockets:
                self._watch(s, True)
        self.sockets = sockets
        for c in self.clients.values():
            c.session.rt = rt

    def close_socket(self, s: StatsSocket) -> None:
        if s.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(s.sock)
        s.close(clients=False)

    def close(self, clients: bool) -> None:
        for s in self.sockets:
            self.close_socket(s)
        self.sockets = []
        if clients:
            for c in list(self.clients.values()):
                self._drop(c)

    def close_in_child(self) -> None:
        """In a new worker: the sockets and clients are the master's."""
        for s in self.sockets:
            if s.sock is not None:
                s.sock.close()
        for c in self.clients.values():
            c.sock.close()

    # -- clients ------------------------------------------------------------------------------
    # Bounded as the workers' stats sockets (ops.stats_socket): `maxconn` clients per socket,
    # answers capped per client (its input is not read meanwhile), one command per turn of
    # the master's loop, `stats timeout` from the last complete line or answer bytes taken.
    def _on_accept(self, s: StatsSocket) -> None:
        if s.sock is None or self.master.rt is None:
            return
        if sum(1 for c in self.clients.values() if c.origin is s) >= s.maxconn:
            self._watch(s, False)
            return
        try:
            csock, _ = s.sock.accept()
        except OSError:
            return
        csock.setblocking(False)
        session = Session(self.master.rt, LEVEL_NAMES[s.cfg.level], s.cfg.expose_fd, csock)
        self.setup(session)
        c = Client(csock, CliStream(self.table, session), s, 0.0)
        c.deadline = time.monotonic() + self._timeout(c)
        self.clients[csock.fileno()] = c
        self.sel.register(csock, selectors.EVENT_READ, lambda: self._on_client(c))

    def setup(self, session: Session) -> None:
        """A new client's session, before its first command (the master CLI's state)."""

    def _watch(self, s: StatsSocket, on: bool) -> None:
        if s.sock is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(s.sock)
        if on:
            self.sel.register(s.sock, selectors.EVENT_READ, lambda: self._on_accept(s))

    def _timeout(self, c: Client) -> float:
        rt = self.master.rt
        default = rt.config.global_.stats_timeout if rt is not None else 10.0
        delay = c.session.state.get(SESSION_TIMEOUT, default)
        return delay if isinstance(delay, float) else default

    def _drop(self, c: Client) -> None:
        self.clients.pop(c.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(c.sock)
        c.sock.close()
        if c.origin in self.sockets:
            self._watch(c.origin, True)

    def _on_client(self, c: Client) -> None:
        if c.cli.outbuf:
            self._flush(c)
        if c.sock.fileno() < 0 or not c.cli.wants_input():
            return
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not c.cli.feed(data):
            self._drop(c)
            return
        self._run_one(c)

    def _run_one(self, c: Client) -> None:
        """Runs the client's next command if its answers have room, then writes."""
        if c.cli.step():
            c.deadline = time.monotonic() + self._timeout(c)
        self._flush(c)

    def _flush(self, c: Client) -> None:
        out = c.cli.outbuf
        while out:
            try:
                n = c.sock.send(out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop(c)
                return
            c.cli.sent(n)
            c.deadline = time.monotonic() + self._timeout(c)
        if not out and c.cli.finished():
            self._drop(c)
            return
        events = selectors.EVENT_WRITE if out else 0
        if c.cli.wants_input():
            events |= selectors.EVENT_READ
        key = self.sel.get_map().get(c.sock.fileno())
        if events and key is None:
            self.sel.register(c.sock, events, lambda: self._on_client(c))
        elif events and key is not None and key.events != events:
            self.sel.modify(c.sock, events, lambda: self._on_client(c))
        elif not events and key is not None:
            self.sel.unregister(c.sock)

    def timeout(self) -> float | None:
        """How long the master's loop may wait: 0 while a client has a command to run."""
        if any(c.cli.runnable() for c in self.clients.values()):
            return 0
        if not self.clients:
            return None
        return max(0.0, min(c.deadline for c in self.clients.values()) - time.monotonic())

    def step(self) -> None:
        """One command for each client that has one; idle clients past `stats timeout` go."""
        now = time.monotonic()
        for c in list(self.clients.values()):
            if c.deadline <= now:
                self._drop(c)
            elif c.cli.runnable():
                self._run_one(c)

    # -- the master's commands ----------------------------------------------------------------
    def _reload(self, session: Session, args: list[str]) -> str:
        session.need(ADMIN)
        self.master.reload()
        return ""

    def _show_proc(self, session: Session, args: list[str]) -> str:
        m = self.master
        now = time.time()
        head = (
            f"{'#<PID>':<15} {'<type>':<15} {'<reloads>':<15} {'<uptime>':<15} {'<version>':<15}\n"
        )
        failed = f"{m.reloads} [failed: {m.failed_reloads}]"
        lines = [head, f"{os.getpid():<15} {'master':<15} {failed:<15} "]
        lines.append(f"{uptime(now - m.started):<15} {VERSION}\n# workers\n")
        for w in m.current():
            lines.append(proc_line(w, m.reloads - w.reloads, now))
        old = sorted((w for w in m.workers.values() if w.old), key=lambda w: w.pid)
        if old:
            lines.append("# old workers\n")
            lines += [proc_line(w, m.reloads - w.reloads, now) for w in old]
        lines.append("# programs\n")  # nsproxy runs no `program` sections
        return "".join(lines)

    def _forward(self, session: Session, text: str, words: list[str]) -> str:
        """A command the master does not answer: routed by `@`, or asked of every worker."""
        first = words[0] if words else ""
        if first.startswith("@"):
            return self._routed(session, first[1:], text.lstrip()[len(first) :].lstrip())
        workers = self.master.current()
        payload = session.payload
        if payload is not None:  # `cmd <<` with its lines: the worker gets them too
            text = f"{text} <<\n{payload}" + ("" if payload.endswith("\n") else "\n")
        answers = self._ask(session, workers, text)
        if not answers:
            return "No worker answered.\n"
        if {"typed", "json", "desc"} & set(words[2:]):
            return answers[0]  # not merged: worker 1's, as HAProxy's master forwards to one
        if words[:2] == ["show", "info"]:
            return merge_info(answers, os.getpid(), len(workers))
        if words[:2] == ["show", "stat"]:
            return merge_stat(answers)
        if words[:2] == ["show", "netns"]:
            return merge_netns(answers)
        if words[:2] == ["show", "sess"]:
            return "".join(answers)
        if first == "help":
            return answers[0] + MASTER_HELP
        return answers[0]

    def _routed(self, session: Session, target: str, text: str) -> str:
        """HAProxy's master CLI prefixes: `@master`, `@N` (current worker N), `@!PID`."""
        if target == "master":
            if text.split()[:2] == ["show", "proc"]:
                return self.table.execute(session, text)
            return ""
        found: Worker | None = None
        if target.startswith("!") and target[1:].isascii() and target[1:].isdigit():
            found = self.master.workers.get(int(target[1:]))
        elif target.isascii() and target.isdigit():
            found = next((w for w in self.master.current() if w.num == int(target)), None)
        if found is None:
            return "Can't find the target process, please verify the PID or the relative number\n"
        answers = self._ask(session, [found], text)
        return answers[0] if answers else ""

    def _ask(self, session: Session, workers: list[Worker], text: str) -> list[str]:
        """Runs one command on each worker at the client's level; their answers, in order."""
        level = session.level
        prefix = "" if level == ADMIN else ("operator; " if level == OPERATOR else "user; ")
        answers = []
        for w in workers:
            got = query(w.cli_path, prefix + text)
            if got is None:
                continue
            if prefix:
                got = got[1:]  # the empty answer of the level command
            answers.append(got[:-1] if got.endswith("\n") else got)
        return answers


__all__ = ["MASTER_HELP", "Client", "MasterCli"]
