"""Log lines in HAProxy's formats (tcplog, error lines) and where they go (stdout, syslog)."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from nsproxy.config.model import LogTarget

_FACILITY_NAMES = (
    "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 "
    "local0 local1 local2 local3 local4 local5 local6 local7"
)
FACILITIES = {name: i for i, name in enumerate(_FACILITY_NAMES.split())}
LEVELS = {
    n: i
    for i, n in enumerate(["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"])
}
LOG_ERR = 3
LOG_WARNING = 4
LOG_INFO = 6
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def addr_text(addr: object) -> tuple[str, str]:
    """(%ci, %cp)-style text for a socket address; UNIX sockets print as 'unix' and '-'."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        return str(addr[0]), str(addr[1])
    return "unix", "-"


@dataclass(slots=True)
class Sink:
    """One open log destination."""

    target: LogTarget
    sock: socket.socket | None = None
    dest: tuple[str, int] | str | None = None
    fd: int = -1  # stdout or stderr: lines go out with one write(2) each, unbuffered
    max_level: int = 7
    min_level: int = 0
    pri: int = 0

    def open(self) -> None:
        t = self.target
        self.max_level, self.min_level = LEVELS[t.level], LEVELS[t.min_level]
        self.pri = FACILITIES[t.facility] * 8
        if t.udp is None and not t.target.startswith("/"):
            self.fd = 2 if t.target == "stderr" else 1
        if t.udp is not None:
            self.sock = socket.socket(t.udp.family, socket.SOCK_DGRAM)
            self.sock.setblocking(False)
            self.dest = t.udp.sockaddr()
        elif t.target.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.setblocking(False)
            self.dest = t.target

    def emit(self, level: int, msg: str, tag: str, host: str | None = None) -> None:
        """One line at `level`; `host` is the `log-send-hostname` name (None: not sent)."""
        if level > self.max_level or level < self.min_level:
            return
        t = self.target
        pri = self.pri + level
        if t.format == "raw":
            line = msg
        elif t.format == "short":
            line = f"<{pri}>{msg}"
        elif t.format == "rfc5424":
            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
            usec = int((now % 1) * 1_000_000)
            # HAProxy sends "-" as the hostname unless `log-send-hostname` is set.
            name = host or "-"
            line = f"<{pri}>1 {stamp}.{usec:06d}{_tz()} {name} {tag} {os.getpid()} - - {msg}"
        else:
            tm = time.localtime()
            stamp = f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {time.strftime('%H:%M:%S', tm)}"
            name = f"{host} " if host else ""
            line = f"<{pri}>{stamp} {name}{tag}[{os.getpid()}]: {msg}"
        # bytes that are not UTF-8 (a namespace's name) go out as they came, as in HAProxy
        data = (line + "\n").encode("utf-8", "surrogateescape")
        if self.sock is None:
            if self.fd >= 0:
                with contextlib.suppress(OSError):
                    os.write(self.fd, data)  # as HAProxy: a line that cannot go is dropped
            return
        try:
            assert self.dest is not None
            self.sock.sendto(data, self.dest)
        except OSError:
            pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _tz() -> str:
    off = -time.timezone if not time.localtime().tm_isdst else -time.altzone
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"


@dataclass(slots=True)
class Logger:
    """A proxy's log destinations; empty means no traffic logs."""

    sinks: list[Sink] = field(default_factory=list)
    tag: str = "haproxy"
    host: str | None = None  # `log-send-hostname`

    @classmethod
    def build(
        cls,
        targets: Sequence[LogTarget],
        tag: str,
        cache: dict[LogTarget, Sink],
        host: str | None = None,
    ) -> Logger:
        sinks = []
        for t in targets:
            sink = cache.get(t)
            if sink is None:
                sink = cache[t] = Sink(t)
                sink.open()
            sinks.append(sink)
        return cls(sinks, tag, host)

    def __bool__(self) -> bool:
        return bool(self.sinks)

    def emit(self, level: int, msg: str) -> None:
        for sink in self.sinks:
            sink.emit(level, msg, self.tag, self.host)


# how many messages of each kind went to stderr ("Warnings were found." after `-c`)
console_counts: dict[str, int] = {}


def alert(msg: str) -> None:
    _console("ALERT", msg)


def warning(msg: str) -> None:
    _console("WARNING", msg)


def notice(msg: str) -> None:
    _console("NOTICE", msg)


def _console(kind: str, msg: str) -> None:
    """HAProxy's stderr messages: '[ALERT]    (1234) : msg'."""
    console_counts[kind] = console_counts.get(kind, 0) + 1
    label = f"[{kind}]".ljust(10)
    try:
        sys.stderr.write(f"{label} ({os.getpid()}) : {msg}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
