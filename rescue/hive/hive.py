"""A typed wrapper over python3-hivex for one hive file on the host.

Paths are backslash-separated key paths relative to the hive root, matched case-insensitively as
Windows does. Writes are only possible on a handle opened with `write=True`, and reach the file only
on `commit()` (virt-v2v's `with_hive_write` idea: the caller commits only after every edit worked).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import hivex

from rescue.errors import CorruptHiveError, InputError, NotFoundError
from rescue.hive import values as V


class _Hivex(hivex.Hivex):
    """hivex's binding runs `close` in __del__ even when open failed, printing an "Exception ignored"
    traceback on stderr for every corrupt hive; a user must only see our one-sentence error."""

    def __del__(self):
        if hasattr(self, "_o"):
            super().__del__()


@dataclass(frozen=True)
class RegValue:
    name: str          # "" is the key's default value, shown "(Default)" by regedit
    type: int
    data: bytes

    @property
    def type_name(self) -> str:
        return V.type_name(self.type)

    @property
    def value(self):
        return V.decode_value(self.type, self.data)


def split_path(path: str) -> list[str]:
    return [p for p in path.replace("/", "\\").split("\\") if p]


class Hive:
    def __init__(self, path: str | Path, *, write: bool = False):
        self.path = Path(path)
        self.writable = write
        if not self.path.exists():
            raise InputError(f"{self.path} does not exist.")
        try:
            self._h = _Hivex(str(self.path), write=write)
            self._root = self._h.root()
        except RuntimeError as exc:
            raise CorruptHiveError(
                f"{self.path} is not a readable registry hive ({exc}).",
                hint="Restore it from a backup (rescue undo) or from the RegBack copies.",
            ) from None
        self._dirty = False

    # --- navigation -------------------------------------------------------------------------
    @property
    def root(self) -> int:
        return self._root

    def root_name(self) -> str:
        return self._h.node_name(self._root)

    def find(self, path: str) -> int | None:
        node = self._root
        for part in split_path(path):
            try:
                node = self._h.node_get_child(node, part)
            except RuntimeError as exc:
                raise CorruptHiveError(f"{self.path} is damaged near key {path!r} ({exc}).") from None
            if node is None or node == 0:
                return None
        return node

    def node(self, path: str) -> int:
        node = self.find(path)
        if node is None:
            raise NotFoundError(f"Key {path!r} does not exist in {self.path.name}.")
        return node

    def exists(self, path: str) -> bool:
        return self.find(path) is not None

    def name(self, node: int) -> str:
        return self._h.node_name(node)

    def children(self, node: int) -> list[int]:
        try:
            return list(self._h.node_children(node))
        except RuntimeError as exc:
            raise CorruptHiveError(f"{self.path} is damaged ({exc}).") from None

    def child_names(self, path: str = "") -> list[str]:
        node = self.find(path)
        return [] if node is None else [self.name(c) for c in self.children(node)]

    def values(self, node: int) -> list[RegValue]:
        out = []
        try:
            for v in self._h.node_values(node):
                t, data = self._h.value_value(v)
                out.append(RegValue(self._h.value_key(v), t, bytes(data)))
        except RuntimeError as exc:
            raise CorruptHiveError(f"{self.path} is damaged ({exc}).") from None
        return out

    def get(self, path: str, name: str) -> RegValue | None:
        """The value `name` of key `path` (case-insensitive), or None when key or value is missing."""
        node = self.find(path)
        if node is None:
            return None
        for v in self.values(node):
            if v.name.lower() == name.lower():
                return v
        return None

    def get_value(self, path: str, name: str, default=None):
        v = self.get(path, name)
        return default if v is None else v.value

    def last_written(self, node: int) -> int:
        return self._h.node_timestamp(node)

    # --- edits (host copy only; reach the file on commit) ------------------------------------
    def _need_write(self) -> None:
        if not self.writable:
            raise RuntimeError("hive opened read-only")  # programming error, not user input

    def ensure_key(self, path: str) -> int:
        self._need_write()
        node = self._root
        for part in split_path(path):
            child = self._h.node_get_child(node, part)
            if not child:
                child = self._h.node_add_child(node, part)
                self._dirty = True
            node = child
        return node

    def set(self, path: str, name: str, type_: int, data: bytes, *, create_key: bool = True) -> None:
        """Set one value; hivex rewrites the node's whole value list, so pass every other value back
        unchanged (their names, types and bytes are kept exactly)."""
        self._need_write()
        node = self.ensure_key(path) if create_key else self.node(path)
        # Keep the value order and the original spelling of the name: a diff of the hive then shows
        # exactly one changed value.
        new, replaced = [], False
        for v in self.values(node):
            if v.name.lower() == name.lower():
                new.append(RegValue(v.name, type_, bytes(data)))
                replaced = True
            else:
                new.append(v)
        if not replaced:
            new.append(RegValue(name, type_, bytes(data)))
        self._h.node_set_values(node, [{"key": v.name, "t": v.type, "value": v.data} for v in new])
        self._dirty = True

    def delete_value(self, path: str, name: str) -> bool:
        self._need_write()
        node = self.find(path)
        if node is None:
            return False
        vals = self.values(node)
        kept = [v for v in vals if v.name.lower() != name.lower()]
        if len(kept) == len(vals):
            return False
        self._h.node_set_values(node, [{"key": v.name, "t": v.type, "value": v.data} for v in kept])
        self._dirty = True
        return True

    def delete_key(self, path: str) -> bool:
        self._need_write()
        node = self.find(path)
        if node is None:
            return False
        if node == self._root:
            raise RuntimeError("refusing to delete the hive root")
        self._h.node_delete_child(node)
        self._dirty = True
        return True

    @property
    def modified(self) -> bool:
        return self._dirty

    def commit(self, path: str | Path | None = None) -> None:
        self._need_write()
        self._h.commit(str(path) if path else None)
        self._dirty = False

    def close(self) -> None:
        self._h = None  # type: ignore[assignment]  # closed: any later call fails loudly

    def __enter__(self) -> "Hive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_hive(path: str | Path, *, write: bool = False) -> Hive:
    return Hive(path, write=write)
