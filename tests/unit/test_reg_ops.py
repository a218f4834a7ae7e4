"""reg.exe data rules, byte for byte, and add/delete planners applied to real hivex-built hives.

Expected bytes follow reg.exe's behaviour on Windows as Wine's conformance tests record it
(programs/reg/tests/add.c): e.g. /t REG_NONE /d deadbeef stores the UTF-16 text, odd hex digits get a
leading nibble, "0123" is decimal 123, a trailing \\0 in REG_MULTI_SZ is allowed, an inner empty item
is refused.
"""

from __future__ import annotations

import struct

import pytest

from rescue.errors import NotFoundError, UsageError
from rescue.hive import Hive, write_minimal_hive
from rescue.hive import values as V
from rescue.registry.regops import (RegArgs, encode_data, parse_switches, parse_type, plan_add,
                                    plan_delete_all_values, plan_delete_key, plan_delete_value, query_key,
                                    query_value, reg_text)
from rescue.safety.plan import DeleteKey, DeleteValue, FileRef, SetValue


def u16(s: str) -> bytes:
    return s.encode("utf-16-le")


def apply_step(path, step) -> None:
    """What the safety engine does with hive changes, on a host file (no backup/verify here)."""
    h = Hive(path, write=True)
    for c in step.changes:
        if isinstance(c, SetValue):
            h.set(c.key, c.name, c.type, c.data)
        elif isinstance(c, DeleteValue):
            assert h.delete_value(c.key, c.name)
        elif isinstance(c, DeleteKey):
            assert h.delete_key(c.key)
    h.commit()


@pytest.fixture
def hive(tmp_path):
    p = tmp_path / "HIVE"
    write_minimal_hive(p, root_name="ROOT", file_name="SOFTWARE")
    h = Hive(p, write=True)
    h.set("Test", "Keep1", V.REG_SZ, V.encode_sz("first"))
    h.set("Test", "Mid", V.REG_DWORD, V.encode_dword(7))
    h.set("Test", "Keep2", V.REG_BINARY, b"\x00\x01\x02")
    h.ensure_key("Test\\Sub\\Deeper")
    h.commit()
    return p


# --- type names and data -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, code", [("REG_SZ", V.REG_SZ), ("reg_dword", V.REG_DWORD), ("Reg_Qword", V.REG_QWORD),
                                        ("REG_DWORD_LITTLE_ENDIAN", V.REG_DWORD), ("REG_NONE", V.REG_NONE),
                                        ("REG_EXPAND_SZ", V.REG_EXPAND_SZ), ("REG_MULTI_SZ", V.REG_MULTI_SZ),
                                        ("REG_BINARY", V.REG_BINARY), (None, V.REG_SZ)])
def test_parse_type(name, code):
    assert parse_type(name) == code


@pytest.mark.parametrize("bad", ["REG_WORD", "", "DWORD", "REG_LINK", "REG_RESOURCE_LIST"])
def test_parse_type_rejects(bad):
    with pytest.raises(UsageError, match="REG_SZ, REG_EXPAND_SZ"):
        parse_type(bad)


@pytest.mark.parametrize("type_, data, sep, expected", [
    (V.REG_SZ, "Hello, World", None, u16("Hello, World\0")),
    (V.REG_SZ, None, None, b"\0\0"),
    (V.REG_SZ, "", None, b"\0\0"),
    (V.REG_SZ, "foo\\0bar", None, u16("foo\\0bar\0")),
    (V.REG_EXPAND_SZ, "%SystemRoot%\\MEMORY.DMP", None, u16("%SystemRoot%\\MEMORY.DMP\0")),
    (V.REG_NONE, None, None, b"\0\0"),
    (V.REG_NONE, "deadbeef", None, u16("deadbeef\0")),
    (V.REG_DWORD, "1", None, b"\x01\0\0\0"),
    (V.REG_DWORD, "0x1F", None, b"\x1f\0\0\0"),
    (V.REG_DWORD, "0X123", None, struct.pack("<I", 0x123)),
    (V.REG_DWORD, "0123", None, struct.pack("<I", 123)),
    (V.REG_DWORD, "0xffffffff", None, b"\xff\xff\xff\xff"),
    (V.REG_DWORD, "4294967295", None, b"\xff\xff\xff\xff"),
    (V.REG_QWORD, "0x123456789abcdef", None, struct.pack("<Q", 0x123456789ABCDEF)),
    (V.REG_QWORD, None, None, bytes(8)),
    (V.REG_QWORD, "18446744073709551615", None, b"\xff" * 8),
    (V.REG_BINARY, "deadbeef", None, b"\xde\xad\xbe\xef"),
    (V.REG_BINARY, "DeAdBeEf0DD", None, bytes([0x0D, 0xEA, 0xDB, 0xEE, 0xF0, 0xDD])),
    (V.REG_BINARY, "", None, b""),
    (V.REG_BINARY, None, None, b""),
    (V.REG_MULTI_SZ, "three\\0little\\0strings", None, u16("three\0little\0strings\0\0")),
    (V.REG_MULTI_SZ, "three#little#strings", "#", u16("three\0little\0strings\0\0")),
    (V.REG_MULTI_SZ, "a\\0", None, u16("a\0\0")),
    (V.REG_MULTI_SZ, "a#", "#", u16("a\0\0")),
    (V.REG_MULTI_SZ, "", None, b"\0\0"),
    (V.REG_MULTI_SZ, None, None, b"\0\0"),
    (V.REG_MULTI_SZ, "\\0", None, b"\0\0\0\0"),
    (V.REG_MULTI_SZ, "#", "#", b"\0\0\0\0"),
    (V.REG_MULTI_SZ, "two\\0#strings", "#", u16("two\\0\0strings\0\0")),
    (V.REG_MULTI_SZ, "D:\\pagefile.sys 0 0", None, u16("D:\\pagefile.sys 0 0\0\0")),
])
def test_encode_data_exact(type_, data, sep, expected):
    assert encode_data(type_, data, sep) == expected


@pytest.mark.parametrize("type_, data, sep, match", [
    (V.REG_DWORD, None, None, "needs data"),
    (V.REG_DWORD, "abc", None, "not a REG_DWORD number"),
    (V.REG_DWORD, "zzz", None, "not a REG_DWORD number"),
    (V.REG_DWORD, "123xyz", None, "not a REG_DWORD number"),
    (V.REG_DWORD, "deadbeef", None, "not a REG_DWORD number"),
    (V.REG_DWORD, "0xabcdefg", None, "not a REG_DWORD number"),
    (V.REG_DWORD, "00x123", None, "not a REG_DWORD number"),
    (V.REG_DWORD, "-1", None, "not a REG_DWORD number"),
    (V.REG_DWORD, "", None, "not a REG_DWORD number"),
    (V.REG_DWORD, "0x100000000", None, "does not fit"),
    (V.REG_DWORD, "4294967296", None, "does not fit"),
    (V.REG_QWORD, "18446744073709551616", None, "does not fit"),
    (V.REG_QWORD, "0x01ffffffffffffffff", None, "does not fit"),
    (V.REG_QWORD, "-0x1", None, "not a REG_QWORD number"),
    (V.REG_BINARY, "0xDeAdBeEf", None, "hex digits only"),
    (V.REG_BINARY, "x01", None, "hex digits only"),
    (V.REG_BINARY, "01 02", None, "hex digits only"),
    (V.REG_MULTI_SZ, "\\0a", None, "empty string"),
    (V.REG_MULTI_SZ, "two\\0\\0strings", None, "empty string"),
    (V.REG_MULTI_SZ, "##", "#", "empty string"),
    (V.REG_MULTI_SZ, "#a", "#", "empty string"),
    (V.REG_MULTI_SZ, "a", "#random", "exactly one character"),
    (V.REG_MULTI_SZ, "a", "", "exactly one character"),
    (V.REG_SZ, "a", "#", "only applies to REG_MULTI_SZ"),
])
def test_encode_data_rejects(type_, data, sep, match):
    with pytest.raises(UsageError, match=match):
        encode_data(type_, data, sep)


@pytest.mark.parametrize("type_, data, text", [
    (V.REG_SZ, u16("x\0"), "x"),
    (V.REG_SZ, u16("a\0b\0"), "a"),                    # reg.exe stops at the first NUL
    (V.REG_EXPAND_SZ, u16("%SystemRoot%\\MEMORY.DMP\0"), "%SystemRoot%\\MEMORY.DMP"),
    (V.REG_MULTI_SZ, u16("a\0b\0\0"), "a\\0b"),
    (V.REG_MULTI_SZ, b"\0\0", ""),
    (V.REG_DWORD, b"\x23\x01\0\0", "0x123"),
    (V.REG_QWORD, struct.pack("<Q", 0xABCDEF0123), "0xabcdef0123"),
    (V.REG_BINARY, b"\xde\xad\x0b", "DEAD0B"),
    (V.REG_NONE, b"\0\0", "0000"),
    (V.REG_BINARY, b"", ""),
])
def test_reg_text(type_, data, text):
    assert reg_text(type_, data) == text


# --- round trips: plan -> apply with hivex -> read back byte-exact, neighbours intact --------------------
ROUND_TRIP = [
    ("REG_SZ", "Hello, World"), ("REG_EXPAND_SZ", "%SystemRoot%\\MEMORY.DMP"),
    ("REG_MULTI_SZ", "a\\0bb\\0ccc"), ("REG_DWORD", "0xdeadbeef"), ("REG_QWORD", "0x0123456789abcdef"),
    ("REG_BINARY", "000102fffe"), ("REG_NONE", "raw"), ("REG_NONE", None), ("REG_BINARY", ""),
]


@pytest.mark.parametrize("tname, data", ROUND_TRIP)
@pytest.mark.parametrize("name", ["New", "Mid", "mid"])
def test_add_round_trip(hive, tname, data, name):
    t = parse_type(tname)
    payload = encode_data(t, data)
    before = {v.name: (v.type, v.data) for v in Hive(hive).values(Hive(hive).node("Test"))}
    h = Hive(hive)
    step = plan_add(h, FileRef(str(hive)), "Test", name, t, payload, display="Test")
    (c,) = step.changes
    assert (c.type, c.data) == (t, payload)
    if name.lower() == "mid":
        assert c.name == "Mid" and (c.before_type, c.before_data) == before["Mid"]
    else:
        assert c.before_type is None and c.before_data is None
    apply_step(hive, step)
    after = Hive(hive)
    node = after.node("Test")
    vals = {v.name: (v.type, v.data) for v in after.values(node)}
    target = "Mid" if name.lower() == "mid" else name
    assert vals[target] == (t, payload)                          # byte-exact
    for other in ("Keep1", "Keep2") + (() if target == "Mid" else ("Mid",)):
        assert vals[other] == before[other]                      # neighbours kept byte for byte
    assert [v.name for v in after.values(node)][:3] == ["Keep1", "Mid", "Keep2"]   # order kept
    # a second identical add is a no-op
    again = plan_add(Hive(hive), FileRef(str(hive)), "Test", name, t, payload, display="Test")
    assert not again.changes and again.skipped


def test_add_creates_key_and_default_value(hive):
    step = plan_add(Hive(hive), FileRef(str(hive)), "New\\Key", "", V.REG_SZ, encode_data(V.REG_SZ, None),
                    display="HKLM\\SOFTWARE\\New\\Key")
    assert step.notes == ("creates the key HKLM\\SOFTWARE\\New\\Key",)
    apply_step(hive, step)
    v = Hive(hive).get("New\\Key", "")
    assert (v.name, v.type, v.data) == ("", V.REG_SZ, b"\0\0")


def test_query_key_and_value(hive):
    h = Hive(hive)
    (k,) = query_key(h, "Test", "X\\Test")
    assert [v.name for v in k.values] == ["Keep1", "Mid", "Keep2"] and k.subkeys == ("Sub",)
    deep = query_key(h, "Test", "X\\Test", recurse=True)
    assert [x.display for x in deep] == ["X\\Test", "X\\Test\\Sub", "X\\Test\\Sub\\Deeper"]
    ((_, v),) = query_value(h, "Test", "X\\Test", "mid")
    assert v.name == "Mid"
    ((_, none),) = query_value(h, "Test", "X\\Test", "")        # /ve on a key without (Default)
    assert none is None
    with pytest.raises(NotFoundError, match="value 'Nope' does not exist in X\\\\Test"):
        query_value(h, "Test", "X\\Test", "Nope")
    with pytest.raises(NotFoundError, match="key X\\\\Missing does not exist"):
        query_key(h, "Missing", "X\\Missing")
    assert query_value(h, "Test", "X\\Test", "Nope", recurse=True) == []


def test_delete_planners(hive):
    ref = FileRef(str(hive))
    step = plan_delete_value(Hive(hive), ref, "Test", "mid", display="T")
    (c,) = step.changes
    assert (c.name, c.before_type, c.before_data) == ("Mid", V.REG_DWORD, V.encode_dword(7))
    apply_step(hive, step)
    assert [v.name for v in Hive(hive).values(Hive(hive).node("Test"))] == ["Keep1", "Keep2"]
    with pytest.raises(NotFoundError):
        plan_delete_value(Hive(hive), ref, "Test", "Mid", display="T")
    with pytest.raises(NotFoundError, match="\\(Default\\) value does not exist"):
        plan_delete_value(Hive(hive), ref, "Test", "", display="T")
    with pytest.raises(NotFoundError):
        plan_delete_value(Hive(hive), ref, "Nope", "x", display="Nope")
    step = plan_delete_all_values(Hive(hive), ref, "Test", display="T")
    assert len(step.changes) == 2
    apply_step(hive, step)
    assert Hive(hive).values(Hive(hive).node("Test")) == []
    assert plan_delete_all_values(Hive(hive), ref, "Test", display="T").skipped
    step = plan_delete_key(Hive(hive), ref, "Test\\Sub", display="T\\Sub")
    assert step.notes == ("T\\Sub has 1 subkey(s); they are deleted too",)
    apply_step(hive, step)
    assert Hive(hive).find("Test\\Sub") is None and Hive(hive).find("Test") is not None
    with pytest.raises(UsageError, match="whole hive"):
        plan_delete_key(Hive(hive), ref, "", display="HKLM\\SOFTWARE")
    with pytest.raises(NotFoundError):
        plan_delete_key(Hive(hive), ref, "Test\\Sub", display="T\\Sub")


# --- reg.exe switches ----------------------------------------------------------------------------------
def test_parse_switches():
    a = parse_switches("add", ["/v", "NMICrashDump", "/t", "REG_DWORD", "/d", "1", "/f"])
    assert (a.value, a.type, a.data, a.force) == ("NMICrashDump", "REG_DWORD", "1", True)
    a = parse_switches("add", ["-V", "x", "-T", "reg_multi_sz", "-S", "#", "-D", "a#b"])
    assert (a.value, a.type, a.separator, a.data) == ("x", "reg_multi_sz", "#", "a#b")
    a = parse_switches("add", ["/d", "-5"], RegArgs(value="n"))          # options merged, data may look like a switch
    assert (a.value, a.data) == ("n", "-5")
    q = parse_switches("query", ["/s", "/v", "Wine"])
    assert (q.recurse, q.value) == (True, "Wine")
    d = parse_switches("delete", ["/va", "/f"])
    assert d.all_values and d.force
    assert parse_switches("query", ["/VE"]).default


@pytest.mark.parametrize("command, tokens, match", [
    ("add", ["/v"], "needs a value"),
    ("add", ["/v", "a", "/v", "b"], "given twice"),
    ("add", ["/f", "/f"], "given twice"),
    ("add", ["/v", "a", "/ve"], "not both"),
    ("add", ["/a"], "not a switch"),
    ("add", ["/"], "Unexpected argument"),
    ("add", ["stray"], "Unexpected argument"),
    ("add", ["/reg:64"], "WOW64"),
    ("query", ["/t", "REG_SZ"], "not a switch of reg query"),
    ("query", ["/s", "/s"], "given twice"),
    ("delete", ["/va", "/v", "x"], "/va deletes every value"),
])
def test_parse_switches_rejects(command, tokens, match):
    with pytest.raises(UsageError, match=match):
        parse_switches(command, tokens)
