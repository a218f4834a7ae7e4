"""Planned edits of a SYSTEM hive's services and class filters (typed changes for the engine).

Each function reads the value as it is now (so the plan carries the exact bytes it replaces, and the
engine can check nothing changed since) and returns the change, or None when there is nothing to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from rescue.hive import values as V
from rescue.fileref import FileRef
from rescue.safety.plan import DeleteKey, DeleteValue, SetValue

if TYPE_CHECKING:
    from rescue.hive.hive import Hive


def set_start(hive: Hive, ref: FileRef, cs_key: str, service: str, start: int, reason: str) -> Optional[SetValue]:
    key = f"{cs_key}\\Services\\{service}"
    before = hive.get(key, "Start")
    data = V.encode_dword(start)
    if before is not None and before.type == V.REG_DWORD and before.data[:4] == data:
        return None
    return SetValue(ref, key, "Start", V.REG_DWORD, data,
                    before.type if before else None, before.data if before else None, reason)


def delete_start_override(hive: Hive, ref: FileRef, cs_key: str, service: str, reason: str) -> Optional[DeleteKey]:
    key = f"{cs_key}\\Services\\{service}\\StartOverride"
    return DeleteKey(ref, key, reason) if hive.exists(key) else None


def set_filters(hive: Hive, ref: FileRef, key: str, value: str, keep: Sequence[str], reason: str):
    """UpperFilters/LowerFilters reduced to `keep` (order kept); deleted when nothing is left."""
    before = hive.get(key, value)
    if before is None:
        return None
    if not keep:
        return DeleteValue(ref, key, value, before.type, before.data, reason)
    data = V.encode_multi_sz(list(keep))
    if before.type == V.REG_MULTI_SZ and before.data == data:
        return None
    return SetValue(ref, key, value, V.REG_MULTI_SZ, data, before.type, before.data, reason)
