"""BCD edits: planners produce exact hive changes; applied to host copies they round-trip.

The store below is built with hivex the way bcdedit lays it out (BCD-REFERENCE.md §1, §6), with a
badmemorylist (no real store has one, realdata/README.md) and two elements rescue cannot name or
decode, which must survive every edit byte for byte. Plans are applied here with `Hive` directly,
the way the safety engine applies them on its host copy; the CLI path through the engine is tested
at the end when rescue.safety.apply is present.
"""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import need  # noqa: E402

from rescue.bcd import constants as C  # noqa: E402
from rescue.bcd import edit as E  # noqa: E402
from rescue.bcd.model import BcdStore  # noqa: E402
from rescue.bcd.summary import summarize  # noqa: E402
from rescue.errors import NotFoundError, UsageError  # noqa: E402
from rescue.hive import Hive, write_minimal_hive  # noqa: E402
from rescue.hive import values as V  # noqa: E402
from rescue.safety.plan import DeleteKey, DeleteValue, FileRef, SetValue, Step  # noqa: E402

LOADER = "{3b9a6f5e-1c2d-11ee-9e4a-00155d0a0b0c}"
LOADER2 = "{3b9a6f5f-1c2d-11ee-9e4a-00155d0a0b0c}"
RESUME = "{3b9a6f5d-1c2d-11ee-9e4a-00155d0a0b0c}"
MBR_DEV = (bytes(16) + struct.pack("<IIII", 6, 0, 72, 0) + struct.pack("<QQ", 0x100000, 0)
           + struct.pack("<II", 0, 1) + struct.pack("<I", 0x1234ABCD) + bytes(28))
UNKNOWN_CODE = 0x16000099          # no bcdedit name: "custom:16000099"
ODD_CODE = 0x15000098              # an integer element stored as REG_DWORD: kept raw
ODD_RAW = b"\x07\x00\x00\x00"


def q(n: int) -> bytes:
    return struct.pack("<Q", n)


def sz(s: str) -> bytes:
    return (s + "\x00").encode("utf-16-le")


def msz(items) -> bytes:
    return "".join(i + "\x00" for i in items).encode("utf-16-le") + b"\x00\x00"


def build_store(path: Path, *, pfns=(0x100F, 0xFFE38), ems_settings: bool = True) -> Path:
    write_minimal_hive(path, root_name="NewStoreRoot")
    h = Hive(path, write=True)
    h.set("Description", "KeyName", V.REG_SZ, sz("BCD00000000"))

    def obj(guid, type_, elements):
        h.set(f"Objects\\{guid}\\Description", "Type", V.REG_DWORD, struct.pack("<I", type_))
        h.ensure_key(f"Objects\\{guid}\\Elements")
        for code, t, data in elements:
            h.set(f"Objects\\{guid}\\Elements\\{code:08x}", "Element", t, data)

    B = V.REG_BINARY
    obj(C.GUID_BOOTMGR, 0x10100002, [
        (0x11000001, B, MBR_DEV), (0x12000004, V.REG_SZ, sz("Windows Boot Manager")),
        (0x14000006, V.REG_MULTI_SZ, msz([C.GUID_GLOBALSETTINGS])),
        (0x23000003, V.REG_SZ, sz(LOADER)), (0x23000006, V.REG_SZ, sz(RESUME)),
        (0x24000001, V.REG_MULTI_SZ, msz([LOADER, LOADER2])), (0x25000004, B, q(30))])
    for guid, desc in ((LOADER, "Windows Server 2019"), (LOADER2, "Second Windows")):
        obj(guid, 0x10200003, [
            (0x11000001, B, MBR_DEV), (0x12000002, V.REG_SZ, sz("\\Windows\\system32\\winload.exe")),
            (0x12000004, V.REG_SZ, sz(desc)), (0x14000006, V.REG_MULTI_SZ, msz([C.GUID_BOOTLOADERSETTINGS])),
            (0x21000001, B, MBR_DEV), (0x22000002, V.REG_SZ, sz("\\Windows")),
            (0x23000003, V.REG_SZ, sz(RESUME)), (0x25000020, B, q(1)),
            (UNKNOWN_CODE, B, b"\x01"), (ODD_CODE, V.REG_DWORD, ODD_RAW)])
    obj(RESUME, 0x10200004, [(0x12000004, V.REG_SZ, sz("Windows Resume Application"))])
    obj(C.GUID_MEMDIAG, 0x10200005, [(0x1600000B, B, b"\x01")])
    obj(C.GUID_BADMEMORY, 0x20100000, [(0x1700000A, B, b"".join(q(p) for p in pfns))] if pfns else [])
    if ems_settings:
        obj(C.GUID_EMSSETTINGS, 0x20100000, [(0x16000020, B, b"\x00")])
    obj(C.GUID_GLOBALSETTINGS, 0x20100000, [
        (0x14000006, V.REG_MULTI_SZ, msz([C.GUID_DBGSETTINGS, C.GUID_EMSSETTINGS, C.GUID_BADMEMORY]))])
    obj(C.GUID_BOOTLOADERSETTINGS, 0x20200003, [(0x14000006, V.REG_MULTI_SZ, msz([C.GUID_GLOBALSETTINGS]))])
    h.commit()
    return path


@pytest.fixture
def bcd(tmp_path) -> Path:
    return build_store(tmp_path / "BCD")


def ref(path: Path) -> FileRef:
    return FileRef(str(path))


def apply(step: Step, path: Path) -> None:
    """Apply a step's hive changes to the host file, as the safety engine does on its copy."""
    h = Hive(path, write=True)
    for c in step.changes:
        if isinstance(c, SetValue):
            h.set(c.key, c.name, c.type, c.data)
        elif isinstance(c, DeleteValue):
            assert h.delete_value(c.key, c.name)
        elif isinstance(c, DeleteKey):
            assert h.delete_key(c.key)
        else:
            raise AssertionError(c)
    h.commit()


def snapshot(path: Path) -> dict:
    """Every element of every object: (key name, REG type, raw bytes)."""
    store = BcdStore.open(path)
    return {o.identifier: {e.code: (e.key, e.reg_type, e.raw) for e in o.elements} for o in store.objects}


def element_value(path: Path, guid: str, code: int):
    h = Hive(path)
    return h.get(f"Objects\\{guid}\\Elements\\{code:08x}", "Element")


def changed_only(before: dict, after: dict, guid: str, codes: set[int]) -> None:
    """Everything except `codes` of `guid` is byte-identical, unknown elements included."""
    assert before.keys() == after.keys()
    for ident in before:
        b, a = before[ident], after[ident]
        if ident != guid:
            assert a == b, ident
            continue
        assert {k: v for k, v in a.items() if k not in codes} == {k: v for k, v in b.items() if k not in codes}


# --- set -----------------------------------------------------------------------------------
@pytest.mark.parametrize("ident,name,values,code,reg_type,raw", [
    ("{bootmgr}", "timeout", ["5"], 0x25000004, V.REG_BINARY, q(5)),
    ("{bootmgr}", "timeout", ["0x1e0"], 0x25000004, V.REG_BINARY, q(480)),
    ("{bootmgr}", "bootems", ["yes"], 0x16000020, V.REG_BINARY, b"\x01"),
    ("{bootmgr}", "displaybootmenu", ["On"], 0x26000020, V.REG_BINARY, b"\x01"),
    ("{default}", "description", ["Windows (repaired)"], 0x12000004, V.REG_SZ, sz("Windows (repaired)")),
    ("{default}", "nx", ["AlwaysOff"], 0x25000020, V.REG_BINARY, q(2)),
    ("{default}", "bootstatuspolicy", ["IgnoreAllFailures"], 0x250000E0, V.REG_BINARY, q(1)),
    ("{default}", "ems", ["true"], 0x260000B0, V.REG_BINARY, b"\x01"),
    ("{bootmgr}", "default", [LOADER2.upper()], 0x23000003, V.REG_SZ, sz(LOADER2)),
    ("{bootmgr}", "displayorder", [LOADER2, "{default}"], 0x24000001, V.REG_MULTI_SZ, msz([LOADER2, LOADER])),
    ("{badmemory}", "badmemorylist", ["0x1", "4096"], 0x1700000A, V.REG_BINARY, q(1) + q(4096)),
    ("{emssettings}", "0x15000022", ["2"], 0x15000022, V.REG_BINARY, q(2)),
    ("{emssettings}", "custom:15000023", ["9600"], 0x15000023, V.REG_BINARY, q(9600)),
])
def test_set_round_trip(bcd, ident, name, values, code, reg_type, raw):
    before = snapshot(bcd)
    store = BcdStore.open(bcd)
    obj = store.object(ident)
    step = E.plan_set(store, ref(bcd), ident, name, values)
    assert len(step.changes) == 1 and step.skipped is None
    c = step.changes[0]
    assert (c.key, c.name, c.type, c.data) == (f"Objects\\{obj.identifier}\\Elements\\{code:08x}", "Element",
                                               reg_type, raw)
    apply(step, bcd)
    v = element_value(bcd, obj.identifier, code)
    assert (v.type, v.data) == (reg_type, raw)
    assert len(v.data) == len(raw)
    after = snapshot(bcd)
    changed_only(before, after, obj.identifier, {code})
    # Re-planning the same value is a no-op: an empty step with the reason.
    again = E.plan_set(BcdStore.open(bcd), ref(bcd), ident, name, values)
    assert again.changes == () and "already" in again.skipped


def test_set_keeps_an_existing_upper_case_key_and_rewrites_short_integers(tmp_path):
    path = tmp_path / "BCD-Template"
    shutil.copyfile(need("bcd/museum_win10_BCD-Template"), path)
    store = BcdStore.open(path)
    same = E.plan_set(store, ref(path), "{hypervisorsettings}", "hypervisorbaudrate", ["115200"])
    assert same.changes == ()                         # 3-byte 00c201 already means 115200
    step = E.plan_set(store, ref(path), "{hypervisorsettings}", "hypervisorbaudrate", ["57600"])
    assert step.changes[0].key.endswith("\\Elements\\250000F5")
    assert step.changes[0].before_data == bytes.fromhex("00c201")
    apply(step, path)
    h = Hive(path)
    hv = f"Objects\\{C.GUID_HYPERVISORSETTINGS}\\Elements"
    assert sorted(h.child_names(hv)) == ["250000F3", "250000F4", "250000F5", "47000006"]   # no duplicate key
    assert h.get(hv + "\\250000F5", "Element").data == q(57600)


def test_new_element_keys_are_lower_case(bcd):
    store = BcdStore.open(bcd)
    step = E.plan_set(store, ref(bcd), "{memdiag}", "0x1600000B", ["no"])      # existing: keeps its key
    assert step.changes[0].key.endswith("\\1600000b")
    apply(E.plan_emssettings(store, ref(bcd), 1, 115200), bcd)
    names = Hive(bcd).child_names(f"Objects\\{C.GUID_EMSSETTINGS}\\Elements")
    assert sorted(names) == ["15000022", "15000023", "16000020"]


@pytest.mark.parametrize("ident,name,values,error,words", [
    ("{bootmgr}", "ems", ["on"], UsageError, "does not apply to {bootmgr}"),
    ("{bootmgr}", "frobnicate", ["1"], UsageError, "not a BCD element name"),
    ("{bootmgr}", "timeout", ["soon"], UsageError, "not an integer"),
    ("{bootmgr}", "timeout", ["-1"], UsageError, "out of range"),
    ("{bootmgr}", "bootems", ["maybe"], UsageError, "not a boolean"),
    ("{bootmgr}", "device", ["boot"], UsageError, "cannot set offline"),
    ("{bootmgr}", "description", ["a", "b"], UsageError, "takes one value"),
    ("{bootmgr}", "default", ["{ffffffff-1c2d-11ee-9e4a-00155d0a0b0c}"], NotFoundError, "has no object"),
    ("{current}", "timeout", ["5"], UsageError, "offline"),
    ("{dbgsettings}", "debugtype", ["serial"], NotFoundError, "no object {dbgsettings}"),
])
def test_set_refusals(bcd, ident, name, values, error, words):
    store = BcdStore.open(bcd)
    with pytest.raises(error) as exc:
        E.plan_set(store, ref(bcd), ident, name, values)
    assert words in str(exc.value)


def test_bool_and_int_spellings():
    assert all(E.parse_bool(w) for w in ("on", "ON", "yes", "true", "1"))
    assert not any(E.parse_bool(w) for w in ("off", "No", "false", "0"))
    assert E.parse_int("115200") == 115200 and E.parse_int("0x1C200") == 115200
    assert E.parse_int("standard", {0: "Legacy", 1: "Standard"}) == 1


# --- deletevalue -----------------------------------------------------------------------------
@pytest.mark.parametrize("element", ["badmemorylist", "0x1700000a", "1700000A", "custom:1700000a"])
def test_deletevalue_removes_only_that_element(bcd, element):
    before = snapshot(bcd)
    store = BcdStore.open(bcd)
    step = E.plan_deletevalue(store, ref(bcd), "{badmemory}", element)
    (c,) = step.changes
    assert isinstance(c, DeleteKey) and c.key == f"Objects\\{C.GUID_BADMEMORY}\\Elements\\1700000a"
    assert "0x100f, 0xffe38" in c.reason
    apply(step, bcd)
    after = snapshot(bcd)
    assert after[C.GUID_BADMEMORY] == {}
    assert Hive(bcd).child_names(f"Objects\\{C.GUID_BADMEMORY}\\Elements") == []
    changed_only(before, after, C.GUID_BADMEMORY, {0x1700000A})
    assert E.plan_deletevalue(BcdStore.open(bcd), ref(bcd), "{badmemory}", element).changes == ()


def test_unknown_and_undecodable_elements_are_kept_and_deletable(bcd):
    store = BcdStore.open(bcd)
    loader = store.object("{default}")
    unknown, odd = loader.element(UNKNOWN_CODE), loader.element(ODD_CODE)
    assert (unknown.name, unknown.value) == ("custom:16000099", True)
    assert (odd.value, odd.raw, odd.reg_type) == (None, ODD_RAW, V.REG_DWORD) and "REG_DWORD" in odd.error
    before = snapshot(bcd)
    apply(E.plan_deletevalue(store, ref(bcd), "{default}", "custom:15000098"), bcd)
    after = snapshot(bcd)
    changed_only(before, after, LOADER, {ODD_CODE})
    assert ODD_CODE not in after[LOADER] and after[LOADER][UNKNOWN_CODE] == ("16000099", V.REG_BINARY, b"\x01")


# --- the article's edits -------------------------------------------------------------------------
def test_clear_badmemory(bcd):
    store = BcdStore.open(bcd)
    s = summarize(store)
    assert (s.has_badmemory, s.badmemory_pages, s.badmemory_holders) == (True, (0x100F, 0xFFE38), ("{badmemory}",))
    step = E.plan_clear_badmemory(store, ref(bcd))
    assert step.action == "bcd.badmemory" and len(step.changes) == 1 and "2 page(s)" in step.notes[0]
    apply(step, bcd)
    store = BcdStore.open(bcd)
    assert not summarize(store).has_badmemory
    assert E.plan_clear_badmemory(store, ref(bcd)).skipped == "no bad-memory list in {badmemory}"


def test_clear_badmemory_everywhere_it_is(bcd):
    store = BcdStore.open(bcd)
    apply(E.plan_set(store, ref(bcd), "{globalsettings}", "badmemorylist", ["0x42"]), bcd)
    step = E.plan_clear_badmemory(BcdStore.open(bcd), ref(bcd))
    assert sorted(c.key.split("\\")[1] for c in step.changes) == sorted([C.GUID_BADMEMORY, C.GUID_GLOBALSETTINGS])


def test_ems_on_loaders_and_refusal_on_bootmgr(bcd):
    store = BcdStore.open(bcd)
    with pytest.raises(UsageError) as exc:
        E.plan_ems(store, ref(bcd), "{bootmgr}", True)
    assert "not a Windows Boot Loader" in str(exc.value)
    step = E.plan_ems_on(store, ref(bcd))
    assert [c.key.split("\\")[1] for c in step.changes] == [LOADER, LOADER2]
    assert all((c.type, c.data) == (V.REG_BINARY, b"\x01") for c in step.changes)
    apply(step, bcd)
    store = BcdStore.open(bcd)
    assert summarize(store).ems_default_loader is True
    assert E.plan_ems_on(store, ref(bcd)).changes == ()
    off = E.plan_ems(store, ref(bcd), "{default}", False)
    assert off.changes[0].data == b"\x00" and off.changes[0].before_data == b"\x01"


def test_bootems_and_emssettings(bcd):
    store = BcdStore.open(bcd)
    s = summarize(store)
    assert (s.bootems_bootmgr, s.ems_port, s.ems_baudrate) == (False, None, None)   # inherited {emssettings}
    apply(E.plan_bootems(store, ref(bcd), "{bootmgr}", True), bcd)
    step = E.plan_emssettings(BcdStore.open(bcd), ref(bcd), 1, 115200)
    assert [(c.key.rsplit("\\", 1)[1], c.data) for c in step.changes] == [("15000022", q(1)), ("15000023", q(115200))]
    apply(step, bcd)
    s = summarize(BcdStore.open(bcd))
    assert (s.bootems_bootmgr, s.ems_port, s.ems_baudrate) == (True, 1, 115200)
    assert E.plan_emssettings(BcdStore.open(bcd), ref(bcd), 1, 115200).changes == ()


@pytest.mark.parametrize("port,baud,words", [(None, None, "Give --port"), (0, 115200, "serial port"),
                                             (1, 115201, "baud rate")])
def test_emssettings_refusals(bcd, port, baud, words):
    with pytest.raises(UsageError) as exc:
        E.plan_emssettings(BcdStore.open(bcd), ref(bcd), port, baud)
    assert words in str(exc.value)


def test_emssettings_needs_the_object(tmp_path):
    path = build_store(tmp_path / "BCD", ems_settings=False)
    with pytest.raises(NotFoundError):
        E.plan_emssettings(BcdStore.open(path), ref(path), 1, 115200)


# --- through the CLI and the safety engine --------------------------------------------------------
def test_cli_writes_through_the_safety_engine(bcd, capsys):
    from rescue.cli.main import run

    original = bcd.read_bytes()
    assert run(["bcd", "deletevalue", str(bcd), "{badmemory}", "badmemorylist", "--dry-run"]) == 0
    assert bcd.read_bytes() == original
    assert run(["bcd", "deletevalue", str(bcd), "{badmemory}", "badmemorylist", "--yes"]) == 0
    assert run(["bcd", "ems", str(bcd), "{default}", "on", "--yes"]) == 0
    assert run(["bcd", "emssettings", str(bcd), "--port", "1", "--baudrate", "115200", "--yes"]) == 0
    s = summarize(BcdStore.open(bcd))
    assert (s.has_badmemory, s.ems_default_loader, s.ems_port, s.ems_baudrate) == (False, True, 1, 115200)
    capsys.readouterr()
    assert run(["bcd", "emssettings", str(bcd), "EMSPORT:1", "EMSBAUDRATE:115200", "--yes", "--json"]) == 0
    assert "nothing" in capsys.readouterr().out.lower()
    assert run(["bcd", "ems", str(bcd), "{bootmgr}", "on", "--yes"]) == 2
    assert run(["bcd", "bootems", str(bcd), "{bootmgr}", "off", "--yes"]) == 0
    bootems = BcdStore.open(bcd).get(C.GUID_BOOTMGR).element(0x16000020)
    assert (bootems.reg_type, bootems.raw) == (V.REG_BINARY, b"\x00")
