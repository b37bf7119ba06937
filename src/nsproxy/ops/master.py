"""Master-worker mode (-W, `master-worker`, `nbthread N`): one master, N worker processes.

The master opens the listening sockets once (in their namespaces) and forks workers that
inherit them, so every worker accepts from the same kernel queue and a reload never closes
a listening socket that is still wanted. The master serves the configured `stats socket`s
itself and answers from its workers' private runtime API sockets, summing their counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import os
import selectors
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable

from nsproxy import __version__
from nsproxy.addresses import SockAddr
from nsproxy.config.model import Config, StatsSocketCfg
from nsproxy.netns import NetnsError
from nsproxy.ops import log, metrics, privileges, service
from nsproxy.ops.fd_transfer import _addr_key, send_listeners
from nsproxy.ops.runtime_api import (
    ADMIN,
    LEVEL_NAMES,
    OPERATOR,
    PERMISSION_DENIED,
    split_commands,
    split_words,
)
from nsproxy.ops.stats_socket import StatsSocket
from nsproxy.runtime.listener import Listener
from nsproxy.runtime.process import Runtime, listener_key

_PR_SET_PDEATHSIG = 1
_QUERY_TIMEOUT = 2.0
_MASTER_SIGNALS = (
    signal.SIGCHLD,
    signal.SIGUSR2,
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGUSR1,
    signal.SIGTTOU,
    signal.SIGTTIN,
)

# `show info` fields that are per-process counters: the aggregate is their sum.
_SUM_INFO = frozenset(
    [
        "Maxconn",
        "Hard_maxconn",
        "CurrConns",
        "CumConns",
        "CumReq",
        "Tasks",
        "Jobs",
        "PipesUsed",
        "PipesFree",
        "TotalBytesOut",
        "TotalSplicdedBytesOut",
        "DroppedLogs",
    ]
)
# `show stat` columns that are counters or limits of one worker: summed.
_SUM_STAT = frozenset(
    [
        "qcur",
        "qmax",
        "scur",
        "smax",
        "slim",
        "stot",
        "bin",
        "bout",
        "dreq",
        "dresp",
        "ereq",
        "econ",
        "eresp",
        "wretr",
        "wredis",
        "chkfail",
        "chkdown",
        "lbtot",
        "cli_abrt",
        "srv_abrt",
        "conn_tot",
        "dcon",
        "dses",
        "intercepted",
        "connect",
        "reuse",
    ]
)
_SAME_NETNS = frozenset(("name", "inode", "listeners", "servers", "state"))  # others: summed


def is_master_worker(config: Config, args: argparse.Namespace) -> bool:
    """-W/-Ws, `master-worker`, or `nbthread` above 1 (run as that many worker processes)."""
    g = config.global_
    return bool(args.master_worker or g.master_worker or g.nbthread > 1)


@dataclasses.dataclass(slots=True)
class Worker:
    """One forked worker process as the master sees it."""

    pid: int
    num: int  # relative number in its generation, from 1
    gen: int
    cli_path: str
    ready_fd: int
    started: float
    reloads: int
    ready: bool = False
    old: bool = False


@dataclasses.dataclass(slots=True)
class Client:
    """One connection to a `stats socket` served by the master."""

    sock: socket.socket
    level: int
    expose_fd: bool
    inbuf: bytearray = dataclasses.field(default_factory=bytearray)
    prompt: bool = False
    end: bool = False


# -- the worker side ----------------------------------------------------------------------------
def run_worker(config: Config, inherited: dict[str, socket.socket], ready_fd: int) -> int:
    """Runs one worker on the master's listening sockets; returns its exit status."""
    rt = service._built_runtime(config)
    if rt is None:
        return 1
    loop = rt.loop
    rt.fds_exported = True  # the sockets are the master's: never unlink a UNIX listener
    try:
        for li in rt.listeners:
            li.open(inherited.pop(listener_key(li), None))
        ok, ops = service._open_ops(rt)
        if not ok:
            return 1
        privileges.drop(config, rt)
    except OSError as exc:
        log.alert(f"[nsproxy.main()] {exc.strerror}")
        rt.close()
        return 1
    master = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != master:  # the master died before the death signal was armed
        return 1
    rt.install_signals()
    rt.start()
    for part in ops:
        part.start()

    def ready() -> None:  # once running: uvloop only sees signals while its loop runs
        os.write(ready_fd, b"R")
        os.close(ready_fd)

    loop.call_soon(ready)
    try:
        loop.run_until_complete(rt.wait_stopped())
    finally:
        rt.close()
        loop.close()
    return 0


def _worker_config(config: Config, num: int, count: int, cli_path: str) -> Config:
    """The worker's view: a private admin socket instead of the `stats socket`s and its share
    of the global `maxconn`; the master serves the metrics endpoint."""
    g = config.global_
    private = StatsSocketCfg(SockAddr(socket.AF_UNIX, cli_path, 0), mode=0o600, level="admin")
    return dataclasses.replace(
        config,
        global_=dataclasses.replace(
            g,
            stats_sockets=(private,),
            maxconn=-(-g.maxconn // count),
            prometheus_exporter=None,
            daemon=False,
            pidfile=None,
        ),
    )


# -- the master -----------------------------------------------------------------------------------
class StartError(Exception):
    """A configuration the master could not open listeners or sockets for."""


def _sockets_key(li: Listener) -> tuple[object, ...] | None:
    key = _addr_key(li.addr.family, li.addr.sockaddr())
    return None if key is None else (li.netns.name if li.netns else "", li.addr.family, *key)


class Master:
    """The master process: listeners, workers, reloads, signals and the runtime API."""

    def __init__(self, config: Config, args: argparse.Namespace) -> None:
        self.config = config
        self.args = args
        self.loop = asyncio.new_event_loop()  # only held by the socket-owning Runtimes
        self.rt: Runtime | None = None
        self.cli: list[StatsSocket] = []
        self.clients: dict[int, Client] = {}
        self.exporter: socket.socket | None = None
        self.exporter_addr: SockAddr | None = None
        self.scrapes: dict[int, socket.socket] = {}
        self.workers: dict[int, Worker] = {}
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.rundir = tempfile.mkdtemp(prefix="nsproxy-master-")
        self.gen = 0
        self.reloads = 0
        self.failed_reloads = 0
        self.started = time.time()
        self.announced = False
        self.stopping = False
        self.exit_code = 0

    # -- opening ----------------------------------------------------------------------------
    def _open(self, config: Config, previous: Runtime | None) -> Runtime:
        """A Runtime holding `config`'s listening sockets, reusing `previous`'s where they match."""
        rt = Runtime(config, self.loop)
        try:
            rt.build()
        except NetnsError as exc:
            log.alert(f"config : {exc.strerror}")
            raise StartError from None
        inherited: dict[Listener, socket.socket] = {}
        if previous is not None:
            old = {_sockets_key(li): li.sock for li in previous.listeners if li.sock is not None}
            for li in rt.listeners:
                sock = old.pop(_sockets_key(li), None)
                if sock is not None:
                    inherited[li] = sock
        else:
            inherited = service._inherited_sockets(rt, self.args)
        shared = {id(s) for s in inherited.values()} if previous is not None else set()
        failed = not rt.open_listeners(inherited)
        for sock in inherited.values():
            if id(sock) not in shared:
                sock.close()
        if failed:
            self._release(rt, keep=shared)
            raise StartError
        return rt

    def _release(self, rt: Runtime, keep: set[int]) -> None:
        """Closes `rt` except the listening sockets in `keep` (ids), still used elsewhere."""
        for li in rt.listeners:
            if li.sock is not None and id(li.sock) in keep:
                li.sock = None
        rt.close()

    def _open_cli(self, rt: Runtime) -> list[StatsSocket]:
        """The configured `stats socket`s; one already open with the same line is kept."""
        current = {s.cfg: s for s in self.cli}
        out: list[StatsSocket] = []
        for cfg in rt.config.global_.stats_sockets:
            kept = current.pop(cfg, None)
            if kept is not None:
                out.append(kept)
                continue
            s = StatsSocket(rt, cfg)
            try:
                s.open()
            except OSError as exc:
                log.alert(
                    f"Starting frontend GLOBAL: cannot bind socket ({exc.strerror}) for "
                    f"[{cfg.addr}]"
                )
                for opened in out:
                    if opened not in self.cli:
                        self._close_cli_socket(opened)
                raise StartError from None
            out.append(s)
        return out

    def _close_cli_socket(self, s: StatsSocket) -> None:
        if s.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(s.sock)
        s.close(clients=False)

    # -- running ----------------------------------------------------------------------------
    def run(self) -> int:
        try:
            self.rt = self._open(self.config, None)
            self.cli = self._open_cli(self.rt)
            exporter = self._exporter_for(self.config)
        except StartError:
            log.alert("[nsproxy.main()] Some protocols failed to start their listeners! Exiting.")
            for s in self.cli:
                self._close_cli_socket(s)
            if self.rt is not None:
                self.rt.close()
            shutil.rmtree(self.rundir, ignore_errors=True)
            return 1
        args, g = self.args, self.config.global_
        if (args.daemon or g.daemon) and not (args.foreground or args.debug):
            service._daemonize()
        pidfile = args.pidfile or g.pidfile
        if pidfile:
            tmp = f"{pidfile}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(f"{os.getpid()}\n")
            os.replace(tmp, pidfile)
        service._notify_connect()
        self._install_signals()
        for s in self.cli:
            self._watch_cli(s)
        self._set_exporter(exporter, self.config)
        self._spawn_generation()
        try:
            while self.workers or not self.stopping:
                for key, _ in self.sel.select():
                    cb: Callable[[], None] = key.data
                    cb()
        finally:
            self._shutdown(pidfile)
        log.warning(f"All workers exited. Exiting... ({self.exit_code})")
        return self.exit_code

    def _shutdown(self, pidfile: str | None) -> None:
        for s in self.cli:
            self._close_cli_socket(s)
        for c in list(self.clients.values()):
            self._drop_client(c)
        self._set_exporter(None, None)
        if self.rt is not None:
            self.rt.close()
        self.sel.close()
        self.loop.close()
        shutil.rmtree(self.rundir, ignore_errors=True)
        if pidfile:
            with contextlib.suppress(OSError, ValueError), open(pidfile) as f:
                if int(f.read().split()[0]) == os.getpid():
                    os.unlink(pidfile)

    def _install_signals(self) -> None:
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        for sig in _MASTER_SIGNALS:
            signal.signal(sig, lambda *_: None)  # the wakeup fd carries the signal number
        self.sel.register(self.wake_r, selectors.EVENT_READ, self._on_signals)

    def _on_signals(self) -> None:
        try:
            data = self.wake_r.recv(256)
        except BlockingIOError:
            return
        for signum in dict.fromkeys(data):  # each signal once per wake-up, in order
            if signum == signal.SIGCHLD:
                self._reap()
            elif signum in (signal.SIGUSR2, signal.SIGHUP):
                self.reload()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self.stop(signal.SIGTERM)
            elif signum == signal.SIGUSR1:
                self.stop(signal.SIGUSR1)
            elif signum in (signal.SIGTTOU, signal.SIGTTIN):
                self._broadcast(signal.Signals(signum), old=False)

    def _broadcast(self, sig: signal.Signals, old: bool | None) -> None:
        for w in list(self.workers.values()):
            if old is None or w.old == old:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, sig)

    def stop(self, sig: signal.Signals) -> None:
        if not self.stopping:
            log.warning("Exiting Master process...")
        self.stopping = True
        for s in self.cli:
            self._close_cli_socket(s)
        self.cli = []
        self._set_exporter(None, None)
        self._broadcast(sig, old=None)

    # -- workers ----------------------------------------------------------------------------
    def _current(self) -> list[Worker]:
        return sorted((w for w in self.workers.values() if not w.old), key=lambda w: w.num)

    def _spawn_generation(self) -> None:
        self.gen += 1
        count = max(1, self.config.global_.nbthread)
        for num in range(1, count + 1):
            self._spawn(num, count)

    def _spawn(self, num: int, count: int) -> None:
        assert self.rt is not None
        path = os.path.join(self.rundir, f"worker-{self.gen}-{num}.sock")
        config = _worker_config(self.config, num, count, path)
        socks = {listener_key(li): li.sock for li in self.rt.listeners if li.sock is not None}
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            code = 1
            try:
                os.close(r)
                self._in_child()
                code = run_worker(config, socks, w)
            except BaseException as exc:  # nothing may escape a forked child
                with contextlib.suppress(Exception):
                    log.alert(f"worker failed: {exc!r}")
            finally:
                os._exit(code)
        os.close(w)
        worker = Worker(pid, num, self.gen, path, r, time.time(), self.reloads)
        self.workers[pid] = worker
        self.sel.register(r, selectors.EVENT_READ, lambda: self._on_ready(worker))
        log.notice(f"New worker ({pid}) forked")

    def _in_child(self) -> None:
        """In a new worker: the master's signals, selector and sockets are not its own."""
        signal.set_wakeup_fd(-1)
        for sig in _MASTER_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for key in list(self.sel.get_map().values()):
            if isinstance(key.fileobj, int):
                with contextlib.suppress(OSError):
                    os.close(key.fileobj)
        with contextlib.suppress(OSError):
            os.close(self.sel.fileno())
        for s in self.cli:
            if s.sock is not None:
                s.sock.close()
        for c in self.clients.values():
            c.sock.close()
        for sock in [self.exporter, *self.scrapes.values()]:
            if sock is not None:
                sock.close()
        self.wake_r.close()
        self.wake_w.close()

    def _on_ready(self, w: Worker) -> None:
        try:
            data = os.read(w.ready_fd, 16)
        except OSError:
            data = b""
        self.sel.unregister(w.ready_fd)
        os.close(w.ready_fd)
        w.ready_fd = -1
        if not data:
            return  # the worker died before being ready: _reap() reports it
        w.ready = True
        current = self._current()
        if w.old or not all(x.ready for x in current):
            return
        log.notice("Loading success.")
        self._broadcast(signal.SIGUSR1, old=True)
        if not self.announced:
            self.announced = True
            for pid in self.args.finish:
                service._signal(pid, signal.SIGUSR1)
            for pid in self.args.terminate:
                service._signal(pid, signal.SIGTERM)
            extra = self.args.finish or self.args.terminate
            service._sd_notify(f"MAINPID={os.getpid()}\nREADY=1" if extra else "READY=1")
        else:
            service._sd_notify("READY=1")

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = self.workers.pop(pid, None)
            if w is None:
                continue
            if w.ready_fd >= 0:
                self.sel.unregister(w.ready_fd)
                os.close(w.ready_fd)
                w.ready_fd = -1
            code = os.waitstatus_to_exitcode(status)
            reason = "Exit"
            if code < 0:
                reason = signal.strsignal(-code) or "Signal"
                code = 128 - code
            text = f"worker ({pid}) exited with code {code} ({reason})"
            if w.old:
                log.warning(f"Former {text}")
            elif self.stopping:
                log.warning(f"Current {text}")
                self.exit_code = self.exit_code or code
            else:
                log.alert(f"Current {text}")
                log.alert("exit-on-failure: killing every processes with SIGTERM")
                self.exit_code = code or 1
                self.stop(signal.SIGTERM)

    # -- reload -----------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-reads the configuration, starts new workers, soft-stops the old ones."""
        if self.stopping:
            return
        log.notice("Reloading HAProxy")
        service._sd_notify("RELOADING=1")
        self.reloads += 1
        from nsproxy.cli import load

        config = load(self.args.files, self.args.quiet)
        rt: Runtime | None = None
        try:
            if config is None:
                raise StartError
            rt = self._open(config, self.rt)
            cli = self._open_cli(rt)
            try:
                exporter = self._exporter_for(config)
            except StartError:
                for s in cli:
                    if s not in self.cli:
                        self._close_cli_socket(s)
                raise
        except StartError:
            if rt is not None:
                self._release(rt, keep=self._held())
            self.failed_reloads += 1
            log.alert("Master failed to load the new configuration; the workers keep running.")
            service._sd_notify("READY=1")
            return
        old_rt, self.rt, self.config = self.rt, rt, config
        if old_rt is not None:
            self._release(old_rt, keep=self._held())
        for s in self.cli:
            if s not in cli:
                self._close_cli_socket(s)
        for s in cli:
            if s not in self.cli:
                self._watch_cli(s)
        self.cli = cli
        self._set_exporter(exporter, config)
        for w in self.workers.values():
            w.old = True
        self._spawn_generation()

    def _held(self) -> set[int]:
        rt = self.rt
        return {id(li.sock) for li in rt.listeners if li.sock is not None} if rt else set()

    # -- metrics ------------------------------------------------------------------------------
    def _exporter_for(self, config: Config) -> socket.socket | None:
        """The metrics endpoint's socket for `config`: the open one if its address is kept."""
        addr = config.global_.prometheus_exporter
        if addr is None or addr == self.exporter_addr:
            return self.exporter if addr is not None else None
        try:
            return metrics.open_socket(addr)
        except OSError as exc:
            log.alert(
                f"Starting prometheus-exporter: cannot bind socket ({exc.strerror}) for [{addr}]"
            )
            raise StartError from None

    def _set_exporter(self, sock: socket.socket | None, config: Config | None) -> None:
        if sock is self.exporter:
            return  # None, or the same socket already watched
        if self.exporter is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.exporter)
            self.exporter.close()
        self.exporter = sock
        self.exporter_addr = config.global_.prometheus_exporter if config and sock else None
        if sock is not None:
            self.sel.register(sock, selectors.EVENT_READ, self._on_scrape_accept)

    def _on_scrape_accept(self) -> None:
        if self.exporter is None:
            return
        try:
            sock, _ = self.exporter.accept()
        except OSError:
            return
        sock.setblocking(False)
        buf = bytearray()
        self.scrapes[sock.fileno()] = sock
        self.sel.register(sock, selectors.EVENT_READ, lambda: self._on_scrape(sock, buf))

    def _on_scrape(self, sock: socket.socket, buf: bytearray) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        buf += data
        reply = metrics.http_answer(bytes(buf), self._metrics) if data else b""
        if reply is None:
            return
        if reply:
            with contextlib.suppress(OSError):
                sock.settimeout(_QUERY_TIMEOUT)
                sock.sendall(reply)
        self.scrapes.pop(sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        sock.close()

    def _metrics(self) -> bytes:
        """Every current worker's counters, merged as one process's."""
        workers = self._current()
        texts = [t for w in workers if (t := _query(w.cli_path, "_metrics")) is not None]
        return metrics.merge(texts, len(workers))

    # -- runtime API --------------------------------------------------------------------------
    def _watch_cli(self, s: StatsSocket) -> None:
        if s.sock is not None:
            self.sel.register(s.sock, selectors.EVENT_READ, lambda: self._on_cli_accept(s))

    def _on_cli_accept(self, s: StatsSocket) -> None:
        if s.sock is None:
            return
        try:
            csock, _ = s.sock.accept()
        except OSError:
            return
        csock.setblocking(False)
        c = Client(csock, LEVEL_NAMES[s.cfg.level], s.cfg.expose_fd)
        self.clients[csock.fileno()] = c
        self.sel.register(csock, selectors.EVENT_READ, lambda: self._on_client(c))

    def _drop_client(self, c: Client) -> None:
        self.clients.pop(c.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(c.sock)
        c.sock.close()

    def _on_client(self, c: Client) -> None:
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        lines: list[str] = []
        if data:
            c.inbuf += data
            while b"\n" in c.inbuf:
                raw, _, rest = bytes(c.inbuf).partition(b"\n")
                c.inbuf = bytearray(rest)
                lines.append(raw.decode("utf-8", "replace").rstrip("\r"))
        elif c.inbuf.strip():
            lines.append(c.inbuf.decode("utf-8", "replace"))
            c.inbuf.clear()
        out = bytearray()
        done = not data
        for line in lines:
            out += self._run_line(c, line).encode()
            if not c.prompt or c.end:
                done = True
                break
            out += b"> "
        if out:
            try:
                c.sock.settimeout(_QUERY_TIMEOUT)
                c.sock.sendall(out)
                c.sock.setblocking(False)
            except OSError:
                done = True
        if done:
            self._drop_client(c)

    def _run_line(self, c: Client, line: str) -> str:
        out = []
        for text in split_commands(line):
            if c.end:
                break
            answer = self._command(c, text)
            if c.end and not answer:
                break
            out.append(answer + "\n")
        return "".join(out)

    def _command(self, c: Client, text: str) -> str:
        words = split_words(text)
        if not words:
            return ""
        first = words[0]
        if first == "prompt":
            c.prompt = not c.prompt
            return ""
        if first in ("quit", "exit"):
            c.end = True
            return ""
        if first in ("user", "operator") and len(words) == 1:
            if c.level < LEVEL_NAMES[first]:
                return PERMISSION_DENIED
            c.level = LEVEL_NAMES[first]
            return ""
        if words == ["show", "cli", "level"]:
            return next(n for n, v in LEVEL_NAMES.items() if v == c.level) + "\n"
        if first == "_getsocks":
            c.end = True
            if c.expose_fd and self.rt is not None:
                try:
                    c.sock.setblocking(True)
                    send_listeners(self.rt, c.sock)
                except OSError as exc:
                    log.warning(f"Failed to transfer sockets: {exc.strerror}")
            return ""
        if first.startswith("@"):
            return self._routed(c, first[1:], text.lstrip()[len(first) :].lstrip())
        if words[:2] == ["show", "proc"]:
            return self._show_proc()
        if first == "reload":
            if c.level < ADMIN:
                return PERMISSION_DENIED
            self.reload()
            return ""
        workers = self._current()
        answers = self._ask(c, workers, text)
        if not answers:
            return "No worker answered.\n"
        if words[:2] == ["show", "info"]:
            return _merge_info(answers, os.getpid(), len(workers))
        if words[:2] == ["show", "stat"]:
            return _merge_stat(answers)
        if words[:2] == ["show", "netns"]:
            return _merge_netns(answers)
        if words[:2] == ["show", "sess"]:
            return "".join(answers)
        if first == "help":
            return answers[0] + _MASTER_HELP
        return answers[0]

    def _routed(self, c: Client, target: str, text: str) -> str:
        """HAProxy's master CLI prefixes: `@master`, `@N` (current worker N), `@!PID`."""
        if target == "master":
            return self._command(c, text) if text.split()[:2] == ["show", "proc"] else ""
        found: Worker | None = None
        if target.startswith("!") and target[1:].isdigit():
            found = self.workers.get(int(target[1:]))
        elif target.isdigit():
            found = next((w for w in self._current() if w.num == int(target)), None)
        if found is None:
            return "Can't find the target process, please verify the PID or the relative number\n"
        answers = self._ask(c, [found], text)
        return answers[0] if answers else ""

    def _ask(self, c: Client, workers: list[Worker], text: str) -> list[str]:
        """Runs one command on each worker at the client's level; their answers, in order."""
        prefix = "" if c.level == ADMIN else ("operator; " if c.level == OPERATOR else "user; ")
        answers = []
        for w in workers:
            got = _query(w.cli_path, prefix + text)
            if got is None:
                continue
            if prefix:
                got = got[1:]  # the empty answer of the level command
            answers.append(got[:-1] if got.endswith("\n") else got)
        return answers

    def _show_proc(self) -> str:
        now = time.time()
        head = f"{'#<PID>':<15} {'<type>':<15} {'<reloads>':<15} {'<uptime>':<15} <version>\n"
        failed = f"{self.reloads} [failed: {self.failed_reloads}]"
        lines = [head, f"{os.getpid():<15} {'master':<15} {failed:<15} "]
        lines.append(f"{_uptime(now - self.started):<15} {__version__}\n# workers\n")
        current = self._current()
        for w in current:
            lines.append(_proc_line(w, self.reloads - w.reloads, now))
        lines.append("# old workers\n")
        for w in sorted(self.workers.values(), key=lambda w: w.pid):
            if w.old:
                lines.append(_proc_line(w, self.reloads - w.reloads, now))
        return "".join(lines)


_MASTER_HELP = (
    f"  {'@<relative pid>':<40}: send a command to the <relative pid> process\n"
    f"  {'@!<pid>':<40}: send a command to the <pid> process\n"
    f"  {'@master':<40}: send a command to the master process\n"
    f"  {'show proc':<40}: show the list of processes\n"
    f"  {'reload':<40}: reload the configuration (new workers, old ones finish)\n"
)


def _uptime(sec: float) -> str:
    s = int(sec)
    return f"{s // 86400}d{s % 86400 // 3600:02d}h{s % 3600 // 60:02d}m{s % 60:02d}s"


def _proc_line(w: Worker, reloads: int, now: float) -> str:
    return (
        f"{w.pid:<15} {'worker':<15} {reloads:<15} {_uptime(now - w.started):<15} {__version__}\n"
    )


def _query(path: str, text: str) -> str | None:
    """One command on a worker's private runtime API socket; None if it does not answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(_QUERY_TIMEOUT)
            s.connect(path)
            s.sendall(text.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError:
        return None
    return b"".join(chunks).decode("utf-8", "replace")


def _num(v: str) -> int | None:
    return int(v) if v.lstrip("-").isdigit() else None


def _merge_info(answers: list[str], pid: int, count: int) -> str:
    """`show info` of the whole: counters summed, the rest from worker 1."""
    fields: list[tuple[str, str]] = []
    sums: dict[str, int] = {}
    for n, answer in enumerate(answers):
        for line in answer.splitlines():
            key, sep, value = line.partition(": ")
            if not sep:
                continue
            if n == 0:
                fields.append((key, value))
            v = _num(value)
            if key in _SUM_INFO and v is not None:
                sums[key] = sums.get(key, 0) + v
    listeners = next((_num(v) or 0 for k, v in fields if k == "Listeners"), 0)
    if "Jobs" in sums:  # every worker counts the shared listeners once
        sums["Jobs"] -= listeners * (len(answers) - 1)
    fixed = {"Nbthread": str(count), "Pid": str(pid)}
    out = []
    for key, value in fields:
        value = fixed.get(key, str(sums[key]) if key in sums else value)
        out.append(f"{key}: {value}\n")
    return "".join(out)


def _merge_stat(answers: list[str]) -> str:
    """CSV `show stat`: rows matched on pxname/svname, the counter columns added up."""
    sep, k1, k2 = ",", "pxname", "svname"
    header = answers[0].splitlines()[0] if answers[0] else ""
    columns = header.lstrip("# ").split(sep)
    i1, i2 = columns.index(k1), columns.index(k2)
    rows: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str]] = []
    for answer in answers:
        for line in answer.splitlines()[1:]:
            cells = line.split(sep)
            if len(cells) < len(columns):
                continue
            key = (cells[i1], cells[i2])
            have = rows.get(key)
            if have is None:
                rows[key] = cells
                order.append(key)
                continue
            for i, col in enumerate(columns):
                a, b = _num(have[i]), _num(cells[i])
                if col in _SUM_STAT and a is not None and b is not None:
                    have[i] = str(a + b)
    return "\n".join([header, *(sep.join(rows[k]) for k in order)]) + "\n"


def _merge_netns(answers: list[str]) -> str:
    """`show netns`: counters summed per namespace name (not its inode, listeners, servers)."""
    header = answers[0].splitlines()[0]
    summed = [i for i, col in enumerate(header.lstrip("# ").split()) if col not in _SAME_NETNS]
    rows: dict[str, list[str]] = {}
    for answer in answers:
        for line in answer.splitlines()[1:]:
            cells = line.split()
            have = rows.setdefault(cells[0], cells)
            if have is not cells:
                for i in summed:
                    a, b = _num(have[i]), _num(cells[i])
                    if a is not None and b is not None:
                        have[i] = str(a + b)
    return "\n".join([header, *(" ".join(r) for r in rows.values())]) + "\n"


def run_master(config: Config, args: argparse.Namespace) -> int:
    """Runs the master until it and its workers have stopped; returns the exit status."""
    return Master(config, args).run()


__all__ = ["is_master_worker", "run_master", "run_worker"]
