"""Output of the registry commands: reg.exe's text for `reg query`, readable listings for the page
file and crash dump settings, and JSON with stable keys.

`reg query` text is reg.exe's, byte for byte apart from line ends (LF here; reg.exe writes CRLF):
a blank line; then, for a key with values, its full name, one line per value
("    NAME    TYPE    DATA", "(Default)" for the unnamed value) and a blank line; then each subkey's
full name on its own line. `/s` prints every key below as its own block; `/v` prints just that value
(with `/s`: every key holding it and "End of search: N match(es) found.").
(Wine's programs/reg/tests/query.c records these layouts as Windows prints them.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rescue.hive import values as V
from rescue.hive.hive import RegValue
from rescue.registry.paths import control_set_key
from rescue.registry.regops import KeyListing, reg_text
from rescue.units import format_bytes

if TYPE_CHECKING:   # only named in annotations: `reg query` need not load the page file and dump models
    from rescue.registry.crashdump import CrashDumpReport, DumpSpaceCheck
    from rescue.registry.pagefile import FoundPagefile, PagefileLocation, PagefileReport, PagefileSettings
    from rescue.registry.paths import KeyLocation

INDENT = "    "


def value_line(v: RegValue | None) -> str:
    if v is None:
        return f"{INDENT}(Default){INDENT}REG_SZ{INDENT}(value not set)"
    return f"{INDENT}{v.name or '(Default)'}{INDENT}{V.type_name(v.type)}{INDENT}{reg_text(v.type, v.data)}"


def query_text(listings: Sequence[KeyListing], *, recurse: bool = False) -> str:
    """`reg query KEY [/s]`."""
    lines = [""]
    for i, k in enumerate(listings):
        # reg.exe names the queried key only when it has values; keys reached by /s always.
        if k.values or (recurse and i > 0):
            lines.append(k.display)
            lines.extend(value_line(v) for v in k.values)
            lines.append("")
        if not recurse:
            lines.extend(f"{k.display}\\{s}" for s in k.subkeys)
    return "\n".join(lines) + "\n"


def query_value_text(pairs: Sequence[tuple[KeyListing, RegValue | None]], *, recurse: bool = False) -> str:
    """`reg query KEY /v NAME` or `/ve` (with `/s`: the search and its count)."""
    lines = [""]
    for k, v in pairs:
        lines += [k.display, value_line(v), ""]
    if recurse:
        lines.append(f"End of search: {len(pairs)} match(es) found.")
    return "\n".join(lines) + "\n"


def value_json(v: RegValue) -> dict:
    decoded = v.value
    return {"name": v.name, "type": V.type_name(v.type), "type_code": v.type, "size": len(v.data),
            "data": reg_text(v.type, v.data),
            "value": decoded.hex() if isinstance(decoded, (bytes, bytearray)) else decoded,
            "data_hex": v.data.hex()}


def query_json(location: KeyLocation, resolved_path: str, control_set: int | None, listings: Sequence[KeyListing],
               *, value: str | None = None, pairs=None) -> dict:
    keys = listings if pairs is None else [k for k, _ in pairs]
    listed = []
    for i, k in enumerate(keys):
        vals = k.values if pairs is None else tuple(x for x in [pairs[i][1]] if x is not None)
        listed.append({"key": k.display, "path": k.path, "values": [value_json(v) for v in vals],
                       "subkeys": list(k.subkeys)})
    return {"key": location.spec.display, "hive": location.hive_name, "file": location.ref.to_json(),
            "path": resolved_path, "control_set": control_set, "value": value, "keys": listed}


# --- page file -------------------------------------------------------------------------------------
def _val(type_: int | None, items: Sequence[str]) -> str:
    if type_ is None:
        return "not set"
    return f"{V.type_name(type_)}  " + ("\\0".join(items) if items else "(empty)")


def pagefile_settings_lines(s: PagefileSettings, *, current: bool) -> list[str]:
    head = control_set_key(s.control_set) + (" (current)" if current else "")
    if not s.exists:
        return [head, "  Memory Management key missing"]
    lines = [head, f"  PagingFiles        {_val(s.paging_files_type, [p.raw for p in s.paging_files])}"]
    lines += [f"    {p.raw}: {p.describe()}" for p in s.paging_files]
    lines.append(f"  ExistingPageFiles  {_val(s.existing_page_files_type, list(s.existing_page_files))}")
    lines.append(f"  TempPageFile       {'not set' if s.temp_page_file is None else s.temp_page_file}")
    lines.append(f"  ClearPageFileAtShutdown {'not set' if s.clear_at_shutdown is None else s.clear_at_shutdown}")
    return lines


def pagefile_lines(report: PagefileReport) -> list[str]:
    """The settings of every control set, current first marked; the exact listing the tests pin."""
    if report.current is None:
        lines = ["Current control set: unknown (" + "; ".join(report.notes) + ")"]
    else:
        lines = [f"Current control set: {control_set_key(report.current)} (Select\\Current = {report.current})"]
    for s in report.sets:
        lines += pagefile_settings_lines(s, current=s.control_set == report.current)
    return lines


def pagefile_where_lines(locations: Sequence[PagefileLocation], found: Sequence[FoundPagefile],
                         temp_drive: str, *, mapped: bool = True) -> list[str]:
    if not mapped:
        return [f"Where: TARGET is a hive file, so drive letters cannot be matched to volumes "
                f"(temporary drive: {temp_drive})"]
    lines = [f"Where (temporary drive: {temp_drive})"]
    lines += [f"  {loc.describe()}  [{', '.join(loc.named_by)}]" for loc in locations] or ["  no drive named"]
    lines.append("Page files on the attached volumes")
    lines += [f"  {f.letter or '--'}  {f.disk_path} partition {f.file.partition} ({f.role}): "
              f"\\pagefile.sys {f.size:,} bytes ({format_bytes(f.size)})" for f in found] or ["  none"]
    return lines


# --- crash dumps -----------------------------------------------------------------------------------
def crashdump_lines(report: CrashDumpReport, space: DumpSpaceCheck | None = None) -> list[str]:
    cur = "unknown" if report.current is None else control_set_key(report.current)
    lines = [f"Current control set: {cur}"]
    for c in report.sets:
        head = control_set_key(c.control_set) + (" (current)" if c.control_set == report.current else "")
        if not c.exists:
            lines += [head, "  CrashControl key missing"]
            continue
        tn = V.type_name
        lines += [head,
                  f"  CrashDumpEnabled  {'not set' if c.crash_dump_enabled is None else c.crash_dump_enabled}"
                  + ("" if c.crash_dump_enabled_type is None else f" ({tn(c.crash_dump_enabled_type)}): {c.level}"),
                  f"  DumpFile          {c.dump_file if c.dump_file is not None else 'not set'}"
                  + ("" if c.dump_file_type is None else f" ({tn(c.dump_file_type)})"),
                  f"  NMICrashDump      {'not set' if c.nmi_crash_dump is None else c.nmi_crash_dump}"
                  + ("" if c.nmi_crash_dump_type is None else f" ({tn(c.nmi_crash_dump_type)})")]
    if space is not None:
        ram = (space.ram_source if space.ram_source.startswith(("assumed", "unknown"))
               else f"{format_bytes(space.ram_bytes)} ({space.ram_source})")
        lines += ["Dump space", f"  RAM: {ram}", f"  {space.message}"]
    return lines
