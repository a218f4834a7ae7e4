"""Every registered check has validation cases: one sample with the problem (found) and one
without (ok). A new check without them fails here."""

from __future__ import annotations

import pytest

from harness import all_cases
from rescue.repairs.base import all_checks
from rescue.repairs.findings import FOUND, OK


def test_every_check_has_a_found_and_an_ok_case():
    cases = all_cases()
    missing = []
    for scenario, check in all_checks():
        statuses = {c.status for c in cases if c.check == check.id}
        for want in (FOUND, OK):
            if want not in statuses:
                missing.append(f"{scenario.name}/{check.id}: no {want.value} case")
    assert not missing, "validation cases missing:\n" + "\n".join(missing)


def test_cases_name_registered_checks_only():
    ids = {c.id for _, c in all_checks()}
    stray = sorted({c.check for c in all_cases()} - ids)
    assert not stray, f"cases for checks that are not registered: {stray}"


def test_the_meta_test_sees_a_check_without_cases():
    from rescue.repairs.base import Check, Scenario, register, unregister
    from rescue.repairs.findings import Finding

    register(Scenario("meta-probe", "probe", "probe", checks=(
        Check("meta-probe-check", "probe", lambda ctx: Finding("meta-probe-check", "probe", OK, "")),)))
    try:
        with pytest.raises(AssertionError, match="meta-probe-check: no found case"):
            test_every_check_has_a_found_and_an_ok_case()
    finally:
        unregister("meta-probe")
