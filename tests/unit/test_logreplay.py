"""Transaction log replay (rescue.safety.logreplay): Marvin32 against hashes Windows wrote, the real
dirty SYSTEM_B hive with its .LOG1/.LOG2, and the sequence rules on logs built from real hive pages."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import need  # noqa: E402
from safety_helpers import changed_pages, dirty_hive_with_log, log_entry, log_file, make_hive, sequences  # noqa: E402

from rescue.hive import Hive  # noqa: E402
from rescue.hive.regf import parse_header  # noqa: E402
from rescue.hive.values import REG_DWORD, encode_dword  # noqa: E402
from rescue.safety.logreplay import ReplayError, choose_logs, marvin32, parse_log, replay  # noqa: E402

SYSTEM_B = "system/regipy_win10_gpt_dirty_SYSTEM_B"


def _real(name):
    hive = need(SYSTEM_B)
    need(SYSTEM_B + ".LOG1")
    need(SYSTEM_B + ".LOG2")
    return hive


# --- Marvin32 against Windows ---------------------------------------------------------------------
def test_marvin32_reproduces_the_hashes_windows_wrote_in_a_real_log():
    data = (_real(SYSTEM_B).parent / (Path(SYSTEM_B).name + ".LOG2")).read_bytes()
    pos, checked = 512, 0
    while data[pos:pos + 4] == b"HvLE" and checked < 5:
        size = struct.unpack_from("<I", data, pos + 4)[0]
        hash1, hash2 = struct.unpack_from("<QQ", data, pos + 24)
        assert marvin32(data[pos:pos + 32]) == hash2
        assert marvin32(data[pos + 40:pos + size]) == hash1
        pos += size
        checked += 1
    assert checked == 5


def test_marvin32_tail_bytes_and_seed_matter():
    assert marvin32(b"") != marvin32(b"\x00")
    assert marvin32(b"abc") != marvin32(b"abd")
    assert marvin32(b"abcd", seed=1) != marvin32(b"abcd")
    assert marvin32(b"abcdefg") < 1 << 64


# --- the real dirty SYSTEM hive -------------------------------------------------------------------
@pytest.fixture(scope="module")
def replayed_system_b(tmp_path_factory):
    hive = _real(SYSTEM_B)
    logs = [(s, Path(str(hive) + s).read_bytes()) for s in (".LOG1", ".LOG2")]
    result = replay(hive.read_bytes(), logs)
    out = tmp_path_factory.mktemp("replay") / "SYSTEM"
    out.write_bytes(result.data)
    return hive, result, out


def test_real_logs_are_parsed_as_windows_wrote_them():
    hive = _real(SYSTEM_B)
    log1 = parse_log(".LOG1", Path(str(hive) + ".LOG1").read_bytes())
    log2 = parse_log(".LOG2", Path(str(hive) + ".LOG2").read_bytes())
    assert (log1.format, log1.sequence, [e.sequence for e in log1.entries]) == ("new", 2107, [2107, 2108, 2109, 2110])
    assert (log2.format, log2.sequence) == ("new", 2111)
    assert [e.sequence for e in log2.entries] == list(range(2111, 2131))
    # SYSTEM_B is 1622/1621: both logs are newer and LOG2 continues LOG1 exactly.
    assert [lg.name for lg in choose_logs(1621, [log2, log1])] == [".LOG1", ".LOG2"]


def test_real_dirty_hive_replays_to_a_clean_hive_hivex_opens(replayed_system_b):
    original, result, out = replayed_system_b
    assert parse_header(original.read_bytes()).dirty
    header = parse_header(result.data)
    assert (header.primary_sequence, header.secondary_sequence) == (2130, 2130)
    assert header.checksum_ok and not header.dirty
    assert header.hive_bins_size == 12591104 == result.hive_bins_size   # the logs grew the hive
    assert result.entries == 24 and result.applied == ((".LOG1", 2107, 2110), (".LOG2", 2111, 2130))
    with Hive(out) as h:
        assert "ControlSet001" in h.child_names("")


def test_real_replay_brings_data_only_the_logs_hold(replayed_system_b):
    original, _, out = replayed_system_b
    service = "ControlSet001\\Services\\ad_driver"
    with Hive(original) as before:
        assert before.find(service) is None
        assert before.get("MountedDevices", "\\DosDevices\\F:") is None
        assert before.get_value("ControlSet001\\Services\\SharedAccess\\Epoch2", "Epoch") == 0x42
    with Hive(out) as after:
        assert after.get_value(service, "ImagePath") == "\\??\\C:\\Users\\jcloudy\\AppData\\Local\\Temp\\ad_driver.sys"
        assert after.get_value(service, "DisplayName") == "AccessData Driver"
        assert after.get("MountedDevices", "\\DosDevices\\F:").data[8:] == b"\x00\x00\x00\x00"
        # Counters move forward (a replay in the wrong order would move them back).
        assert after.get_value("ControlSet001\\Services\\SharedAccess\\Epoch2", "Epoch") == 0x45


# --- synthetic logs from real hive pages ----------------------------------------------------------
def test_replay_writes_the_logged_pages_and_makes_the_hive_clean(tmp_path):
    hive, recovered = dirty_hive_with_log(tmp_path, seq=10)
    assert sequences(hive) == (10, 9)
    result = replay(hive.read_bytes(), [(".LOG1", (tmp_path / "SYSTEM.LOG1").read_bytes()),
                                        (".LOG2", b"")])
    bins = struct.unpack_from("<I", recovered, 40)[0]
    assert result.data[4096:4096 + bins] == recovered[4096:4096 + bins]
    assert struct.unpack_from("<II", result.data, 4) == (10, 10)
    out = tmp_path / "out"
    out.write_bytes(result.data)
    with Hive(out) as h:
        assert h.get_value("ControlSet001\\Services\\FromLog", "Start") == 3


def _two_step_logs(tmp_path):
    """Hive at 5/4 and two entries (5 then 6), each adding one key: what each log would hold."""
    hive = make_hive(tmp_path / "H")
    from safety_helpers import set_sequences

    set_sequences(hive, 4, 4)
    base = hive.read_bytes()
    states = [base]
    for i in (1, 2):
        p = tmp_path / f"s{i}"
        p.write_bytes(states[-1])
        with Hive(p, write=True) as h:
            h.ensure_key(f"Step{i}")
            h.set(f"Step{i}", "N", REG_DWORD, encode_dword(i))
            h.commit()
        states.append(p.read_bytes())
    entries = [log_entry(5 + i, struct.unpack_from("<I", states[i + 1], 40)[0], changed_pages(states[i], states[i + 1]))
               for i in range(2)]
    set_sequences(hive, 5, 4)
    return hive, base, entries, states


def test_entries_split_over_both_logs_apply_in_sequence_order(tmp_path):
    hive, base, (e5, e6), states = _two_step_logs(tmp_path)
    # LOG2 holds the first entry, LOG1 the second: the order comes from the sequence numbers.
    result = replay(hive.read_bytes(), [(".LOG1", log_file(base, 6, [e6])), (".LOG2", log_file(base, 5, [e5]))])
    assert result.applied == ((".LOG2", 5, 5), (".LOG1", 6, 6))
    out = tmp_path / "out"
    out.write_bytes(result.data)
    with Hive(out) as h:
        assert (h.get_value("Step1", "N"), h.get_value("Step2", "N")) == (1, 2)


def test_a_bad_hash_ends_the_log_there(tmp_path):
    hive, base, (e5, e6), _ = _two_step_logs(tmp_path)
    broken = bytearray(e6)
    broken[-1] ^= 0xFF                          # one byte of the last page
    result = replay(hive.read_bytes(), [(".LOG1", log_file(base, 5, [e5, bytes(broken)]))])
    assert result.applied == ((".LOG1", 5, 5),)
    out = tmp_path / "out"
    out.write_bytes(result.data)
    with Hive(out) as h:
        assert h.get_value("Step1", "N") == 1 and h.find("Step2") is None


def test_no_valid_entry_means_no_replay(tmp_path):
    hive, base, (e5, _), _ = _two_step_logs(tmp_path)
    broken = bytearray(e5)
    broken[30] ^= 1                             # Hash-1 itself
    with pytest.raises(ReplayError, match="no transaction log holds entries"):
        replay(hive.read_bytes(), [(".LOG1", log_file(base, 5, [bytes(broken)]))])


def test_a_log_older_than_the_hive_is_not_applied(tmp_path):
    hive, base, (e5, e6), _ = _two_step_logs(tmp_path)
    from safety_helpers import set_sequences

    set_sequences(hive, 7, 6)                   # the primary already holds entry 5
    old = log_file(base, 5, [e5])
    assert choose_logs(6, [parse_log(".LOG1", old)]) == []
    with pytest.raises(ReplayError):
        replay(hive.read_bytes(), [(".LOG1", old)])
    result = replay(hive.read_bytes(), [(".LOG1", old), (".LOG2", log_file(base, 6, [e6]))])
    assert result.applied == ((".LOG2", 6, 6),)


def test_entries_must_be_consecutive_from_the_logs_own_sequence(tmp_path):
    hive, base, (e5, e6), _ = _two_step_logs(tmp_path)
    log = parse_log(".LOG1", log_file(base, 4, [e5, e6]))   # header says 4: entry 5 is not "next"
    assert log.entries == ()


def test_old_format_logs_are_recognised_and_not_replayed(tmp_path):
    hive = make_hive(tmp_path / "H")
    from safety_helpers import set_sequences

    set_sequences(hive, 3, 2)
    old = log_file(hive.read_bytes(), 3, [b"DIRT" + b"\xff" * 508], file_type=1)
    assert parse_log(".LOG1", old).format == "old"
    with pytest.raises(ReplayError, match="old"):
        replay(hive.read_bytes(), [(".LOG1", old)])


def test_empty_and_foreign_logs_are_classified():
    assert parse_log(".LOG1", b"").format == "empty"
    assert parse_log(".LOG1", b"\x00" * 4096).format == "empty"
    assert parse_log(".LOG1", b"garbage" * 100).format == "invalid"


def test_a_hive_with_a_bad_base_block_checksum_is_not_replayed(tmp_path):
    hive, _ = dirty_hive_with_log(tmp_path)
    data = bytearray(hive.read_bytes())
    data[100] ^= 0xFF
    with pytest.raises(ReplayError, match="checksum"):
        replay(bytes(data), [(".LOG1", (tmp_path / "SYSTEM.LOG1").read_bytes())])
