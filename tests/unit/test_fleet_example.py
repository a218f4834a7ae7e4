"""The shipped fleet playbook (examples/ansible/rescue-fleet.yml) is valid YAML, and every rescue
command it runs exists with the options it passes (the same check as README's commands)."""

from __future__ import annotations

from pathlib import Path

import yaml

import readme_contract as R

PLAYBOOK = R.REPO / "examples" / "ansible" / "rescue-fleet.yml"


def _rescue_commands():
    [play] = yaml.safe_load(PLAYBOOK.read_text())
    for task in play["tasks"]:
        cmd = task.get("ansible.builtin.command")
        if cmd:
            words = [str(w).replace("{{ scenario }}", "no-memory") for w in cmd["argv"]]
            assert words[0] == "rescue"
            yield words


def test_playbook_runs_real_commands(cli, tmp_path):
    from test_readme_contract import _problems

    commands = list(_rescue_commands())
    assert [c[1] for c in commands] == ["diagnose", "fix"]
    assert _problems([(PLAYBOOK, " ".join(c)) for c in commands]) == []
    # The manifest the playbook writes is what --manifest reads: one OS disk per line.
    for words in commands:
        assert "--manifest" in words and "--json" in words


def test_playbook_accepts_the_per_vm_codes_and_fails_on_tool_errors():
    [play] = yaml.safe_load(PLAYBOOK.read_text())
    fix = next(t for t in play["tasks"] if "fix" in str(t.get("ansible.builtin.command", {}).get("argv")))
    from rescue.errors import ExitCode

    for code in (ExitCode.USAGE, ExitCode.WRITE_FAILED, ExitCode.VERIFY_FAILED, ExitCode.APPLIANCE, ExitCode.BUG):
        assert str(code) in fix["failed_when"]
