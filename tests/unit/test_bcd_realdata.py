"""Validation against the real BCD stores in ../shared/realdata (one case per store, as regipy does).

The expected listings in data/bcd/*.json were written from realdata/README.md (the facts read there
with python3-hivex and a regf parser, independent of rescue.bcd), with the two ramdisk source devices
read by hand from the value bytes (BCD-REFERENCE.md §6). Every object and every element is compared:
code, bcdedit name, decoded value. Stores absent -> the tests skip.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import REALDATA, need  # noqa: E402

from rescue.bcd import constants as C  # noqa: E402
from rescue.bcd.model import BcdStore  # noqa: E402
from rescue.bcd.render import enum_json, enum_text  # noqa: E402
from rescue.cli.main import run  # noqa: E402
from rescue.errors import CorruptHiveError  # noqa: E402

DATA = Path(__file__).parent / "data" / "bcd"
FULL = ["galton_win7_bios_mbr_BCD", "galton_winpe_media_bios_BCD", "museum_win10_BCD-Template",
        "windeploy_win10_bios_mbr_BCD", "windeploy_win10_uefi_locate_BCD-efi", "qthivex_createstore_empty_BCD"]
# regipy's three firmware entries (0x101fffff) are only summarised in the README.
REGIPY_FW = {"{733b62de-f608-11eb-825c-c112f60133ab}": "Linux Boot Manager",
             "{733b62e2-f608-11eb-825c-c112f60133ab}": "UEFI OS",
             "{733b62e3-f608-11eb-825c-c112f60133ab}": "Windows Boot Manager"}


def expected(name: str) -> dict:
    return {o["identifier"]: o for o in json.loads((DATA / f"{name}.json").read_text())}


def actual(name: str) -> dict:
    store = BcdStore.open(need(f"bcd/{name}"))
    return {o["identifier"]: o for o in enum_json(store.all_sorted())}


@pytest.mark.parametrize("name", FULL)
def test_every_object_and_element_matches(name):
    exp, got = expected(name), actual(name)
    assert sorted(got) == sorted(exp)
    for ident, obj in exp.items():
        assert got[ident] == obj, ident


def test_regipy_uefi_store_matches():
    exp, got = expected("regipy_win10_uefi_BCD"), actual("regipy_win10_uefi_BCD")
    assert sorted(got) == sorted(exp)
    for ident, obj in exp.items():
        if ident in REGIPY_FW:
            g = got[ident]
            assert (g["type"], g["type_name"]) == ("0x101fffff", "Firmware Application (101fffff)")
            assert [e["code"] for e in g["elements"]] == ["0x11000001", "0x12000002", "0x12000004"]
            assert g["elements"][2]["value"] == REGIPY_FW[ident]
            assert g["elements"][0]["value"]["kind"] == "partition"
        else:
            assert got[ident] == obj, ident


def test_parse_all_real_stores_smoke():
    stores = sorted(p for p in (REALDATA / "bcd").glob("*") if not p.name.endswith(".LOG")) \
        if (REALDATA / "bcd").is_dir() else []
    if not stores:
        pytest.skip("no real BCD stores")
    for p in stores:
        store = BcdStore.open(p)
        text = enum_text(store, store.all_sorted())
        for o in store.objects:
            for e in o.elements:
                assert e.ok, (p.name, o.identifier, e.key, e.error)   # every real element decodes
                assert e.name in text or not text
        json.dumps(enum_json(store.all_sorted()))


def test_class_dependent_names_and_default_resolution():
    store = BcdStore.open(need("bcd/galton_win7_bios_mbr_BCD"))
    loader = store.object("{default}")
    assert loader.identifier == "{66729f48-aebd-11f0-b121-ffaf4aaf1822}"
    assert loader.description == "Windows 7"
    assert store.bootmgr.element(0x23000003).name == "default"
    assert loader.element(0x23000003).name == "resumeobject"
    resume = store.object(loader.value(0x23000003))
    assert resume.element(0x21000001).name == "filedevice"
    assert resume.element(0x26000004).name == "pae" and loader.element(0x21000001).name == "osdevice"
    assert [o.identifier for o in store.active()] == [C.GUID_BOOTMGR, loader.identifier]
    assert store.object("{BADMEMORY}").type_name == "RAM Defects"
    with pytest.raises(Exception) as exc:
        store.object("{current}")
    assert "offline" in str(exc.value)


def test_upper_case_element_keys_and_short_integers():
    store = BcdStore.open(need("bcd/museum_win10_BCD-Template"))
    hv = store.object("{hypervisorsettings}")
    e = hv.element(0x250000F5)
    assert (e.key, e.raw, e.value, e.name) == ("250000F5", bytes.fromhex("00c201"), 115200, "hypervisorbaudrate")
    assert hv.element_path(0x250000F5) == "Objects\\{7ff607e0-4395-11db-b0de-0800200c9a66}\\Elements\\250000F5"
    assert store.object("{memdiag}").element(0x1600000B).key == "1600000B"


HUMAN_LOCATE = r"""
Firmware Boot Manager
---------------------
identifier              {fwbootmgr}
displayorder            {bootmgr}
timeout                 0

Windows Boot Manager
--------------------
identifier              {bootmgr}
device                  partition=(GPT disk 20ac3077-f7cd-4c47-95d5-53fbf8b752b5, partition 85c434af-7860-49b3-85c3-b70316081b7b)
path                    \EFI\Microsoft\Boot\bootmgfw.efi
description             Windows Boot Manager
locale                  cs-CZ
default                 {default}
displayorder            {default}
timeout                 30

Windows Boot Loader
-------------------
identifier              {default}
device                  locate=custom:12000002
path                    \Windows\system32\winload.efi
description             Windows 10 Pro
locale                  cs-CZ
recoverysequence        {d65367c8-3fb7-11ec-8288-eab76d76405a}
displaymessageoverride  Recovery
recoveryenabled         Yes
osdevice                locate=custom:22000002
systemroot              \Windows
resumeobject            {bb9cb6e7-3fd0-11ec-8b53-806e6f6e6963}
bootmenupolicy          Standard
"""


def test_human_enum_all_is_bcdedit_layout():
    store = BcdStore.open(need("bcd/windeploy_win10_uefi_locate_BCD-efi"))
    assert enum_text(store, store.all_sorted()) == HUMAN_LOCATE


def test_human_lists_continue_in_the_value_column():
    store = BcdStore.open(need("bcd/regipy_win10_uefi_BCD"))
    text = enum_text(store, [store.object("{globalsettings}"), store.object("{fwbootmgr}")])
    assert ("inherit                 {dbgsettings}\n"
            "                        {emssettings}\n"
            "                        {badmemory}\n") in text
    assert "displayorder            {733b62de-f608-11eb-825c-c112f60133ab}\n" in text
    assert "allowedinmemorysettings 0x15000075" in enum_text(store, [store.object("{default}")])
    winre = enum_text(store, [store.object("{733b62e6-f608-11eb-825c-c112f60133ab}")])
    assert ("device                  ramdisk=[GPT disk 0b2394a9-095e-487d-8d48-719ecd4d78ca, partition "
            "6cdfcd69-de75-4490-8f99-5a84bf264917]\\Recovery\\WindowsRE\\Winre.wim,"
            "{733b62e7-f608-11eb-825c-c112f60133ab}") in winre
    assert "custom:46000010         Yes" in winre


def test_template_objects_have_bcdedit_s_own_headings():
    """bcdedit heads BCD-Template's OS target templates "OS Target Template" and its Windows Setup
    loaders "Windows Setup", not "Windows Boot Loader"; its resume objects stay "Resume from
    Hibernate" (bcdedit output of each object, pasted in mattifestation/BCD,
    BCD/Examples/BCDTemplateFromScratch.ps1). The other stores' loaders keep "Windows Boot Loader"."""
    store = BcdStore.open(need("bcd/museum_win10_BCD-Template"))
    def heading(ident):
        return enum_text(store, [store.object(ident)]).lstrip("\n").split("\n")[:3]
    assert heading("{a1943bbc-ea85-487c-97c7-c9ede908a38a}") == [
        "OS Target Template", "------------------", "identifier              {a1943bbc-ea85-487c-97c7-c9ede908a38a}"]
    assert heading("{b012b84d-c47c-4ed5-b722-c0c42163e569}")[:2] == ["OS Target Template", "------------------"]
    assert heading("{7254a080-1510-4e85-ac0f-e7fb3d444736}")[:2] == ["Windows Setup", "-------------"]
    assert heading("{cbd971bf-b7b8-4885-951a-fa03044f5d71}")[:2] == ["Windows Setup", "-------------"]
    for resume in ("{98b02a23-0674-4ce7-bdad-e0a15a8ff97b}", "{0c334284-9a41-4de1-99b3-a7e87e8ff07e}"):
        assert heading(resume)[:2] == ["Resume from Hibernate", "---------------------"]
    system = BcdStore.open(need("bcd/windeploy_win10_bios_mbr_BCD"))
    assert enum_text(system, [system.object("{default}")]).lstrip("\n").startswith("Windows Boot Loader\n")


# --- through the CLI, on a hive file (no appliance) ---------------------------------------------
def test_cli_enum_json_on_hive_file(capsys):
    path = need("bcd/galton_winpe_media_bios_BCD")
    assert run(["bcd", "enum", str(path), "all", "--json"]) == 0
    got = {o["identifier"]: o for o in json.loads(capsys.readouterr().out)}
    assert got == expected("galton_winpe_media_bios_BCD")


def test_cli_enum_active_and_one_object(capsys):
    path = need("bcd/windeploy_win10_bios_mbr_BCD")
    assert run(["bcd", "enum", str(path), "--json"]) == 0
    ids = [o["identifier"] for o in json.loads(capsys.readouterr().out)]
    assert ids == [C.GUID_BOOTMGR, "{1b67bffd-e290-11eb-8ffa-f459a0d9b879}"]
    assert run(["bcd", "enum", str(path), "{badmemory}"]) == 0
    text = capsys.readouterr().out
    assert "RAM Defects\n-----------\nidentifier              {badmemory}\n" in text


def test_cli_enum_is_fast_on_a_hive_file(capsys):
    """`rescue bcd enum` on a store file needs no appliance: well under half a second of CPU (CPU
    time, not wall time, so a loaded machine does not make it fail; `make bench` times the wall)."""
    path = need("bcd/regipy_win10_uefi_BCD")
    t0 = time.process_time()
    assert run(["bcd", "enum", str(path), "all"]) == 0
    cpu = time.process_time() - t0
    capsys.readouterr()
    assert cpu < 0.5, cpu


@pytest.mark.parametrize("name,code,words", [
    ("system/regipy_corrupted_SYSTEM", 6, "cannot be read as a BCD store"),
    ("system/regipy_win7_x86_SYSTEM", 6, "not a BCD store"),
])
def test_cli_corrupt_or_non_bcd_hive_is_one_sentence(capsys, name, code, words):
    path = need(name)
    assert run(["bcd", "enum", str(path)]) == code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert err.count(". ") == 0 and err.strip().endswith(".")   # one sentence


def test_model_raises_corrupt_for_non_bcd():
    with pytest.raises(CorruptHiveError):
        BcdStore.open(need("system/winevtkb_xp_sp3_SYSTEM"))


@pytest.mark.parametrize("args,code,words", [
    (["{current}"], 2, "{current}"),
    (["{ramdiskoptions}"], 7, "no object {ramdiskoptions}"),
    (["not-a-guid"], 2, "not a BCD identifier"),
    (["active", "--store", "EFI/Microsoft/Recovery/BCD"], 2, "--store"),
])
def test_cli_bad_identifiers(capsys, args, code, words):
    path = need("bcd/regipy_win10_uefi_BCD")
    assert run(["bcd", "enum", str(path), *args]) == code
    assert words in capsys.readouterr().err
