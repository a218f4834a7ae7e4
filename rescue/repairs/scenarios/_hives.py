"""Shared by the system scenarios (remote-access, pending-updates): a hive of the Windows root
opened once per command, its control sets, and typed SetValue/DeleteValue changes built from what
was read (so the engine can check the hive still holds it before writing)."""

from __future__ import annotations

from typing import List, Optional

from rescue.errors import RescueError
from rescue.hive import Hive
from rescue.hive import values as V
from rescue.hive.hive import RegValue
from rescue.repairs import sources
from rescue.repairs.context import RepairContext
from rescue.repairs.sources import SourceError
from rescue.safety.plan import DeleteValue, SetValue


def hive(ctx: RepairContext, name: str) -> Hive:
    """The host copy of hive `name` (pending logs replayed), opened once per command. Raises
    SourceError when the hive is missing or unusable (the runner reports that once)."""
    def load() -> Hive:
        path = sources.hive_path(ctx, name)
        try:
            return Hive(path)
        except RescueError as exc:
            raise SourceError(sources.unreadable(name, exc), exc) from None

    return ctx.memo(f"hive-open:{name}", load)


def control_sets(system: Hive) -> List[str]:
    """"ControlSet001", ... present in SYSTEM (every one is repaired: Windows may boot any of them
    as Last Known Good)."""
    from rescue.registry.paths import control_sets as numbers

    return [f"ControlSet{n:03d}" for n in numbers(system)]


def dword(v: Optional[RegValue]) -> Optional[int]:
    """The number a REG_DWORD holds; None when absent or of another type."""
    if v is None or v.type != V.REG_DWORD or len(v.data) < 4:
        return None
    return int.from_bytes(v.data[:4], "little")


def show(v: Optional[RegValue]) -> str:
    if v is None:
        return "not set"
    value = v.value
    return str(value) if v.type == V.REG_DWORD else f"{value!r} ({v.type_name})"


def set_dword(ctx: RepairContext, hive_name: str, key: str, name: str, n: int, before: Optional[RegValue],
              reason: str) -> SetValue:
    return SetValue(sources.hive_ref(ctx, hive_name), key, name, V.REG_DWORD, V.encode_dword(n),
                    before.type if before is not None else None, before.data if before is not None else None,
                    reason=reason)


def set_sz(ctx: RepairContext, hive_name: str, key: str, name: str, text: str, before: Optional[RegValue],
           reason: str, kind: int = V.REG_SZ) -> SetValue:
    """A string value (REG_SZ, or REG_EXPAND_SZ with `kind`: %variables% stay expandable)."""
    return SetValue(sources.hive_ref(ctx, hive_name), key, name, kind, V.encode_sz(text),
                    before.type if before is not None else None, before.data if before is not None else None,
                    reason=reason)


def delete_value(ctx: RepairContext, hive_name: str, key: str, before: RegValue, reason: str) -> DeleteValue:
    return DeleteValue(sources.hive_ref(ctx, hive_name), key, before.name, before.type, before.data, reason=reason)
