"""Configuration text in, frozen model (or HAProxy-style messages) out: for keyword table tests."""

from __future__ import annotations

from nsproxy.config.lexer import split_line
from nsproxy.config.model import Config, Where
from nsproxy.config.parser import ParseState, parse_lines
from nsproxy.netns import NETNS_RUN_DIR


def parse_text(text: str, netns_dir: str = NETNS_RUN_DIR) -> tuple[Config | None, ParseState]:
    """Parses `text` as the file `t.cfg`; `netns_dir` stands for /var/run/netns."""
    lines = []
    for n, line in enumerate(text.splitlines(), start=1):
        words = split_line(line, {})
        if words:
            lines.append((Where("t.cfg", n), words))
    return parse_lines(lines, ParseState(netns_dir=netns_dir))


def model(text: str, netns_dir: str = NETNS_RUN_DIR) -> Config:
    """The model of a configuration that must parse without error."""
    config, state = parse_text(text, netns_dir)
    assert config is not None, state.errors
    return config


def errors(text: str, netns_dir: str = NETNS_RUN_DIR) -> list[str]:
    """The errors of a configuration that must fail."""
    config, state = parse_text(text, netns_dir)
    assert config is None, "expected errors"
    return state.errors
