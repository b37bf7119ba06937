"""The master process: listening sockets, worker generations, reloads and signals."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import selectors
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable

from nsproxy.config.load import load
from nsproxy.config.model import Config
from nsproxy.netns import NetnsError
from nsproxy.ops import lifecycle, log
from nsproxy.ops.fd_transfer import addr_key
from nsproxy.ops.master.cli import MasterCli
from nsproxy.ops.master.master_socket import MasterCliError, MasterSocketCli, parse_master_bind
from nsproxy.ops.master.metrics import MasterMetrics
from nsproxy.ops.master.workers import Worker, fork_worker, worker_config
from nsproxy.ops.stats_socket import StatsSocket
from nsproxy.runtime.listener import Listener
from nsproxy.runtime.process import Runtime, listener_key

MASTER_SIGNALS = (
    signal.SIGCHLD,
    signal.SIGUSR2,
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGUSR1,
    signal.SIGTTOU,
    signal.SIGTTIN,
)


def is_master_worker(config: Config, args: argparse.Namespace) -> bool:
    """-W/-Ws, `master-worker`, or `nbthread` above 1 (run as that many worker processes)."""
    g = config.global_
    return bool(args.master_worker or g.master_worker or g.nbthread > 1)


class StartError(Exception):
    """A configuration the master could not open listeners or sockets for."""


def _sockets_key(li: Listener) -> tuple[object, ...] | None:
    key = addr_key(li.addr.family, li.addr.sockaddr())
    return None if key is None else (li.netns.name if li.netns else "", li.addr.family, *key)


class Master:
    """The master process: listeners, workers, reloads, signals; its CLI and metrics."""

    def __init__(self, config: Config, args: argparse.Namespace) -> None:
        self.config = config
        self.args = args
        self.loop = asyncio.new_event_loop()  # only held by the socket-owning Runtimes
        self.rt: Runtime | None = None
        self.workers: dict[int, Worker] = {}
        self.sel = selectors.DefaultSelector()
        self.cli = MasterCli(self)
        self.master_cli = MasterSocketCli(self, ())
        self.metrics = MasterMetrics(self.sel, self.current)
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
            inherited = lifecycle.inherited_sockets(rt, self.args)
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

    def _open_ops(
        self, rt: Runtime, config: Config
    ) -> tuple[list[StatsSocket], socket.socket | None]:
        """The stats sockets and metrics socket of `config` (kept ones reused)."""
        try:
            cli = self.cli.open_sockets(rt)
        except OSError:
            raise StartError from None
        try:
            self.master_cli.use(self.master_cli.open_sockets(rt), rt)
        except OSError:
            for s in cli:
                if s not in self.cli.sockets:
                    self.cli.close_socket(s)
            raise StartError from None
        try:
            return cli, self.metrics.socket_for(config)
        except OSError:
            for s in cli:
                if s not in self.cli.sockets:
                    self.cli.close_socket(s)
            raise StartError from None

    # -- running ----------------------------------------------------------------------------
    def run(self) -> int:
        try:
            binds = getattr(self.args, "master_cli", None) or ()
            self.master_cli.binds = tuple(parse_master_bind(b) for b in binds)
        except MasterCliError as exc:
            log.alert(str(exc))
            return 1
        try:
            self.rt = self._open(self.config, None)
            cli, exporter = self._open_ops(self.rt, self.config)
        except StartError:
            log.alert("[nsproxy.main()] Some protocols failed to start their listeners! Exiting.")
            if self.rt is not None:
                self.rt.close()
            shutil.rmtree(self.rundir, ignore_errors=True)
            return 1
        if lifecycle.wants_daemon(self.config, self.args):
            lifecycle.daemonize()
        pidfile = lifecycle.pidfile_path(self.config, self.args)
        if pidfile:
            lifecycle.write_pidfile(pidfile)
        lifecycle.notify_connect()
        self._install_signals()
        self.cli.use(cli, self.rt)
        self.metrics.use(exporter, self.config)
        self._spawn_generation()
        try:
            while self.workers or not self.stopping:
                for key, _ in self.sel.select(self._timeout()):
                    cb: Callable[[], None] = key.data
                    cb()
                self.cli.step()
                self.master_cli.step()
        finally:
            self._shutdown(pidfile)
        log.warning(f"All workers exited. Exiting... ({self.exit_code})")
        return self.exit_code

    def _timeout(self) -> float | None:
        waits = [t for t in (self.cli.timeout(), self.master_cli.timeout()) if t is not None]
        return min(waits) if waits else None

    def _shutdown(self, pidfile: str | None) -> None:
        self.cli.close(clients=True)
        self.master_cli.close(clients=True)
        self.metrics.use(None, None)
        if self.rt is not None:
            self.rt.close()
        self.sel.close()
        self.loop.close()
        shutil.rmtree(self.rundir, ignore_errors=True)
        if pidfile:
            lifecycle.remove_pidfile(pidfile)

    def _install_signals(self) -> None:
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        for sig in MASTER_SIGNALS:
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
        self.cli.close(clients=False)
        self.master_cli.close(clients=False)
        self.metrics.use(None, None)
        self._broadcast(sig, old=None)

    # -- workers ----------------------------------------------------------------------------
    def current(self) -> list[Worker]:
        """The workers of the current generation, by relative number."""
        return sorted((w for w in self.workers.values() if not w.old), key=lambda w: w.num)

    def _spawn_generation(self) -> None:
        self.gen += 1
        count = max(1, self.config.global_.nbthread)
        for num in range(1, count + 1):
            self._spawn(num, count)

    def _spawn(self, num: int, count: int) -> None:
        assert self.rt is not None
        path = os.path.join(self.rundir, f"worker-{self.gen}-{num}.sock")
        config = worker_config(self.config, count, path)
        socks = {listener_key(li): li.sock for li in self.rt.listeners if li.sock is not None}
        pid, r = fork_worker(config, socks, self._in_child)
        worker = Worker(pid, num, self.gen, path, r, time.time(), self.reloads)
        self.workers[pid] = worker
        self.sel.register(r, selectors.EVENT_READ, lambda: self._on_ready(worker))
        log.notice(f"New worker ({pid}) forked")

    def _in_child(self) -> None:
        """In a new worker: the master's signals, selector and sockets are not its own."""
        signal.set_wakeup_fd(-1)
        for sig in MASTER_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        for key in list(self.sel.get_map().values()):
            if isinstance(key.fileobj, int):
                with contextlib.suppress(OSError):
                    os.close(key.fileobj)
        with contextlib.suppress(OSError):
            os.close(self.sel.fileno())
        self.cli.close_in_child()
        self.master_cli.close_in_child()
        self.metrics.close_in_child()
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
        if w.old or not all(x.ready for x in self.current()):
            return
        log.notice("Loading success.")
        self._broadcast(signal.SIGUSR1, old=True)
        if not self.announced:
            self.announced = True
            lifecycle.take_over(self.args)
            lifecycle.sd_notify(lifecycle.ready_state(self.args))
        else:
            lifecycle.sd_notify("READY=1")

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
        lifecycle.sd_notify("RELOADING=1")
        self.reloads += 1
        config = load(self.args.files, self.args.quiet, self.args.localpeer)
        rt: Runtime | None = None
        try:
            if config is None:
                raise StartError
            rt = self._open(config, self.rt)
            cli, exporter = self._open_ops(rt, config)
        except StartError:
            if rt is not None:
                self._release(rt, keep=self._held())
            self.failed_reloads += 1
            log.alert("Master failed to load the new configuration; the workers keep running.")
            lifecycle.sd_notify("READY=1")
            return
        old_rt, self.rt, self.config = self.rt, rt, config
        if old_rt is not None:
            self._release(old_rt, keep=self._held())
        self.cli.use(cli, rt)
        self.metrics.use(exporter, config)
        for w in self.workers.values():
            w.old = True
        self._spawn_generation()

    def _held(self) -> set[int]:
        rt = self.rt
        return {id(li.sock) for li in rt.listeners if li.sock is not None} if rt else set()


def run_master(config: Config, args: argparse.Namespace) -> int:
    """Runs the master until it and its workers have stopped; returns the exit status."""
    return Master(config, args).run()


__all__ = ["Master", "is_master_worker", "run_master"]
