"""How every layer names a file: a path on a volume of an attached disk, or a file on the host.

The bottom of the package (nothing here imports another rescue module): plans, the safety engine,
targets, backups and the scenarios all name files by `FileRef`, never by appliance device names or
mount points, so a plan made from one launch's layout means the same file in the next.
"""

from __future__ import annotations

from dataclasses import dataclass


def win_to_posix(path: str) -> str:
    """"\\Windows\\System32\\config\\SYSTEM" -> "/Windows/System32/config/SYSTEM"."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return "/" + "/".join(parts)


def win_path(path: str) -> str:
    """A Windows path from the volume root, however it was typed: "Windows/System32" and
    "\\Windows\\System32\\" both give "\\Windows\\System32"."""
    return "\\" + "\\".join(p for p in path.replace("/", "\\").split("\\") if p)


@dataclass(frozen=True)
class FileRef:
    """A file on a volume of an attached disk (disk index, 1-based partition, backslash path from the
    volume root, e.g. "\\\\Windows\\\\System32\\\\config\\\\SYSTEM"), or a host file when disk is None."""

    path: str
    disk: int | None = None
    partition: int | None = None

    @property
    def on_host(self) -> bool:
        return self.disk is None

    @property
    def volume(self) -> tuple[int, int]:
        """(disk, partition) of a file on an attached disk. A host file has none: asking is a bug."""
        if self.disk is None or self.partition is None:
            raise ValueError(f"{self.path} is a host file, not a file on a disk's volume")
        return self.disk, self.partition

    def label(self, disk_paths: list[str] | None = None) -> str:
        if self.on_host:
            return self.path
        disk = disk_paths[self.disk] if disk_paths and self.disk is not None and self.disk < len(disk_paths) else f"disk {self.disk}"
        return f"{disk} partition {self.partition}: {self.path}"

    def to_json(self) -> dict:
        return {"path": self.path, "disk": self.disk, "partition": self.partition}

    @classmethod
    def from_json(cls, d: dict) -> "FileRef":
        return cls(path=d["path"], disk=d.get("disk"), partition=d.get("partition"))
