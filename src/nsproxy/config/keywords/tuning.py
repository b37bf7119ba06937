"""Tuning keywords nsproxy accepts and checks as HAProxy does, without effect in its process
model: `cpu-map` (worker processes are not pinned) and `fullconn` (only `minconn` servers,
which nsproxy does not have, use it)."""

from __future__ import annotations

import re

from nsproxy.config.registry import KEYWORDS, ConfigError, Ctx

_SET = re.compile(r"(all|odd|even|\d+(-\d*)?|-\d+)")
_CPUS = re.compile(r"\d+(-\d+)?")


@KEYWORDS.register("cpu-map", "global")
def _cpu_map(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 3:
        raise ConfigError(
            "cpu-map expects a process number  ('all', 'odd', 'even', a number from 1 to 64 or "
            "a range),  followed by a list of CPU ranges with numbers from 0 to 63."
        )
    sets = args[1].removeprefix("auto:")
    for part in sets.split("/", 1):
        if not _SET.fullmatch(part):
            raise ConfigError(f"cpu-map : '{args[1]}' is not a valid number/range.")
    for cpus in args[2:]:
        for r in cpus.split(","):
            if not _CPUS.fullmatch(r):
                raise ConfigError(f"cpu-map : '{cpus}' is not a CPU range.")


@KEYWORDS.register("fullconn", "defaults", "backend", "listen", frontend=False)
def _fullconn(ctx: Ctx, args: list[str]) -> None:
    if len(args) < 2:
        raise ConfigError("'fullconn' expects an integer argument.")
    if len(args) > 2:
        raise ConfigError(f"'fullconn' cannot handle unexpected argument '{args[2]}'.")
    digits = re.match(r"[+-]?\d*", args[1])
    ctx.section.fields["fullconn"] = int(digits.group(0)) if digits and digits.group(0) else 0
