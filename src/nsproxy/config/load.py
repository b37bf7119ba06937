"""Loading a configuration: parse the files and directories given, report every message."""

from __future__ import annotations

from nsproxy.config.keywords.stick import LOCALPEER, LOCALPEER_CMDLINE
from nsproxy.config.model import Config
from nsproxy.config.parser import expand_paths, parse_files
from nsproxy.ops import log


def load(files: list[str], quiet: bool = False, localpeer: str | None = None) -> Config | None:
    """The model of `files` (directories: their `*.cfg`), or None once the errors are logged.

    Warnings and alerts are written as HAProxy writes them; `quiet` drops the warnings.
    `localpeer`: -L, the local peer name that `localpeer` in the files cannot override.
    """
    presets = {LOCALPEER_CMDLINE: localpeer, LOCALPEER: localpeer} if localpeer else None
    config, state = parse_files(files, presets=presets)
    if not quiet:
        for w in state.warnings:
            log.warning(w if w.startswith("config :") else f"config : {w}")
    for e in state.errors:
        log.alert(e if e.startswith("config :") else f"config : {e}")
    if config is None:
        for path in expand_paths(files):
            # "Parsing [file:line]: ..." comes from the configuration check, after the files
            if any(f"[{path}:" in e and not e.startswith("Parsing [") for e in state.errors):
                log.alert(f"config : Error(s) found in configuration file : {path}")
        log.alert("config : Fatal errors found in configuration.")
    return config


__all__ = ["load"]
