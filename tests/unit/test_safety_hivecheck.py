"""Dirty hives and transaction logs through the safety engine on bare hive files: refusal with nothing
written, --discard-hive-logs, replay before editing (synthetic logs and the real SYSTEM_B), logs
emptied after the upload, undo restoring hive and logs byte for byte."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

from rescue.report import Reporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import need  # noqa: E402
from safety_helpers import dirty_hive_with_log, log_entry, log_file, make_hive, sequences, set_sequences  # noqa: E402

from rescue.errors import UnsafeStateError  # noqa: E402
from rescue.hive import Hive  # noqa: E402
from rescue.hive.values import REG_DWORD, encode_dword  # noqa: E402
from rescue.safety.apply import execute  # noqa: E402
from rescue.safety.hivecheck import assess, safe_hive_copy  # noqa: E402
from rescue.safety.plan import Plan, SetValue, Step  # noqa: E402
from rescue.safety.undo import undo  # noqa: E402
from rescue.target import HostFileTarget  # noqa: E402

CC = "ControlSet001\\Control\\CrashControl"


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def nmi_plan(ref, before=None):
    return Plan("nmi", (Step("t.nmi", "NMI crash dump", (
        SetValue(ref, CC, "NMICrashDump", REG_DWORD, encode_dword(1),
                 REG_DWORD if before is not None else None, before),),),))


def apply(path: Path, *, discard=False, plan=nmi_plan):
    with HostFileTarget(str(path), write=True) as t:
        ref = t.main
        local = safe_hive_copy(t, ref, discard_hive_logs=discard)
        with Hive(local) as h:                      # plan from what the reader sees, as commands do
            cur = h.get(CC, "NMICrashDump")
        return execute(t, plan(ref, cur.data if cur else None), dry_run=False, reporter=Reporter(assume_yes=True), discard_hive_logs=discard)


def undo_all(path: Path):
    with HostFileTarget(str(path), write=True) as t:
        return undo(t, dry_run=False, reporter=Reporter(assume_yes=True))


def test_clean_hive_with_empty_logs_is_clean(tmp_path):
    hive = make_hive(tmp_path / "SYSTEM")
    (tmp_path / "SYSTEM.LOG1").write_bytes(b"")
    (tmp_path / "SYSTEM.LOG2").write_bytes(b"")
    with HostFileTarget(str(hive)) as t:
        state = assess(t, t.main)
        assert state.verdict == "clean" and state.base == state.original and state.pending_logs == ()
        assert [lg.parsed.name for lg in state.logs] == [".LOG1", ".LOG2"]


def test_dirty_hive_without_logs_is_refused_and_nothing_written(tmp_path, caplog):
    hive = make_hive(tmp_path / "SYSTEM")
    set_sequences(hive, 8, 7)
    before = tree(tmp_path)
    with pytest.raises(UnsafeStateError) as info:
        apply(hive)
    text = str(info.value)
    assert "8/7" in text and "--discard-hive-logs" in text and "Nothing was written" in text
    assert tree(tmp_path) == before
    # Reading is never refused: the reader gets the hive as last fully written, with a warning
    # (through the target's reporter; the base reporter logs it).
    assert "editing it will be refused" in " ".join(caplog.text.split())


def test_discard_hive_logs_edits_the_hive_as_written_and_empties_its_logs(tmp_path):
    hive, _ = dirty_hive_with_log(tmp_path)
    log = bytearray((tmp_path / "SYSTEM.LOG1").read_bytes())
    log[-1] ^= 0xFF                                 # its only entry fails its hash: nothing to replay
    (tmp_path / "SYSTEM.LOG1").write_bytes(bytes(log))
    originals = tree(tmp_path)
    with pytest.raises(UnsafeStateError, match="cannot be replayed"):
        apply(hive)
    assert tree(tmp_path) == originals
    result = apply(hive, discard=True)
    assert result.applied and any("discard" in n for n in result.notes)
    assert (tmp_path / "SYSTEM.LOG1").stat().st_size == 0          # stale entries cannot come back
    with Hive(hive) as h:
        assert h.get_value(CC, "NMICrashDump") == 1
        assert h.find("ControlSet001\\Services\\FromLog") is None   # the log's change was discarded
    p, s = sequences(hive)
    assert p == s
    undo_all(hive)
    after = tree(tmp_path)
    assert {k: after[k] for k in originals} == originals               # hive and both logs byte-identical


@pytest.mark.parametrize("discard", [False, True])
def test_dirty_hive_is_replayed_then_edited_and_logs_emptied(tmp_path, discard):
    # Logs that replay cleanly are replayed even with --discard-hive-logs (the flag only overrides a
    # refusal): throwing away Windows' last writes is never the better outcome.
    hive, _ = dirty_hive_with_log(tmp_path, seq=10)
    originals = tree(tmp_path)
    result = apply(hive, discard=discard)
    assert result.applied and any("replayed 1 log entries" in n for n in result.notes)
    with Hive(hive) as h:
        assert h.get_value("ControlSet001\\Services\\FromLog", "Start") == 3     # from the log
        assert h.get_value(CC, "NMICrashDump") == 1                           # from the plan
    assert sequences(hive)[0] == sequences(hive)[1] > 10
    assert (tmp_path / "SYSTEM.LOG1").stat().st_size == 0
    assert str(hive) in {f.path for f in result.files}
    undo_all(hive)
    after = tree(tmp_path)
    assert {k: after[k] for k in originals} == originals


def test_clean_hive_whose_logs_hold_newer_entries_is_refused(tmp_path):
    hive = make_hive(tmp_path / "SYSTEM")
    set_sequences(hive, 5, 5)
    head = hive.read_bytes()
    page = head[4096:8192]
    (tmp_path / "SYSTEM.LOG1").write_bytes(log_file(head, 6, [log_entry(6, 4096, [(0, page)])]))
    before = tree(tmp_path)
    with pytest.raises(UnsafeStateError, match="newer than the hive"):
        apply(hive)
    assert tree(tmp_path) == before


def test_stale_logs_of_a_clean_hive_are_left_alone(tmp_path):
    hive = make_hive(tmp_path / "SYSTEM")
    set_sequences(hive, 9, 9)
    head = hive.read_bytes()
    stale = log_file(head, 8, [log_entry(8, 4096, [(0, head[4096:8192])])])   # already in the hive
    (tmp_path / "SYSTEM.LOG1").write_bytes(stale)
    result = apply(hive)
    assert result.applied
    assert (tmp_path / "SYSTEM.LOG1").read_bytes() == stale


def test_real_dirty_system_hive_round_trip(tmp_path):
    src = need("system/regipy_win10_gpt_dirty_SYSTEM_B")
    for suffix in ("", ".LOG1", ".LOG2"):
        need(src.name and f"system/regipy_win10_gpt_dirty_SYSTEM_B{suffix}")
        dst = tmp_path / f"SYSTEM{suffix}"
        shutil.copyfile(str(src) + suffix, dst)
        dst.chmod(0o644)
    hive = tmp_path / "SYSTEM"
    originals = tree(tmp_path)
    result = apply(hive)
    assert result.applied
    with Hive(hive) as h:
        assert h.get_value("ControlSet001\\Services\\ad_driver", "DisplayName") == "AccessData Driver"
        assert h.get_value(CC, "NMICrashDump") == 1
        assert h.get_value(CC, "CrashDumpEnabled") == 7                 # untouched values kept
    p, s = sequences(hive)
    assert p == s and p > 2130
    assert (tmp_path / "SYSTEM.LOG1").stat().st_size == 0 == (tmp_path / "SYSTEM.LOG2").stat().st_size
    undo_all(hive)
    after = tree(tmp_path)
    assert {k: after[k] for k in originals} == originals
