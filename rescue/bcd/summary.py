"""The BCD facts `rescue inspect` and `rescue diagnose` report.

Values are the ones the boot applications see: an element of the object itself, else inherited
through its `inherit` list ({emssettings} and {badmemory} reach every application through
{globalsettings}, BCD-REFERENCE.md §5). None means "not set anywhere" (Windows' default applies).
"""

from __future__ import annotations

from dataclasses import dataclass

from rescue.bcd import constants as C
from rescue.bcd.edit import badmemory_holders
from rescue.bcd.model import BcdStore


@dataclass(frozen=True)
class BcdSummary:
    store: str                         # the store's path as the command names it
    default_id: str | None
    default_description: str | None
    badmemory_object: bool             # {badmemory} exists
    badmemory_pages: tuple[int, ...]   # page frame numbers marked bad, all holders together
    badmemory_holders: tuple[str, ...]  # identifiers of objects carrying a badmemorylist
    ems_default_loader: bool | None    # ems (0x260000b0) of the default loader, inheritance included
    bootems_bootmgr: bool | None       # bootems (0x16000020) as {bootmgr} sees it
    ems_port: int | None               # emsport / emsbaudrate as {bootmgr} sees them
    ems_baudrate: int | None

    @property
    def has_badmemory(self) -> bool:
        return bool(self.badmemory_holders)

    def to_json(self) -> dict:
        return {
            "path": self.store, "default": self.default_id, "default_description": self.default_description,
            "badmemory_object": self.badmemory_object, "badmemory_list": self.has_badmemory,
            "badmemory_pages": len(self.badmemory_pages),
            "badmemory_pfns": [f"0x{p:x}" for p in self.badmemory_pages],
            "badmemory_holders": list(self.badmemory_holders),
            "ems_default_loader": self.ems_default_loader, "bootems_bootmgr": self.bootems_bootmgr,
            "ems_port": self.ems_port, "ems_baudrate": self.ems_baudrate,
        }


def summarize(store: BcdStore, label: str | None = None) -> BcdSummary:
    def seen(obj, code):
        if obj is None:
            return None
        e = store.inherited(obj, code)
        return None if e is None or not e.ok else e.value

    default = store.get(store.default_id) if store.default_id else None
    bootmgr = store.bootmgr
    holders = badmemory_holders(store)
    pages: list[int] = []
    for o in holders:
        pages.extend(o.value(C.BADMEMORYLIST, ()) or ())
    return BcdSummary(
        store=label or store.name,
        default_id=store.default_id,
        default_description=default.description if default else None,
        badmemory_object=store.get(C.GUID_BADMEMORY) is not None,
        badmemory_pages=tuple(pages),
        badmemory_holders=tuple(o.alias or o.identifier for o in holders),
        ems_default_loader=seen(default, C.OSLOADER_EMS),
        bootems_bootmgr=seen(bootmgr, C.BOOTEMS),
        ems_port=seen(bootmgr, C.EMSPORT),
        ems_baudrate=seen(bootmgr, C.EMSBAUDRATE),
    )
