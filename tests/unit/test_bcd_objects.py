"""`rescue bcd create|copy|delete|default|displayorder` on real BCD hive files (hivex-built sample
stores), through the planners and through the CLI with the safety engine; read back with hivex."""

from __future__ import annotations

import struct

import hivex
import pytest

from rescue.bcd import constants as C
from rescue.bcd.model import BcdStore
from rescue.bcd.objects import plan_copy, plan_create, plan_default, plan_delete, plan_displayorder
from rescue.errors import NotFoundError, UsageError
from rescue.hive import values as V
from rescue.safety.plan import FileRef
from rescue.samples.bcd_store import LOADER_GUID, RESUME_GUID, SECOND_LOADER_GUID, build_bcd_hive
from rescue.samples.hives import gpt_partition_device

NEW = "{11111111-2222-4333-8444-555555555555}"


@pytest.fixture
def bcd(tmp_path):
    dev = gpt_partition_device("6a4e3f0c-1f3e-4a55-9d3e-0d6f0ef0c0a1", "2b0f0d38-8c55-4d4b-a8f0-3f3c0a3f61e1")
    return build_bcd_hive(tmp_path / "BCD", extra_loaders=[(SECOND_LOADER_GUID, "Windows Server 2016", dev)])


def raw(path, guid, code=None):
    """(type, data) of an element, or the Description\\Type dword, straight from hivex (None: absent)."""
    h = hivex.Hivex(str(path))
    node = h.node_get_child(h.node_get_child(h.root(), "Objects"), guid)
    if node is None:
        return None
    if code is None:
        desc = h.node_get_child(node, "Description")
        return struct.unpack("<I", h.value_value(h.node_get_value(desc, "Type"))[1])[0]
    el = h.node_get_child(h.node_get_child(node, "Elements"), f"{code:08x}")
    return None if el is None else h.value_value(h.node_get_value(el, "Element"))


def run(args):
    from rescue.cli.main import run as main

    return main(args)


def test_create_makes_an_osloader_with_its_description(bcd):
    step = plan_create(BcdStore.open(bcd), FileRef(str(bcd)), "Windows (rescue)", ident=NEW)
    assert [c.key for c in step.changes] == [f"Objects\\{NEW}\\Description", f"Objects\\{NEW}\\Elements\\12000004"]
    assert run(["bcd", "create", str(bcd), "--d", "Windows (rescue)", "--id", NEW, "--yes"]) == 0
    assert raw(bcd, NEW) == C.TYPE_OSLOADER
    assert raw(bcd, NEW, C.DESCRIPTION) == (V.REG_SZ, V.encode_sz("Windows (rescue)"))
    obj = BcdStore.open(bcd).object(NEW)
    assert obj.is_osloader and obj.description == "Windows (rescue)"


def test_create_without_id_picks_a_new_random_guid(bcd):
    store = BcdStore.open(bcd)
    a = plan_create(store, FileRef(str(bcd)), "A").changes[0].key
    b = plan_create(store, FileRef(str(bcd)), "A").changes[0].key
    assert a != b and a.startswith("Objects\\{")


@pytest.mark.parametrize("kwargs,words", [
    (dict(description="x", application="ntldr"), "--application"),
    (dict(description=" "), "description"),
    (dict(description="x", ident=LOADER_GUID), "already has"),
    (dict(description="x", ident="{bootmgr}"), "not a GUID"),
])
def test_create_refusals(bcd, kwargs, words):
    with pytest.raises(UsageError, match=words):
        plan_create(BcdStore.open(bcd), FileRef(str(bcd)), **kwargs)


def test_copy_keeps_every_element_byte_for_byte(bcd):
    step = plan_copy(BcdStore.open(bcd), FileRef(str(bcd)), "{default}", "Windows (copy)", ident=NEW)
    assert step.changes[0].key == f"Objects\\{NEW}\\Description"
    assert all(c.key.startswith(f"Objects\\{NEW}\\") for c in step.changes)
    assert run(["bcd", "copy", str(bcd), "{default}", "--d", "Windows (copy)", "--id", NEW, "--yes"]) == 0
    store = BcdStore.open(bcd)
    src, dst = store.object(LOADER_GUID), store.object(NEW)
    assert raw(bcd, NEW) == raw(bcd, LOADER_GUID) == C.TYPE_OSLOADER
    for e in src.elements:
        if e.code != C.DESCRIPTION:
            assert raw(bcd, NEW, e.code) == raw(bcd, LOADER_GUID, e.code), hex(e.code)
    assert {e.code for e in dst.elements} == {e.code for e in src.elements}
    assert dst.description == "Windows (copy)" and src.description == "Windows Server"
    # A copy is not in the boot menu until it is added (as with bcdedit).
    assert NEW not in store.bootmgr.value(C.DISPLAYORDER)


def test_delete_takes_the_entry_out_of_the_menu(bcd):
    before = BcdStore.open(bcd)
    assert before.bootmgr.value(C.DISPLAYORDER) == (LOADER_GUID, SECOND_LOADER_GUID)
    assert run(["bcd", "delete", str(bcd), SECOND_LOADER_GUID, "--yes"]) == 0
    assert raw(bcd, SECOND_LOADER_GUID) is None
    assert raw(bcd, C.GUID_BOOTMGR, C.DISPLAYORDER) == (V.REG_MULTI_SZ, V.encode_multi_sz([LOADER_GUID]))
    assert BcdStore.open(bcd).get(SECOND_LOADER_GUID) is None


def test_delete_nocleanup_leaves_the_menu(bcd):
    step = plan_delete(BcdStore.open(bcd), FileRef(str(bcd)), SECOND_LOADER_GUID, cleanup=False)
    assert [c.kind for c in step.changes] == ["delete-key"]


@pytest.mark.parametrize("ident,kwargs,error,words", [
    ("{default}", {}, UsageError, "default entry"),
    ("{memdiag}", {}, UsageError, "--force"),
    ("{99999999-2222-4333-8444-555555555555}", {}, NotFoundError, "no object"),
])
def test_delete_refusals(bcd, ident, kwargs, error, words):
    with pytest.raises(error, match=words):
        plan_delete(BcdStore.open(bcd), FileRef(str(bcd)), ident, **kwargs)


def test_delete_a_well_known_entry_with_force(bcd):
    step = plan_delete(BcdStore.open(bcd), FileRef(str(bcd)), "{memdiag}", force=True)
    # {memdiag} is in {bootmgr}'s toolsdisplayorder: cleanup empties that list.
    assert [c.kind for c in step.changes] == ["delete-key", "set-value"]
    assert step.changes[1].key.endswith("\\24000010")


def test_default_and_displayorder(bcd):
    assert run(["bcd", "default", str(bcd), SECOND_LOADER_GUID, "--yes"]) == 0
    assert raw(bcd, C.GUID_BOOTMGR, C.BOOTMGR_DEFAULT) == (V.REG_SZ, V.encode_sz(SECOND_LOADER_GUID))
    assert run(["bcd", "displayorder", str(bcd), SECOND_LOADER_GUID, LOADER_GUID, "--yes"]) == 0
    assert raw(bcd, C.GUID_BOOTMGR, C.DISPLAYORDER) == (V.REG_MULTI_SZ,
                                                        V.encode_multi_sz([SECOND_LOADER_GUID, LOADER_GUID]))
    assert run(["bcd", "displayorder", str(bcd), SECOND_LOADER_GUID, "--addlast", "--yes"]) == 0
    assert BcdStore.open(bcd).bootmgr.value(C.DISPLAYORDER) == (LOADER_GUID, SECOND_LOADER_GUID)
    assert run(["bcd", "displayorder", str(bcd), LOADER_GUID, "--remove", "--yes"]) == 0
    assert BcdStore.open(bcd).bootmgr.value(C.DISPLAYORDER) == (SECOND_LOADER_GUID,)
    # Asking for what is already so is an empty plan.
    step = plan_default(BcdStore.open(bcd), FileRef(str(bcd)), SECOND_LOADER_GUID)
    assert step.changes == () and step.skipped == "already so"


@pytest.mark.parametrize("idents,mode,words", [
    ([RESUME_GUID.replace("a1", "ff")], "set", "no object"),
    (["{badmemory}"], "set", "not a boot application"),
    ([LOADER_GUID, SECOND_LOADER_GUID], "addfirst", "takes one entry"),
])
def test_displayorder_refusals(bcd, idents, mode, words):
    with pytest.raises((UsageError, NotFoundError), match=words):
        plan_displayorder(BcdStore.open(bcd), FileRef(str(bcd)), idents, mode=mode)


def test_cli_dry_run_and_undo_are_byte_exact(bcd):
    original = bcd.read_bytes()
    assert run(["bcd", "copy", str(bcd), "{default}", "--d", "x", "--id", NEW, "--dry-run"]) == 0
    assert bcd.read_bytes() == original
    assert run(["bcd", "copy", str(bcd), "{default}", "--d", "x", "--id", NEW, "--yes"]) == 0
    assert bcd.read_bytes() != original
    assert run(["undo", str(bcd), "--yes"]) == 0
    assert bcd.read_bytes() == original
    assert run(["bcd", "displayorder", str(bcd), LOADER_GUID, "--addfirst", "--remove", "--yes"]) == 2
