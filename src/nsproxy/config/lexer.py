"""Splits HAProxy configuration lines into words (placeholder until the real lexer lands)."""

from __future__ import annotations

from collections.abc import Mapping


class LexError(ValueError):
    """A line that cannot be split into words."""


def split_line(text: str, env: Mapping[str, str]) -> list[str]:
    words = text.split("#", 1)[0].split()
    return words
