"""A scenario is one module: registering one (here, inside the test) gives `rescue fix NAME`,
`rescue diagnose` (triage and --scenario), --dry-run, --json and `rescue scenarios` with no other
file touched. The disk is a SYSTEM hive file: the only stand-in is the CLI's disk opener."""

from __future__ import annotations

import contextlib
import hashlib

import pytest

from rescue.hive import Hive
from rescue.hive.values import REG_SZ, encode_sz
from rescue.repairs import sources
from rescue.repairs.base import Check, Option, OptionKind, Scenario, register, unregister
from rescue.repairs.findings import FOUND, OK, Finding
from rescue.safety.plan import SetValue, Step
from rescue.target import HostFileTarget

KEY = "ControlSet001\\Control\\ComputerName\\ComputerName"


def _check(ctx):
    with Hive(sources.hive_path(ctx, "SYSTEM")) as h:
        name = h.get_value(KEY, "ComputerName")
    want = ctx.options.want
    return Finding("probe-computer-name", "computer name as wanted", OK if name == want else FOUND,
                   f"ComputerName is {name}", fixable=name != want)


def _plan(ctx, finding):
    if finding.status != FOUND:
        return Step("probe.name", "Set the computer name", skipped="already")
    path = sources.hive_path(ctx, "SYSTEM")
    with Hive(path) as h:
        before = h.get(KEY, "ComputerName")
    return Step("probe.name", "Set the computer name", (
        SetValue(sources.hive_ref(ctx, "SYSTEM"), KEY, "ComputerName", REG_SZ, encode_sz(ctx.options.want),
                 before.type, before.data, reason="probe"),))


@pytest.fixture
def probe(monkeypatch, sample_hives):
    from rescue.cli import fix_cmd

    register(Scenario(
        name="probe-name", aliases=("0xDEAD0001",), summary="A throw-away scenario of this test",
        title="Fix the probe", options=(Option("want", "--want", "Name wanted.", default="FIXED"),),
        checks=(Check("probe-computer-name", "computer name as wanted", _check, _plan, options=("want",)),)))

    @contextlib.contextmanager
    def open_hive_file(paths, *, write=False, reporter=None, **_):
        with HostFileTarget(paths[0], write=write, reporter=reporter) as t:
            yield t

    monkeypatch.setattr(fix_cmd, "open_disks", open_hive_file)
    try:
        yield sample_hives.system(computer_name="OLD")
    finally:
        unregister("probe-name")


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_listed_by_scenarios(probe, cli):
    names = [s["name"] for s in cli("scenarios", "--json").json()["scenarios"]]
    assert "probe-name" in names and "no-memory" in names
    assert "probe-name" in cli("scenarios").out
    assert "probe-name" in cli("fix", "--help").out


def test_diagnose_narrowed_to_it(probe, cli):
    r = cli("diagnose", probe, "--scenario", "probe-name", "--json")
    assert r.code == 1, r.err
    doc = r.json()
    assert [(f["id"], f["status"], f["scenario"]) for f in doc["findings"]] == \
        [("probe-computer-name", "found", "probe-name")]
    assert doc["fix_commands"] == [f"rescue fix probe-name {probe}"]
    assert doc["scenarios"] == [{"name": "probe-name", "summary": "A throw-away scenario of this test",
                                 "found": ["probe-computer-name"], "fix_command": f"rescue fix probe-name {probe}"}]
    text = cli("diagnose", probe, "-s", "0xdead0001")
    assert text.code == 1 and "ComputerName is OLD" in text.out and f"rescue fix probe-name {probe}" in text.out


def test_its_option_is_an_option_of_diagnose(probe, cli):
    # diagnose builds its options from the registry when used: a scenario registered after the
    # scenario modules were loaded still adds its own.
    assert "--want" in cli("diagnose", "--help").out
    healthy = cli("diagnose", probe, "-s", "probe-name", "--want", "OLD", "--json")
    assert healthy.code == 0, healthy.err
    assert [f["status"] for f in healthy.json()["findings"]] == ["ok"]


def test_triage_runs_it_with_every_other_scenario(probe, cli):
    doc = cli("diagnose", probe, "--json").json()
    ran = {f["scenario"] for f in doc["findings"]}
    assert {"probe-name", "no-memory"} <= ran
    assert f"rescue fix probe-name {probe}" in doc["fix_commands"]


def test_fix_dry_run_then_fix_then_undo(probe, cli):
    before = _sha(probe)
    dry = cli("fix", "probe-name", probe, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    d = dry.json()
    assert d["result"]["dry_run"] and d["after"] is None and _sha(probe) == before
    assert d["plan"]["steps"][0]["changes"][0]["after"]["value"] == "FIXED"

    r = cli("fix", "0xDEAD0001", probe, "--want", "NEW", "--yes", "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["scenario"] == "probe-name" and doc["result"]["applied"] and doc["after"]["healthy"]
    with Hive(probe) as h:
        assert h.get_value(KEY, "ComputerName") == "NEW"

    text = cli("fix", "probe-name", probe, "--want", "NEW", "--yes")
    assert text.code == 0 and "Nothing to do" in text.out

    assert cli("undo", probe, "--yes").code == 0
    assert _sha(probe) == before


def test_unknown_scenario_is_a_usage_error(probe, cli):
    r = cli("diagnose", probe, "--scenario", "nope")
    assert r.code == 2 and "No scenario is called 'nope'" in r.err and "Traceback" not in r.err
