"""The process's stick tables at run time: built once from the configuration, expired on the
clock, shared with the live `peers` sections."""

from __future__ import annotations

import asyncio

from nsproxy.config.model import Config
from nsproxy.runtime.clock import Clock, Timer
from nsproxy.runtime.peers import PeersSection, StopHolder
from nsproxy.stick.from_config import config_tables, make_tables
from nsproxy.stick.table import StickTable


class StickTables:
    """Every stick table of the configuration by name, in declaration order, and the peers
    sections that share them. Time is the clock's, in integer milliseconds."""

    def __init__(self, config: Config, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.tables: dict[str, StickTable] = {t.name: t for t in make_tables(config_tables(config))}
        self.sections: list[PeersSection] = []
        self.old_processes = 0  # -sf/-st pids: a new process then waits for their lesson
        self._timers: dict[str, Timer] = {}
        self._running = False
        self._opened = False

    def now_ms(self) -> int:
        """The tables' time: the clock's, in milliseconds."""
        return int(self.clock.time() * 1000)

    def open_peers(self, loop: asyncio.AbstractEventLoop, holder: StopHolder) -> bool:
        """Builds the peers sections that have a local peer and binds their listeners (before
        privileges are dropped); False once a bind failure is logged."""
        if self._opened:
            return True
        self._opened = True
        ok = True
        for cfg in self.config.global_.peers:
            if cfg.disabled or cfg.local is None:
                continue
            shared = [t for t in self.tables.values() if t.peers == cfg.name]
            section = PeersSection(cfg, shared, loop, self.clock, holder, self.old_processes)
            self.sections.append(section)
            ok = section.open() and ok
        return ok

    def start(self, loop: asyncio.AbstractEventLoop, holder: StopHolder) -> None:
        """Arms the expiry timers and starts the peers sections."""
        self._running = True
        for t in self.tables.values():
            if t.expire_ms:
                self._expire(t)
        self.open_peers(loop, holder)
        for section in self.sections:
            section.old_processes = self.old_processes
            section.start()

    def _expire(self, t: StickTable) -> None:
        """process_table_expire(): frees what expired, then waits for the next date (or one
        `expire` period when the table is empty: nothing created later expires sooner)."""
        if not self._running:
            return
        now = self.now_ms()
        nxt = t.expire_entries(now)
        when = nxt if nxt is not None else now + t.expire_ms
        self._timers[t.name] = self.clock.call_at(
            (max(when, now) + 1) / 1000, lambda: self._expire(t)
        )

    def soft_stop(self) -> None:
        """The process stops accepting: peers sections teach their successor, then let go."""
        for s in self.sections:
            s.soft_stop()

    def close(self) -> None:
        self._running = False
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for s in self.sections:
            s.close()


__all__ = ["StickTables"]
