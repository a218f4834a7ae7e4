"""Our minimal-hive writer (rescue.hive.regf.write_minimal_hive): hivex can create no hive, so every
sample hive starts from this file. Checked with hivex itself (open, edit, commit, re-read) and with
`hivexsh`, a separate reader, plus the base block fields Windows checks."""

from __future__ import annotations

import struct
import subprocess

import hivex
import pytest

from rescue.hive import Hive, read_header, write_minimal_hive
from rescue.hive import values as V
from rescue.hive.regf import HBIN_SIZE, base_block_checksum


@pytest.mark.parametrize("root,minor", [("ROOT", 5), ("NewStoreRoot", 3)])
def test_header_fields_and_checksum(tmp_path, root, minor):
    p = tmp_path / "h"
    write_minimal_hive(p, root_name=root, file_name="SYSTEM", minor_version=minor)
    data = p.read_bytes()
    assert len(data) == 4096 + HBIN_SIZE
    hdr = read_header(p)
    assert hdr.checksum_ok and not hdr.dirty
    assert (hdr.major, hdr.minor, hdr.file_type) == (1, minor, 0)
    assert hdr.root_cell_offset == 0x20 and hdr.hive_bins_size == HBIN_SIZE
    assert hdr.file_name == "SYSTEM"
    assert struct.unpack_from("<I", data, 0x1FC)[0] == base_block_checksum(data[:512])
    assert data[4096:4100] == b"hbin"
    # The root cell is an allocated (negative size) nk cell flagged as the hive root.
    size, sig, flags = struct.unpack_from("<i2sH", data, 4096 + 0x20)
    assert size < 0 and sig == b"nk" and flags & 0x4


def test_hivex_opens_edits_commits_and_rereads(tmp_path):
    p = tmp_path / "SOFTWARE"
    write_minimal_hive(p, root_name="ROOT")
    h = hivex.Hivex(str(p), write=True)
    root = h.root()
    assert h.node_name(root) == "ROOT" and h.node_children(root) == []
    ms = h.node_add_child(root, "Microsoft")
    cv = h.node_add_child(h.node_add_child(ms, "Windows NT"), "CurrentVersion")
    h.node_set_values(cv, [
        {"key": "ProductName", "t": V.REG_SZ, "value": V.encode_sz("Windows Server 2019 Datacenter")},
        {"key": "CurrentMajorVersionNumber", "t": V.REG_DWORD, "value": V.encode_dword(10)},
        {"key": "Big", "t": V.REG_BINARY, "value": bytes(range(256)) * 40},   # > one hbin: must grow
    ])
    h.commit(None)
    del h

    again = Hive(p)
    assert again.child_names("") == ["Microsoft"]
    assert again.get_value("Microsoft\\Windows NT\\CurrentVersion", "ProductName") == "Windows Server 2019 Datacenter"
    assert again.get_value("Microsoft\\Windows NT\\CurrentVersion", "CurrentMajorVersionNumber") == 10
    assert again.get("Microsoft\\Windows NT\\CurrentVersion", "Big").data == bytes(range(256)) * 40
    hdr = read_header(p)
    assert hdr.checksum_ok and not hdr.dirty and hdr.primary_sequence >= 2
    assert hdr.hive_bins_size > HBIN_SIZE and p.stat().st_size == 4096 + hdr.hive_bins_size


def test_new_keys_inherit_a_valid_security_descriptor(tmp_path):
    """Windows refuses a key without a security cell; hivex copies the parent's reference, so every
    key built on our hive points at the root's sk cell, which must be reachable and self-consistent."""
    p = tmp_path / "h"
    write_minimal_hive(p)
    h = Hive(p, write=True)
    h.ensure_key("A\\B\\C")
    h.commit()
    data = p.read_bytes()
    root_sk = struct.unpack_from("<I", data, 4096 + 0x20 + 4 + 0x2C)[0]
    cell = 4096 + root_sk
    size, sig = struct.unpack_from("<i2s", data, cell)
    assert size < 0 and sig == b"sk"
    flink, blink, refcount, sd_len = struct.unpack_from("<IIII", data, cell + 8)
    assert flink == blink == root_sk and refcount >= 1
    sd = data[cell + 24: cell + 24 + sd_len]
    assert sd[0] == 1 and struct.unpack_from("<H", sd, 2)[0] & 0x8004 == 0x8004  # self-relative, DACL present


def test_hivexsh_reads_what_we_wrote(tmp_path):
    p = tmp_path / "SYSTEM"
    write_minimal_hive(p, root_name="ROOT")
    h = Hive(p, write=True)
    h.set("Select", "Current", V.REG_DWORD, V.encode_dword(2))
    h.set("ControlSet002\\Control\\CrashControl", "DumpFile", V.REG_EXPAND_SZ, V.encode_sz("%SystemRoot%\\MEMORY.DMP"))
    h.commit()
    script = "cd \\Select\nlsval\ncd \\ControlSet002\\Control\\CrashControl\nlsval\ncd \\\nls\n"
    out = subprocess.run(["hivexsh", str(p)], input=script, capture_output=True, text=True, check=True).stdout
    assert '"Current"=dword:00000002' in out
    assert '"DumpFile"=str(2):"%SystemRoot%\\\\MEMORY.DMP"' in out     # str(2): REG_EXPAND_SZ
    assert "ControlSet002" in out and "Select" in out


def test_unedited_minimal_hive_is_readable_as_is(tmp_path):
    p = tmp_path / "BCD"
    write_minimal_hive(p, root_name="NewStoreRoot")
    h = Hive(p)
    assert h.root_name() == "NewStoreRoot" and h.child_names("") == [] and h.values(h.root) == []
