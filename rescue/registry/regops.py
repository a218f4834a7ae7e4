"""reg.exe's query / add / delete, offline: argument rules, data encodings, and planners.

The rules are reg.exe's, as Wine's conformance tests record them on real Windows
(wine programs/reg/tests/add.c, query.c; read, not copied):
- `/t` names are case-insensitive; REG_DWORD_LITTLE_ENDIAN is REG_DWORD. Default type REG_SZ.
- without `/v` or `/ve`, `reg add` writes the key's (Default) value (empty REG_SZ when no /d).
- REG_SZ / REG_EXPAND_SZ / REG_NONE: the text in UTF-16LE plus one NUL ("\\0" inside the text
  is literal). No /d: the empty string (2 bytes).
- REG_DWORD: /d required; decimal ("0123" is 123) or 0x hex; no sign; at most 0xFFFFFFFF.
- REG_QWORD: decimal or 0x hex up to 2^64-1; no /d means 0.
- REG_BINARY: hex digits, no "0x"; an odd count gets a leading zero nibble; empty = 0 bytes.
- REG_MULTI_SZ: items split on the two characters `\\0` (or on the single character given with
  `/s`); an empty item is refused except after the last separator; the stored form is every item
  NUL-terminated plus one closing NUL; a lone separator stores two NULs (an empty list item).
Every planner reads a host copy of the hive and returns a `rescue.safety.plan.Step`; the safety
engine applies it (hivex rewrites a node's whole value list, and `Hive.set` passes every other value
back byte for byte).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from rescue.errors import NotFoundError, UsageError
from rescue.hive import values as V
from rescue.hive.hive import RegValue
from rescue.safety.plan import DeleteKey, DeleteValue, FileRef, SetValue, Step

if TYPE_CHECKING:
    from rescue.hive.hive import Hive

TYPES = {"REG_SZ": V.REG_SZ, "REG_EXPAND_SZ": V.REG_EXPAND_SZ, "REG_MULTI_SZ": V.REG_MULTI_SZ,
         "REG_DWORD": V.REG_DWORD, "REG_DWORD_LITTLE_ENDIAN": V.REG_DWORD, "REG_QWORD": V.REG_QWORD,
         "REG_BINARY": V.REG_BINARY, "REG_NONE": V.REG_NONE}
TYPE_LIST = "REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ, REG_DWORD, REG_QWORD, REG_BINARY, REG_NONE"


# --- types and data ------------------------------------------------------------------------
def parse_type(text: str | None) -> int:
    if text is None:
        return V.REG_SZ
    t = TYPES.get(text.strip().upper())
    if t is None:
        raise UsageError(f"{text!r} is not a registry type rescue can write; use one of {TYPE_LIST}.")
    return t


def _number(text: str, bits: int, type_name: str) -> int:
    t = text.strip()
    ok = re.fullmatch(r"0[xX][0-9a-fA-F]+", t) or re.fullmatch(r"[0-9]+", t)
    if not ok:
        raise UsageError(f"{text!r} is not a {type_name} number: give a decimal number or 0x-prefixed hex "
                         f"(0 to 0x{(1 << bits) - 1:X}).")
    n = int(t, 16) if t[:2].lower() == "0x" else int(t, 10)
    if n >= 1 << bits:
        raise UsageError(f"{text} does not fit in a {type_name} (at most 0x{(1 << bits) - 1:X} = {(1 << bits) - 1}).")
    return n


def parse_binary(text: str) -> bytes:
    t = text.strip()
    if not re.fullmatch(r"[0-9a-fA-F]*", t):
        raise UsageError(f"{text!r} is not REG_BINARY data: give hex digits only, e.g. 0100ff (no 0x, no spaces).")
    if len(t) % 2:
        t = "0" + t                                  # reg.exe prefixes the odd nibble
    return bytes.fromhex(t)


def split_multi_sz(text: str, separator: str | None = None) -> list[str] | None:
    """Items of a REG_MULTI_SZ `/d`; None for the special lone-separator case (one empty item)."""
    sep = "\\0" if separator is None else separator
    if text == "":
        return []
    if text == sep:
        return None
    items = text.split(sep)
    if items and items[-1] == "":
        items.pop()                                  # "a\0" is allowed: a trailing separator
    if any(i == "" for i in items):
        raise UsageError(f"{text!r} has an empty string inside the list; REG_MULTI_SZ items cannot be empty "
                         f"(they would end the list). Separate items with {sep!r}.")
    return items


def encode_data(type_: int, data: str | None, separator: str | None = None) -> bytes:
    """The exact bytes reg.exe stores for `/t TYPE /d DATA [/s SEP]` (see the module docstring)."""
    if separator is not None and type_ != V.REG_MULTI_SZ:
        raise UsageError("/s SEPARATOR only applies to REG_MULTI_SZ.")
    if separator is not None and len(separator) != 1:
        raise UsageError(f"/s takes exactly one character (got {separator!r}).")
    if type_ in (V.REG_SZ, V.REG_EXPAND_SZ, V.REG_NONE):
        return V.encode_sz(data or "")
    if type_ == V.REG_DWORD:
        if data is None:
            raise UsageError("REG_DWORD needs data: add /d NUMBER (decimal or 0x hex).")
        return V.encode_dword(_number(data, 32, "REG_DWORD"))
    if type_ == V.REG_QWORD:
        return V.encode_qword(0 if data is None else _number(data, 64, "REG_QWORD"))
    if type_ == V.REG_BINARY:
        return parse_binary(data or "")
    if type_ == V.REG_MULTI_SZ:
        items = split_multi_sz(data or "", separator)
        return b"\x00\x00\x00\x00" if items is None else V.encode_multi_sz(items)
    raise UsageError(f"Type {V.type_name(type_)} cannot be written; use one of {TYPE_LIST}.")


def reg_text(type_: int, data: bytes) -> str:
    """Data as reg.exe query prints it: strings up to the first NUL, MULTI_SZ items joined by
    `\\0`, DWORD/QWORD as 0x lower-case hex, everything else upper-case hex without spaces."""
    if type_ in (V.REG_SZ, V.REG_EXPAND_SZ):
        return data[: len(data) - len(data) % 2].decode("utf-16-le", errors="replace").split("\x00", 1)[0]
    if type_ == V.REG_MULTI_SZ:
        return "\\0".join(V.decode_multi_sz(data))
    if type_ in (V.REG_DWORD, V.REG_DWORD_BIG_ENDIAN) and len(data) == 4:
        return f"0x{int.from_bytes(data, 'little'):x}"
    if type_ == V.REG_QWORD and len(data) == 8:
        return f"0x{int.from_bytes(data, 'little'):x}"
    return data.hex().upper()


# --- reg.exe switches ------------------------------------------------------------------------
@dataclass(frozen=True)
class RegArgs:
    value: str | None = None        # /v NAME
    default: bool = False           # /ve
    all_values: bool = False        # /va (delete)
    recurse: bool = False           # /s (query)
    type: str | None = None         # /t TYPE
    data: str | None = None         # /d DATA
    separator: str | None = None    # /s SEP (add)
    force: bool = False             # /f


_TAKES_ARG = {"query": {"v"}, "add": {"v", "t", "d", "s"}, "delete": {"v"}}
_FLAGS = {"query": {"ve", "s"}, "add": {"ve", "f"}, "delete": {"ve", "va", "f"}}


def parse_switches(command: str, tokens: Sequence[str], base: RegArgs = RegArgs()) -> RegArgs:
    """reg.exe's switches after the key (`/v NAME`, `-v NAME`, `/ve`, `/t`, `/d`, `/s`, `/f`,
    `/va`), merged with what the `--value`-style options already gave (`base`). Each switch once."""
    fields = dict(base.__dict__)
    seen: set[str] = set()
    names = {"v": "value", "ve": "default", "va": "all_values", "t": "type", "d": "data", "f": "force"}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if len(tok) < 2 or tok[0] not in "/-":
            raise UsageError(f"Unexpected argument {tok!r}: reg {command} takes KEY then switches such as /v NAME.")
        sw = tok[1:].lower()
        if sw in ("reg:32", "reg:64"):
            raise UsageError(f"{tok} selects a WOW64 registry view, which only exists on a running Windows; "
                             "offline, name the key directly (e.g. SOFTWARE\\WOW6432Node\\...).")
        if sw not in _TAKES_ARG[command] and sw not in _FLAGS[command]:
            raise UsageError(f"{tok} is not a switch of reg {command}.")
        if sw in seen:
            raise UsageError(f"{tok} is given twice.")
        seen.add(sw)
        if sw in _TAKES_ARG[command]:
            if i + 1 >= len(tokens):
                raise UsageError(f"{tok} needs a value.")
            arg = tokens[i + 1]
            i += 2
            if sw == "s":
                fields["separator"] = arg
            else:
                fields[names[sw]] = arg
        else:
            i += 1
            fields["recurse" if sw == "s" else names[sw]] = True
    args = RegArgs(**fields)
    if args.value is not None and args.default:
        raise UsageError("Give /v NAME or /ve, not both.")
    if args.all_values and (args.value is not None or args.default):
        raise UsageError("/va deletes every value; do not combine it with /v or /ve.")
    return args


# --- query -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyListing:
    display: str                    # reg.exe's full key name
    path: str                       # inside the hive
    values: tuple[RegValue, ...]
    subkeys: tuple[str, ...]


def _listing(hive: Hive, node: int, path: str, display: str) -> KeyListing:
    subs = tuple(hive.name(c) for c in hive.children(node))
    return KeyListing(display, path, tuple(hive.values(node)), subs)


def query_key(hive: Hive, path: str, display: str, *, recurse: bool = False) -> list[KeyListing]:
    """The key (and with `recurse` every key below it, depth first as reg.exe walks them)."""
    node = hive.find(path)
    if node is None:
        raise NotFoundError(f"The key {display} does not exist.")
    out: list[KeyListing] = []

    def walk(n: int, p: str, d: str) -> None:
        item = _listing(hive, n, p, d)
        out.append(item)
        if recurse:
            for c, name in zip(hive.children(n), item.subkeys):
                walk(c, f"{p}\\{name}" if p else name, f"{d}\\{name}")

    walk(node, path, display)
    return out


def find_value(values: Sequence[RegValue], name: str) -> RegValue | None:
    return next((v for v in values if v.name.lower() == name.lower()), None)


def query_value(hive: Hive, path: str, display: str, name: str, *,
                recurse: bool = False) -> list[tuple[KeyListing, RegValue | None]]:
    """(key, value) pairs for `/v NAME` (name "" = /ve). Without recurse: exactly the key, value None
    only for an unset (Default) value (reg.exe prints "(value not set)"); a missing named value is an
    error. With recurse: every key below holding the value (reg.exe's search)."""
    listings = query_key(hive, path, display, recurse=recurse)
    if not recurse:
        v = find_value(listings[0].values, name)
        if v is None and name:
            raise NotFoundError(f"The value {name!r} does not exist in {display}.")
        return [(listings[0], v)]
    return [(k, v) for k in listings if (v := find_value(k.values, name)) is not None]


# --- planners ------------------------------------------------------------------------------------
def plan_add(hive: Hive, ref: FileRef, path: str, name: str, type_: int, data: bytes, *, display: str) -> Step:
    """Set one value (creating the key when missing). Already equal (type and bytes): no change."""
    label = f"{display}\\{name or '(Default)'}"
    node = hive.find(path) if path else hive.root
    notes = () if node is not None else (f"creates the key {display}",)
    before = find_value(hive.values(node), name) if node is not None else None
    if before is not None and before.type == type_ and before.data == data:
        return Step("registry.add", f"reg add {label}", skipped=f"{label} is already {V.type_name(type_)} "
                    f"{reg_text(type_, data)!r}")
    change = SetValue(file=ref, key=path, name=before.name if before else name, type=type_, data=bytes(data),
                      before_type=before.type if before else None, before_data=before.data if before else None,
                      reason="reg add")
    return Step("registry.add", f"reg add {label}", changes=(change,), notes=notes)


def _need_key(hive: Hive, path: str, display: str) -> int:
    node = hive.find(path) if path else hive.root
    if node is None:
        raise NotFoundError(f"The key {display} does not exist.")
    return node


def plan_delete_value(hive: Hive, ref: FileRef, path: str, name: str, *, display: str) -> Step:
    node = _need_key(hive, path, display)
    v = find_value(hive.values(node), name)
    if v is None:
        what = "(Default) value" if not name else f"value {name!r}"
        raise NotFoundError(f"The {what} does not exist in {display}.")
    return Step("registry.delete", f"reg delete {display}\\{name or '(Default)'}",
                changes=(DeleteValue(ref, path, v.name, v.type, v.data, reason="reg delete"),))


def plan_delete_all_values(hive: Hive, ref: FileRef, path: str, *, display: str) -> Step:
    node = _need_key(hive, path, display)
    vals = hive.values(node)
    title = f"reg delete {display} /va"
    if not vals:
        return Step("registry.delete", title, skipped=f"{display} has no values")
    return Step("registry.delete", title,
                changes=tuple(DeleteValue(ref, path, v.name, v.type, v.data, reason="reg delete /va") for v in vals))


def plan_delete_key(hive: Hive, ref: FileRef, path: str, *, display: str) -> Step:
    if not path:
        raise UsageError(f"{display} is a whole hive; rescue deletes keys inside a hive, not the hive itself.")
    node = _need_key(hive, path, display)
    n_sub = len(hive.children(node))
    return Step("registry.delete", f"reg delete {display}",
                changes=(DeleteKey(ref, path, reason="reg delete"),),
                notes=(f"{display} has {n_sub} subkey(s); they are deleted too",) if n_sub else ())
