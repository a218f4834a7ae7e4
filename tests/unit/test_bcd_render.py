"""bcdedit parity of `rescue bcd enum`: `--v` shows identifiers as GUIDs, integer lists of unknown
elements print in decimal (known ones stay hex), as bcdedit prints them."""

from __future__ import annotations

import struct

from rescue.bcd import constants as C
from rescue.bcd.model import BcdStore
from rescue.bcd.render import enum_text
from rescue.hive import Hive
from rescue.hive import values as V
from rescue.samples.bcd_store import LOADER_GUID, build_bcd_hive


def _store(tmp_path):
    path = build_bcd_hive(tmp_path / "BCD")
    with Hive(path, write=True) as h:
        h.set(f"Objects\\{LOADER_GUID}\\Elements\\47000005", "Element", V.REG_BINARY,
              struct.pack("<QQ", 16, 4096))
        h.commit()
    return BcdStore.open(path)


def test_verbose_shows_guids_everywhere(tmp_path):
    store = _store(tmp_path)
    objs = [store.bootmgr, store.get(LOADER_GUID)]
    plain, verbose = enum_text(store, objs), enum_text(store, objs, verbose=True)
    assert "identifier              {bootmgr}" in plain and "default                 {default}" in plain
    assert f"identifier              {C.GUID_BOOTMGR}" in verbose
    assert f"default                 {LOADER_GUID}" in verbose
    assert f"inherit                 {C.GUID_GLOBALSETTINGS}" in verbose
    assert "{bootmgr}" not in verbose and "{default}" not in verbose and "{globalsettings}" not in verbose
    # Nothing else changes: the same lines once identifiers are spelled the same way.
    assert len(plain.splitlines()) == len(verbose.splitlines())


def test_integer_lists_decimal_for_unknown_elements(tmp_path):
    text = enum_text(*(lambda s: (s, [s.get(LOADER_GUID)]))(_store(tmp_path)))
    assert "custom:47000005         16\n                        4096" in text
    assert "allowedinmemorysettings 0x15000075" in text
