"""A place in the configuration, for messages: 'file:line'."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Where:
    """A place in the configuration, for messages: 'file:line'."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"
