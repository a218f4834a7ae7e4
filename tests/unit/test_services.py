"""rescue.registry.services (ImagePath resolution, third-party by name and place) and
`rescue services list|disable|enable` on a SYSTEM hive file (no appliance; read back with
python-hivex, not rescue's hive reader)."""

from __future__ import annotations

import hashlib

import hivex
import pytest

from rescue.registry.services import Service, resolve_image
from rescue.samples import hives as H
from rescue.samples.disks import BOOT_BROKEN_FILTERS, BOOT_BROKEN_SERVICES


@pytest.mark.parametrize("name,image,type_,want", [
    ("disk", "System32\\drivers\\disk.sys", 1, "\\Windows\\System32\\drivers\\disk.sys"),
    ("storvsc", "\\SystemRoot\\system32\\drivers\\storvsc.sys", 1, "\\Windows\\system32\\drivers\\storvsc.sys"),
    ("Ntfs", None, 2, "\\Windows\\System32\\drivers\\Ntfs.sys"),
    ("Ntfs", "", 2, "\\Windows\\System32\\drivers\\Ntfs.sys"),
    ("MpKslb", "\\??\\C:\\ProgramData\\Microsoft\\Windows Defender\\x\\MpKslb.sys", 1,
     "\\ProgramData\\Microsoft\\Windows Defender\\x\\MpKslb.sys"),
    ("other", "\\??\\E:\\agent\\other.sys", 1, None),
    ("clfs", "System32\\CLFS.sys", 1, "\\Windows\\System32\\CLFS.sys"),
    ("svc", None, 16, None),
])
def test_resolve_image(name, image, type_, want):
    assert resolve_image(name, image, type_) == want


def _svc(name, file):
    return Service(name, 0, 1, None, None, 1, (), file)


def test_third_party_by_name_and_place():
    assert _svc("disk", "\\Windows\\System32\\drivers\\disk.sys").inbox
    assert _svc("netvsc", "\\Windows\\System32\\DriverStore\\FileRepository\\netvsc.inf_amd64_1\\netvsc.sys").inbox
    assert _svc("csagent", "\\Windows\\System32\\drivers\\CrowdStrike\\csagent.sys").third_party_reason == \
        "not a driver Windows installs"
    assert _svc("disk", "\\Program Files\\Vendor\\disk.sys").third_party_reason == \
        "image outside \\Windows\\System32\\drivers"
    assert _svc("disk", None).third_party_reason == "image outside the Windows volume"


@pytest.fixture
def system(tmp_path):
    return H.build_system_hive(tmp_path / "SYSTEM", set_services={1: BOOT_BROKEN_SERVICES},
                               set_class_filters={1: BOOT_BROKEN_FILTERS})


def _start(path, cs, name):
    h = hivex.Hivex(str(path))
    node = h.root()
    for part in (cs, "Services", name):
        node = h.node_get_child(node, part)
    v = next(v for v in h.node_values(node) if h.value_key(v) == "Start")
    return h.value_dword(v)


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_list_json(system, cli):
    r = cli("services", "list", system, "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["control_set"] == "ControlSet001 (Select\\Current)"
    assert [(d["name"], d["start_type"], d["group"], d["third_party"], d["file_present"]) for d in doc["drivers"]] == \
        [("contosoflt", "boot", "FSFilter Bottom", True, None)]
    everything = cli("services", "list", system, "--all", "--json").json()["drivers"]
    assert {"vmbus", "disk"} <= {d["name"] for d in everything} and "storvsc" not in {d["name"] for d in everything}
    assert len(everything) == 15                                          # storvsc is demand start here
    assert "contosoflt" in cli("services", "list", system).out


OLD_KEYS = {"name", "start", "start_type", "type", "group", "image_path", "file", "file_present", "error_control",
            "start_override", "third_party", "third_party_reason"}


def test_list_automatic_json(tmp_path, cli):
    from rescue.samples.system_state import MISSING_EXE_SERVICES

    system = H.build_system_hive(tmp_path / "SYSTEM", set_services={1: (*BOOT_BROKEN_SERVICES, *MISSING_EXE_SERVICES)})
    plain = cli("services", "list", system, "--json").json()
    assert plain["automatic"] is False and [d["name"] for d in plain["drivers"]] == ["contosoflt"]
    assert OLD_KEYS <= set(plain["drivers"][0])                           # keys only added
    doc = cli("services", "list", system, "--automatic", "--json").json()
    assert doc["automatic"] is True and set(doc) == {"control_set", "all", "automatic", "drivers"}
    by_name = {d["name"]: d for d in doc["drivers"]}
    assert list(by_name) == ["contosoflt", "ContosoAgent", "ContosoUpdate"]    # boot start first; Dhcp is Windows'
    agent = by_name["ContosoAgent"]
    assert OLD_KEYS <= set(agent)
    assert (agent["start_type"], agent["type_text"], agent["error_control_text"], agent["file"]) == \
        ("automatic", "own process 0x10", "ErrorControl 2 severe", "\\Program Files\\Contoso\\Agent\\ContosoAgent.exe")
    assert agent["image"] == {"stored": '"C:\\Program Files\\Contoso\\Agent\\ContosoAgent.exe" -service',
                              "candidates": ["\\Program Files\\Contoso\\Agent\\ContosoAgent.exe"],
                              "path": "\\Program Files\\Contoso\\Agent\\ContosoAgent.exe", "arguments": "-service",
                              "unchecked": None}
    assert agent["file_present"] is None and agent["missing_files"] == [] and agent["service_dll"] is None
    assert by_name["ContosoUpdate"]["image"]["candidates"] == [
        "\\Program.exe", "\\Program Files\\Contoso\\Update\\ContosoUpdate.exe"]
    every = cli("services", "list", system, "--automatic", "--all", "--json").json()["drivers"]
    assert "Dhcp" in {d["name"] for d in every}
    text = cli("services", "list", system, "--automatic").out
    assert "automatic-start services" in text and "ContosoAgent" in text


def test_disable_dry_run_then_disable_enable_undo(system, cli):
    before = _sha(system)
    r = cli("services", "disable", system, "contosoflt", "--dry-run", "--json")
    assert r.code == 0 and _sha(system) == before
    assert r.json()["plan"]["steps"][0]["changes"][0]["after"]["value"] == 4

    assert cli("services", "disable", system, "contosoflt", "--yes").code == 0
    assert _start(system, "ControlSet001", "contosoflt") == 4
    assert _start(system, "ControlSet001", "storvsc") == 3               # nothing else changed
    assert "contosoflt" not in cli("services", "list", system).out

    # contosoflt only exists in ControlSet001: no other set says how it started.
    r = cli("services", "enable", system, "contosoflt")
    assert r.code == 2 and "--start" in r.err
    assert cli("services", "enable", system, "contosoflt", "--start", "boot", "--yes").code == 0
    assert _start(system, "ControlSet001", "contosoflt") == 0

    assert cli("undo", system, "--yes").code == 0                        # the enable
    assert cli("undo", system, "--yes").code == 0                        # the disable
    assert _sha(system) == before


def test_enable_takes_the_other_control_set(tmp_path, cli):
    p = H.build_system_hive(tmp_path / "SYSTEM", set_services={1: (H.ServiceSpec(
        "contosoflt", 4, 1, "FSFilter Bottom", "System32\\drivers\\contosoflt.sys"),), 2: (H.ServiceSpec(
            "contosoflt", 1, 1, "FSFilter Bottom", "System32\\drivers\\contosoflt.sys"),)})
    r = cli("services", "enable", p, "contosoflt", "--yes", "--json")
    assert r.code == 0, r.err
    assert r.json()["plan"]["steps"][0]["notes"] == ["Start system (1), as in ControlSet002"]
    assert _start(p, "ControlSet001", "contosoflt") == 1


def test_refusals(system, cli):
    before = _sha(system)
    r = cli("services", "disable", system, "storvsc", "--yes")
    assert r.code == 2 and "path to the disk" in r.err and "Traceback" not in r.err
    r = cli("services", "disable", system, "nosuchdriver", "--yes")
    assert r.code == 7 and "no service named nosuchdriver" in r.err
    r = cli("services", "enable", system, "contosoflt", "--start", "disabled")
    assert r.code == 2
    assert _sha(system) == before


def test_list_automatic_presence_from_listings(tmp_path):
    """`list_drivers(automatic=True)` with the folder listings a volume would give: an .exe gone, a
    ServiceDll gone (the host svchost.exe there), an unquoted path found under its full name."""
    from rescue.repairs import sources
    from rescue.repairs.base import OptionValues
    from rescue.repairs.context import RepairContext
    from rescue.repairs.services_ops import list_drivers
    from rescue.repairs.services_source import preset_listing
    from rescue.samples.system_state import MISSING_EXE_SERVICES
    from rescue.target import HostFileTarget

    hosted = H.ServiceSpec("ContosoHost", 2, 0x20, None, "%SystemRoot%\\System32\\svchost.exe -k Contoso", 1,
                           service_dll="C:\\Program Files\\Contoso\\Host\\host.dll")
    path = H.build_system_hive(tmp_path / "SYSTEM", set_services={1: (*MISSING_EXE_SERVICES, hosted)})
    ctx = RepairContext(HostFileTarget(str(path)), OptionValues({"discard_hive_logs": False}))
    sources.preset_hive(ctx, "SYSTEM", path)
    for folder, names in {"\\": ["Program Files"], "\\Windows\\System32": ["svchost.exe"],
                          "\\Program Files\\Contoso\\Agent": ["agent.config"],
                          "\\Program Files\\Contoso\\Update": ["ContosoUpdate.exe"],
                          "\\Program Files\\Contoso\\Host": []}.items():
        preset_listing(ctx, folder, names)
    got = {d.service.name: (d.present, d.missing) for d in list_drivers(ctx, automatic=True).drivers}
    assert got == {"ContosoAgent": (False, ("\\Program Files\\Contoso\\Agent\\ContosoAgent.exe",)),
                   "ContosoUpdate": (True, ()),
                   "ContosoHost": (False, ("\\Program Files\\Contoso\\Host\\host.dll",))}
