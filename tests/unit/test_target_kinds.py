"""A bare hive file has no disk set: code that needs one says so in one sentence (exit code 2),
never with an AttributeError; a file on a disk's volume names its volume, a host file has none."""

from __future__ import annotations

import pytest

from rescue.errors import ExitCode, UsageError
from rescue.fileref import FileRef
from rescue.samples.hives import build_system_hive
from rescue.target import HostFileTarget


@pytest.fixture
def hive_target(tmp_path):
    with HostFileTarget(str(build_system_hive(tmp_path / "SYSTEM"))) as t:
        yield t


def test_a_hive_file_has_no_session_or_layout(hive_target):
    assert hive_target.session is None and hive_target.layout is None
    for ask in (hive_target.disk_set, hive_target.windows_root):
        with pytest.raises(UsageError, match="not a bare hive file") as exc:
            ask()
        assert exc.value.exit_code == ExitCode.USAGE


def test_disk_only_planners_refuse_a_hive_file_in_words(hive_target):
    """The CLI refuses a hive file before planning; a library caller gets the same kind of answer
    from the planner itself (this used to be an AttributeError)."""
    from rescue.files import parse_pattern, plan_delete

    with pytest.raises(UsageError, match="not a bare hive file"):
        plan_delete(hive_target, parse_pattern("Windows\\Temp\\*.tmp"))


def test_a_file_ref_names_its_volume():
    assert FileRef("\\Windows\\System32\\config\\SYSTEM", 0, 3).volume == (0, 3)
    with pytest.raises(ValueError, match="host file"):
        FileRef("/tmp/SYSTEM").volume
