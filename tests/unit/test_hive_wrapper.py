"""The hivex wrapper: case-insensitive paths, value order and neighbours kept, exact bytes."""

import pytest

from rescue.errors import CorruptHiveError, InputError, NotFoundError
from rescue.hive import Hive, read_header, write_minimal_hive
from rescue.hive import values as V


@pytest.fixture
def hive(tmp_path):
    p = tmp_path / "SYSTEM"
    write_minimal_hive(p, root_name="ROOT")
    h = Hive(p, write=True)
    h.set("ControlSet001\\Control\\CrashControl", "CrashDumpEnabled", V.REG_DWORD, V.encode_dword(0))
    h.set("ControlSet001\\Control\\CrashControl", "DumpFile", V.REG_EXPAND_SZ, V.encode_sz("%SystemRoot%\\MEMORY.DMP"))
    h.set("ControlSet001\\Control\\CrashControl", "Odd", V.REG_BINARY, b"\x01\x02\x03")
    h.commit()
    return p


def test_case_insensitive_lookup_and_decode(hive):
    h = Hive(hive)
    assert h.get_value("controlset001\\CONTROL\\crashcontrol", "crashdumpenabled") == 0
    assert h.get("ControlSet001\\Control\\CrashControl", "DumpFile").type_name == "REG_EXPAND_SZ"
    assert h.get("ControlSet001\\Control\\CrashControl", "missing") is None
    assert h.find("ControlSet002") is None
    with pytest.raises(NotFoundError):
        h.node("ControlSet002\\Control")


def test_set_keeps_order_spelling_and_neighbours(hive):
    h = Hive(hive, write=True)
    h.set("ControlSet001\\Control\\CrashControl", "crashdumpenabled", V.REG_DWORD, V.encode_dword(1))
    h.commit()
    vals = Hive(hive).values(Hive(hive).node("ControlSet001\\Control\\CrashControl"))
    assert [v.name for v in vals] == ["CrashDumpEnabled", "DumpFile", "Odd"]
    assert vals[0].data == b"\x01\x00\x00\x00"
    assert (vals[2].type, vals[2].data) == (V.REG_BINARY, b"\x01\x02\x03")


def test_delete_value_only_that_one(hive):
    h = Hive(hive, write=True)
    assert h.delete_value("ControlSet001\\Control\\CrashControl", "DUMPFILE") is True
    assert h.delete_value("ControlSet001\\Control\\CrashControl", "DumpFile") is False
    h.commit()
    names = [v.name for v in Hive(hive).values(Hive(hive).node("ControlSet001\\Control\\CrashControl"))]
    assert names == ["CrashDumpEnabled", "Odd"]


def test_commit_bumps_sequences_and_stays_clean(hive):
    before = read_header(hive)
    h = Hive(hive, write=True)
    h.delete_key("ControlSet001\\Control\\CrashControl")
    h.commit()
    after = read_header(hive)
    assert not after.dirty and after.checksum_ok
    assert after.primary_sequence > before.primary_sequence


def test_errors_are_typed(tmp_path):
    with pytest.raises(InputError):
        Hive(tmp_path / "nothing")
    bad = tmp_path / "bad"
    bad.write_bytes(b"regf" + b"\0" * 5000)
    with pytest.raises(CorruptHiveError):
        Hive(bad)


@pytest.mark.parametrize("items", [[], ["a"], ["C:\\pagefile.sys 0 0", "D:\\x"]])
def test_multi_sz_round_trip(items):
    data = V.encode_multi_sz(items)
    assert V.decode_multi_sz(data) == items
    assert data.endswith(b"\0\0\0\0") or items == [] and data == b"\0\0"
