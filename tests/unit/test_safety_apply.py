"""The safety engine on bare hive files (HostFileTarget, no appliance): plan output, dry run, backup
and manifest, atomic apply with read-back, rollback on injected failures, refusals."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import pytest

from rescue.cli.common import run_plan

from rescue.report import Reporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from safety_helpers import make_hive  # noqa: E402

from rescue import __version__  # noqa: E402
from rescue.errors import DeclinedError, UnsafeStateError, UsageError, WriteFailedError  # noqa: E402
from rescue.hive import Hive  # noqa: E402
from rescue.hive.values import REG_DWORD, REG_SZ, encode_dword, encode_sz  # noqa: E402
from rescue.safety.apply import ApplyResult, Faults, execute  # noqa: E402
from rescue.safety.backup import list_backups  # noqa: E402
from rescue.safety.plan import DeleteKey, DeleteValue, FileRef, Plan, SetValue, Step  # noqa: E402
from rescue.target import HostFileTarget  # noqa: E402

CC = "ControlSet001\\Control\\CrashControl"


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """Every file below `folder` with its sha256: 'nothing else changed' in one comparison."""
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def crash_plan(ref: FileRef) -> Plan:
    return Plan("crash dumps on", (
        Step("t.crash", "enable crash dumps", (
            SetValue(ref, CC, "CrashDumpEnabled", REG_DWORD, encode_dword(1), REG_DWORD, encode_dword(0), reason="r"),
            SetValue(ref, CC, "NMICrashDump", REG_DWORD, encode_dword(1)),
            DeleteValue(ref, CC, "DumpFile", REG_SZ, encode_sz("%SystemRoot%\\MEMORY.DMP")),
        )),
        Step("t.svc", "drop a service", (DeleteKey(ref, "ControlSet001\\Services\\Old"),)),
        Step("t.none", "already fine", skipped="nothing to change"),
    ))


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    from rescue.cli import common

    monkeypatch.setattr(common.out, "width", 400)      # tmp paths are long: keep table cells whole


@pytest.fixture
def hive(tmp_path):
    return make_hive(tmp_path / "SYSTEM")


def run(path: Path, plan_for, **kw) -> ApplyResult:
    with HostFileTarget(str(path), write=not kw.get("dry_run", False)) as t:
        kw = {"dry_run": False, "assume_yes": True, "json_output": False, **kw}
        return run_plan(t, plan_for(t.main), dry_run=kw["dry_run"], yes=kw["assume_yes"],
                        json_output=kw["json_output"], discard_hive_logs=kw.get("discard_hive_logs", False))


def test_apply_changes_exactly_the_planned_values_and_keeps_a_backup(hive, capsys):
    original = hive.read_bytes()
    result = run(hive, crash_plan)
    out = capsys.readouterr().out
    assert result.applied and result.backup_id and result.files == (FileRef(str(hive)),)
    for text in ("crash dumps on", "CrashDumpEnabled", "0 (0x0) [REG_DWORD] → 1 (0x1) [REG_DWORD]",
                 "(absent) → 1 (0x1)", "→ (deleted)", "skipped: nothing to change", "Applied"):
        assert text in out
    with Hive(hive) as h:
        assert h.get_value(CC, "CrashDumpEnabled") == 1 and h.get_value(CC, "NMICrashDump") == 1
        assert h.get(CC, "DumpFile") is None and h.find("ControlSet001\\Services\\Old") is None
        assert h.get_value("Select", "Current") == 1
    kept = hive.parent / "SYSTEM.rescue-backup" / result.backup_id / "00-SYSTEM"
    assert kept.read_bytes() == original


def test_manifest_records_originals_plan_and_tool(hive):
    before = sha(hive)
    size = hive.stat().st_size
    result = run(hive, crash_plan)
    m = json.loads((hive.parent / "SYSTEM.rescue-backup" / result.backup_id / "manifest.json").read_text())
    assert (m["id"], m["kind"], m["status"], m["tool"], m["tool_version"]) == \
        (result.backup_id, "apply", "applied", "rescue", __version__)
    assert m["created"].endswith("Z") and m["target"] == str(hive)
    [entry] = m["files"]
    assert entry["file"] == {"path": str(hive), "disk": None, "partition": None}
    assert (entry["role"], entry["existed"], entry["size"], entry["sha256"], entry["stored"]) == \
        ("hive", True, size, before, "00-SYSTEM")
    assert entry["after_sha256"] == sha(hive)
    assert m["plan"] == crash_plan(FileRef(str(hive))).to_json()


def test_dry_run_changes_no_byte_and_makes_no_backup(hive, capsys):
    before = tree(hive.parent)
    result = run(hive, crash_plan, dry_run=True)
    assert (result.dry_run, result.applied, result.backup_id) == (True, False, None)
    assert "Dry run: nothing was written" in capsys.readouterr().out
    assert tree(hive.parent) == before


def test_empty_plan_is_nothing_to_do_without_backup(hive, capsys):
    before = tree(hive.parent)
    result = run(hive, lambda ref: Plan("noop", (Step("t", "fine", skipped="already"),)))
    assert result.nothing_to_do and not result.applied
    assert "Nothing to do" in capsys.readouterr().out
    assert tree(hive.parent) == before


def test_json_output_has_plan_and_result_with_stable_keys(hive, capsys):
    run(hive, crash_plan, json_output=True)
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"plan", "result"}
    assert set(data["result"]) == {"applied", "dry_run", "nothing_to_do", "backup_id", "backup_location",
                                   "files", "notes", "prelude", "ntfs_resets", "sectors"}
    assert data["result"]["applied"] is True and data["plan"]["title"] == "crash dumps on"
    assert data["plan"]["ntfs_resets"] == [] and data["result"]["ntfs_resets"] == []
    assert data["plan"]["sectors"] == [] and data["result"]["sectors"] == []


def test_without_a_terminal_and_without_yes_nothing_is_written(hive, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))       # not a TTY
    before = tree(hive.parent)
    with pytest.raises(UsageError, match="--yes"):
        run(hive, crash_plan, assume_yes=False)
    assert tree(hive.parent) == before


class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("answer, applied", [("n\n", False), ("\n", False), ("yes\n", True)])
def test_prompt_answer_decides(hive, monkeypatch, answer, applied):
    monkeypatch.setattr(sys, "stdin", _Tty(answer))
    before = tree(hive.parent)
    if applied:
        assert run(hive, crash_plan, assume_yes=False).applied
    else:
        with pytest.raises(DeclinedError):
            run(hive, crash_plan, assume_yes=False)
        assert tree(hive.parent) == before


def test_plan_that_does_not_match_the_hive_is_refused(hive):
    before = tree(hive.parent)
    wrong = lambda ref: Plan("x", (Step("t", "t", (SetValue(ref, CC, "CrashDumpEnabled", REG_DWORD, encode_dword(2),
                                                            REG_DWORD, encode_dword(7)),)),))
    with pytest.raises(UnsafeStateError, match="expects"):
        run(hive, wrong)
    assert tree(hive.parent) == before


def test_no_room_for_the_backup_is_refused_before_writing(hive, monkeypatch):
    monkeypatch.setattr(HostFileTarget, "free_bytes", lambda self, ref: 100 << 10)
    before = tree(hive.parent)
    with pytest.raises(UnsafeStateError, match="Not enough free space"):
        run(hive, crash_plan)
    assert tree(hive.parent) == before


# --- rollback --------------------------------------------------------------------------------------
def two_hives(tmp_path):
    a = make_hive(tmp_path / "SYSTEM")
    b = make_hive(tmp_path / "SOFTWARE", {"Microsoft\\Windows NT\\CurrentVersion": [
        ("ProductName", REG_SZ, encode_sz("Windows Server 2019 Datacenter"))]})
    return a, b


def two_file_plan(a: Path, b: Path):
    def plan(_ref):
        return Plan("two files", (
            Step("t.a", "a", (SetValue(FileRef(str(a)), CC, "CrashDumpEnabled", REG_DWORD, encode_dword(1),
                                       REG_DWORD, encode_dword(0)),)),
            Step("t.b", "b", (SetValue(FileRef(str(b)), "Microsoft\\Windows NT\\CurrentVersion", "X", REG_SZ,
                                       encode_sz("y")),)),
        ))
    return plan


@pytest.mark.parametrize("fault", ["raise:after-backup", "raise:mid-upload", "raise:before-rename",
                                   "raise:after-rename", "raise:mid-upload@2", "raise:before-rename@2",
                                   "raise:after-rename@2"])
def test_injected_failure_rolls_back_every_file(tmp_path, monkeypatch, fault, capsys):
    a, b = two_hives(tmp_path)
    originals = {p: p.read_bytes() for p in (a, b)}
    monkeypatch.setenv("RESCUE_FAULT", fault)
    with pytest.raises(WriteFailedError, match="Rolled back") as info:
        run(a, two_file_plan(a, b))
    assert "injected fault" in str(info.value)
    for p, data in originals.items():
        assert p.read_bytes() == data
    assert not list(tmp_path.glob("*.rescue-new"))            # no half-written temporary left
    with HostFileTarget(str(a)) as t:
        [m] = list_backups(t)
    assert m.status == "rolled-back"


def test_new_files_are_staged_synced_once_then_switched_one_at_a_time(tmp_path):
    """The write order the crash guarantees rest on (each sync costs ~0.15 s under TCG, so there are
    no others): both new hives staged, ONE sync (backup + staged copies durable before any original
    changes), then each switched in plan order and synced before the next, then the "applied"
    manifest (staged, synced, switched; the session's close makes that last rename durable)."""
    a, b = two_hives(tmp_path)
    events: list[tuple[str, ...]] = []

    class Recording(HostFileTarget):
        def stage(self, host_file, ref):
            events.append(("stage", Path(ref.path).name))
            super().stage(host_file, ref)

        def switch(self, ref):
            events.append(("switch", Path(ref.path).name))
            super().switch(ref)

        def sync(self):
            events.append(("sync",))
            super().sync()

    with Recording(str(a), write=True) as t:
        execute(t, two_file_plan(a, b)(t.main), dry_run=False, reporter=Reporter(assume_yes=True))
    assert events == [("stage", "SYSTEM"), ("stage", "SOFTWARE"), ("sync",),
                      ("switch", "SYSTEM"), ("sync",), ("switch", "SOFTWARE"), ("sync",),
                      ("stage", "manifest.json"), ("sync",), ("switch", "manifest.json")]


def test_host_target_sync_fsyncs_what_was_written_and_its_folder(tmp_path, monkeypatch):
    import os

    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    hive = make_hive(tmp_path / "SYSTEM")
    new = tmp_path / "new"
    new.write_bytes(b"x")
    with HostFileTarget(str(hive), write=True) as t:
        t.stage(new, t.main)
        assert synced == []                     # staged, not yet durable: sync() does that
        t.sync()
        assert synced == [str(tmp_path / "SYSTEM.rescue-new"), str(tmp_path)]
        synced.clear()
        t.switch(t.main)
        t.sync()
        assert synced == [str(hive), str(tmp_path)] and hive.read_bytes() == b"x"


def test_fault_spec_is_validated_and_counts_passages():
    f = Faults("raise:after-rename@2, before-rename")
    assert not f.due("after-rename") and f.due("after-rename") and not f.due("after-rename")
    assert f.due("before-rename") and not f.due("mid-upload")
    with pytest.raises(ValueError):
        Faults("somewhere")


def test_two_plans_in_one_command_each_see_the_bytes_the_other_wrote(hive):
    from rescue.safety.apply import safe_hive_copy

    original = hive.read_bytes()
    with HostFileTarget(str(hive), write=True) as t:
        for n in (1, 2):
            with Hive(safe_hive_copy(t, t.main)) as h:      # read after the previous apply
                cur = h.get(CC, "CrashDumpEnabled")
            plan = Plan(f"p{n}", (Step("t", "t", (SetValue(t.main, CC, "CrashDumpEnabled", REG_DWORD,
                                                           encode_dword(n + 5), cur.type, cur.data),)),))
            assert execute(t, plan, dry_run=False, reporter=Reporter(assume_yes=True)).applied
    with Hive(hive) as h:
        assert h.get_value(CC, "CrashDumpEnabled") == 7
    from rescue.safety.undo import undo

    for _ in range(2):
        with HostFileTarget(str(hive), write=True) as t:
            undo(t, dry_run=False, reporter=Reporter(assume_yes=True))
    assert hive.read_bytes() == original


# --- a prelude (fix --expand's grow step): shown, covered by the one confirmation, run before the backup
class _Grown:
    def to_json(self) -> dict:
        return {"grown": True}


def _with_prelude(events: list, *, changes: bool):
    from rescue.safety.plan import Prelude

    def plan_for(ref: FileRef) -> Plan:
        base = crash_plan(ref) if changes else Plan("only grow", ())
        pre = Prelude("space.expand", "Grow the disk", ("grow partition 3", "grow its NTFS"),
                      run=lambda: events.append("prelude") or _Grown(), data={"expand": {"new_disk_size": 4}})
        return Plan(base.title, base.steps, prelude=pre)
    return plan_for


def test_prelude_runs_after_confirmation_and_before_the_backup(hive, capsys, monkeypatch):
    import rescue.safety.backup as B

    events: list = []
    real = B.make_backup
    monkeypatch.setattr(B, "make_backup", lambda *a, **kw: events.append("backup") or real(*a, **kw))
    result = run(hive, _with_prelude(events, changes=True))
    out = capsys.readouterr().out
    assert events == ["prelude", "backup"]
    assert "First: Grow the disk" in out and "grow its NTFS" in out
    assert result.applied and result.backup_id and result.prelude.to_json() == {"grown": True}
    with Hive(hive) as h:
        assert h.get_value(CC, "CrashDumpEnabled") == 1


def test_prelude_declined_or_dry_run_never_runs(hive, monkeypatch, capsys):
    events: list = []
    before = tree(hive.parent)
    run(hive, _with_prelude(events, changes=True), dry_run=True)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    with pytest.raises(DeclinedError):
        run(hive, _with_prelude(events, changes=True), assume_yes=False)
    assert events == [] and tree(hive.parent) == before


def test_prelude_alone_makes_no_backup_folder(hive, capsys):
    events: list = []
    before = tree(hive.parent)
    result = run(hive, _with_prelude(events, changes=False), json_output=True)
    data = json.loads(capsys.readouterr().out)
    assert events == ["prelude"] and result.applied and result.backup_id is None
    assert data["plan"]["prelude"]["expand"] == {"new_disk_size": 4}
    assert data["result"]["prelude"] == {"grown": True}
    assert tree(hive.parent) == before
