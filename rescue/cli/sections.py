"""Extra sections of `rescue inspect` (BCD, registry, space), each from its own layer.

A section that cannot be read becomes an "error" entry in its section, never a failed inspect:
a missing or unreadable fact is "unknown" (issue 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from rescue.errors import RescueError


@dataclass
class Section:
    key: str                      # JSON key
    title: str
    data: dict
    findings: list[str] = field(default_factory=list)
    render: Callable[[], None] = lambda: None


def collect(target) -> list[Section]:
    sections: list[Section] = []
    for key, provider in _providers():
        try:
            s = provider(target)
        except RescueError as exc:
            s = _error_section(key, str(exc))
        if s is not None:
            sections.append(s)
    return sections


def _error_section(key: str, message: str) -> Section:
    from rescue.cli.common import out

    return Section(key=key, title=key, data={"error": message},
                   render=lambda: out.print(f"[bold]{key}[/bold]: [yellow]{message}[/yellow]"))


def _providers():
    return []
