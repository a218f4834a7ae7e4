"""Extra sections of `rescue inspect` (BCD, registry, space), each from its own layer.

A section that cannot be read becomes an "error" entry in its section, never a failed inspect:
a missing or unreadable fact is "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from rescue.errors import RescueError

if TYPE_CHECKING:
    from rescue.target import Target


@dataclass
class Section:
    key: str                      # JSON key
    title: str
    data: dict
    findings: list[str] = field(default_factory=list)
    render: Callable[[], None] = lambda: None


def collect(target: Target) -> list[Section]:
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


def _bcd_section(target: Target) -> Section | None:
    """Issue 4 item 3: store path, default loader, bad-memory list, EMS state, EMS port/baud."""
    from rescue.bcd.model import BcdStore
    from rescue.bcd.summary import summarize
    from rescue.bcd.store import host_copy, store_ref
    from rescue.cli.common import out

    if target.layout is None or target.layout.bcd is None:
        return None
    ref = store_ref(target, None)
    summary = summarize(BcdStore.open(host_copy(target, ref, False), name=ref.path), label=ref.path)
    findings = []
    if summary.has_badmemory:
        findings.append(f"BCD bad-memory list marks {len(summary.badmemory_pages)} page(s) as unusable "
                        f"({', '.join(summary.badmemory_holders)})")

    def onoff(v):
        return "unset (off)" if v is None else ("on" if v else "off")

    def render() -> None:
        from rich.markup import escape

        out.print(f"[bold]BCD[/bold]         default loader {summary.default_id or 'none'}"
                  f"{' (' + escape(summary.default_description) + ')' if summary.default_description else ''}")
        bad = (f"[yellow]{len(summary.badmemory_pages)} page(s)[/yellow]" if summary.has_badmemory else "none")
        out.print(f"            bad-memory list: {bad}; EMS of default loader: {onoff(summary.ems_default_loader)}; "
                  f"boot manager EMS: {onoff(summary.bootems_bootmgr)}; EMS port "
                  f"{summary.ems_port if summary.ems_port is not None else 'unset'}, baud rate "
                  f"{summary.ems_baudrate if summary.ems_baudrate is not None else 'unset'}")

    return Section(key="bcd_summary", title="BCD", data=summary.to_json(), findings=findings, render=render)


def _registry_section(target: Target) -> Section | None:
    from rescue.cli.reg_cmd import inspect_section

    return inspect_section(target)


def _space_section(target: Target) -> Section | None:
    from rescue.cli.space_cmd import inspect_section

    return inspect_section(target)


def _providers():
    return [("bcd_summary", _bcd_section), ("registry", _registry_section), ("space", _space_section)]
