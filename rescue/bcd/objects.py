"""Object-level BCD edits as plans: `bcdedit /create`, `/copy`, `/delete`, `/displayorder`,
`/default` (Microsoft, "BCDEdit command-line options" and "BCDEdit /create", "/copy", "/delete",
"/displayorder", "/default").

An object is the key `Objects\\{guid}` with `Description\\Type` (REG_DWORD, BCD-REFERENCE.md §4) and
one `Elements\\<code>\\Element` value per element (§1). Creating or copying one is a set of SetValue
changes (hivex creates the keys); deleting one is a DeleteKey of its `Objects\\{guid}` key plus, as
bcdedit's default `/cleanup` does, its removal from the boot manager's display orders.
"""

from __future__ import annotations

import uuid
from typing import Sequence

from rescue.bcd import constants as C
from rescue.bcd.edit import _label, set_change
from rescue.bcd.model import BcdObject, BcdStore, normalize_guid
from rescue.errors import NotFoundError, UsageError
from rescue.hive import values as V
from rescue.safety.plan import DeleteKey, FileRef, SetValue, Step

# bcdedit /create /application TYPE (MS "BCDEdit /create"): the object types it makes.
APPLICATION_TYPES = {"osloader": C.TYPE_OSLOADER, "resume": C.TYPE_RESUME, "bootsector": C.TYPE_BOOTSECTOR,
                     "startup": C.TYPE_STARTUP}
BOOTSEQUENCE = 0x24000002
TOOLSDISPLAYORDER = 0x24000010
# The {bootmgr} / {fwbootmgr} lists an entry may be named in (bcdedit /delete /cleanup removes it).
ORDER_LISTS = (C.DISPLAYORDER, BOOTSEQUENCE, TOOLSDISPLAYORDER)


def _new_guid(store: BcdStore, given: str | None) -> str:
    if given:
        guid = normalize_guid(given)
        if guid is None or guid in C.ALIAS_OF_GUID or guid in (C.GUID_CURRENT, C.GUID_DEFAULT):
            raise UsageError(f"{given!r} is not a GUID for a new entry (give {{xxxxxxxx-xxxx-...}}).")
    else:
        guid = "{" + str(uuid.uuid4()) + "}"           # as bcdedit: a new random identifier
    if store.get(guid) is not None:
        raise UsageError(f"The store {store.name} already has an object {guid}.")
    return guid


def _type_change(ref: FileRef, guid: str, type_: int) -> SetValue:
    return SetValue(file=ref, key=f"Objects\\{guid}\\Description", name="Type", type=V.REG_DWORD,
                    data=V.encode_dword(type_), reason=f"new object {guid}, type 0x{type_:08x}")


def _element_change(ref: FileRef, guid: str, code: int, reg_type: int, data: bytes, reason: str) -> SetValue:
    return SetValue(file=ref, key=f"Objects\\{guid}\\Elements\\{C.key_name(code)}", name="Element",
                    type=reg_type, data=data, reason=reason)


def plan_create(store: BcdStore, ref: FileRef, description: str, *, application: str = "osloader",
                ident: str | None = None) -> Step:
    """`bcdedit /create [{guid}] /d DESCRIPTION /application TYPE`: an empty entry with its description."""
    type_ = APPLICATION_TYPES.get(application.lower())
    if type_ is None:
        raise UsageError(f"--application {application!r}: one of {', '.join(APPLICATION_TYPES)}.")
    if not description.strip():
        raise UsageError("A new entry needs a description (/d).")
    guid = _new_guid(store, ident)
    changes = (_type_change(ref, guid, type_),
               _element_change(ref, guid, C.DESCRIPTION, V.REG_SZ, V.encode_sz(description),
                               f"description {description!r}"))
    return Step("bcd.create", f"Create {application} entry {guid} \"{description}\"", changes,
                notes=(f"The entry {guid} was created; set its device, path and osdevice before it can boot.",))


def plan_copy(store: BcdStore, ref: FileRef, source: str, description: str, *, ident: str | None = None) -> Step:
    """`bcdedit /copy {id} /d DESCRIPTION`: the same type and elements, a new identifier and description."""
    obj = store.object(source)
    if obj.type is None:
        raise UsageError(f"{_label(obj)} has no Description\\Type: it cannot be copied.")
    if not description.strip():
        raise UsageError("The copy needs a description (/d).")
    guid = _new_guid(store, ident)
    changes = [_type_change(ref, guid, obj.type)]
    for e in obj.elements:
        if e.code == C.DESCRIPTION or e.reg_type is None:
            continue
        changes.append(_element_change(ref, guid, e.code, e.reg_type, e.raw, f"copied from {_label(obj)}"))
    changes.append(_element_change(ref, guid, C.DESCRIPTION, V.REG_SZ, V.encode_sz(description),
                                   f"description {description!r}"))
    return Step("bcd.copy", f"Copy {_label(obj)} to {guid} \"{description}\"", tuple(changes),
                notes=(f"The entry was successfully copied to {guid}.",))


def _order_changes(store: BcdStore, ref: FileRef, guid: str) -> list:
    """Remove `guid` from every display order / boot sequence of {bootmgr} and {fwbootmgr}."""
    out = []
    for manager in (store.get(C.GUID_BOOTMGR), store.get(C.GUID_FWBOOTMGR)):
        if manager is None:
            continue
        for code in ORDER_LISTS:
            items = manager.value(code)
            if items and guid in items:
                change = set_change(store, ref, manager, code, tuple(i for i in items if i != guid),
                                    reason=f"{_label(manager)} {C.element_name(code, manager.type)} without {guid}")
                if change is not None:
                    out.append(change)
    return out


def plan_delete(store: BcdStore, ref: FileRef, ident: str, *, cleanup: bool = True, force: bool = False) -> Step:
    """`bcdedit /delete ID [/f] [/cleanup | /nocleanup]`: the object's key; with cleanup (bcdedit's
    default) also its place in the display orders. A well-known object needs force (bcdedit's /f);
    the default entry is refused (the boot manager would have nothing to start)."""
    obj = store.object(ident)
    if obj.alias is not None and not force:
        raise UsageError(f"{obj.alias} is a well-known entry; give --force to delete it (bcdedit /f).")
    if store.default_id == obj.identifier:
        raise UsageError(f"{_label(obj)} is the default entry: make another entry the default first "
                         "(`rescue bcd default TARGET ID`).")
    changes = [DeleteKey(file=ref, key=f"Objects\\{obj.key}",
                         reason=f"delete {_label(obj)} ({obj.type_name}, {obj.description or 'no description'})")]
    if cleanup:
        changes += _order_changes(store, ref, obj.identifier)
    return Step("bcd.delete", f"Delete {_label(obj)}" + (f" \"{obj.description}\"" if obj.description else ""),
                tuple(changes))


def _application(store: BcdStore, ident: str) -> BcdObject:
    obj = store.object(ident)
    if C.object_kind(obj.type) != 1:
        raise UsageError(f"{_label(obj)} is a {obj.type_name}, not a boot application: it cannot be in the "
                         "boot menu.")
    return obj


def plan_default(store: BcdStore, ref: FileRef, ident: str) -> Step:
    """`bcdedit /default ID`: {bootmgr}'s default entry."""
    bootmgr = store.get(C.GUID_BOOTMGR)
    if bootmgr is None:
        raise NotFoundError(f"The store {store.name} has no {{bootmgr}} object.")
    obj = _application(store, ident)
    return _set(store, ref, bootmgr, C.BOOTMGR_DEFAULT, obj.identifier, "bcd.default",
                f"Make {store.display_id(obj.identifier)} the default entry")


def plan_displayorder(store: BcdStore, ref: FileRef, idents: Sequence[str], *, mode: str = "set") -> Step:
    """`bcdedit /displayorder ID... [/addfirst | /addlast | /remove]` on {bootmgr}."""
    bootmgr = store.get(C.GUID_BOOTMGR)
    if bootmgr is None:
        raise NotFoundError(f"The store {store.name} has no {{bootmgr}} object.")
    if not idents:
        raise UsageError("Name at least one entry.")
    current = list(bootmgr.value(C.DISPLAYORDER) or ())
    if mode == "remove":
        guids = [store.resolve(i) for i in idents]
        new = [g for g in current if g not in guids]
    else:
        guids = [_application(store, i).identifier for i in idents]
        if mode == "set":
            new = list(dict.fromkeys(guids))
        elif mode in ("addfirst", "addlast"):
            if len(guids) != 1:
                raise UsageError(f"--{mode} takes one entry (as bcdedit /{mode}).")
            # bcdedit moves an entry that is already listed to the requested end.
            rest = [g for g in current if g != guids[0]]
            new = [guids[0]] + rest if mode == "addfirst" else rest + [guids[0]]
        else:
            raise UsageError(f"Unknown display order mode {mode!r}.")
    shown = ", ".join(store.display_id(g) for g in new) or "(empty)"
    return _set(store, ref, bootmgr, C.DISPLAYORDER, tuple(new), "bcd.displayorder",
                f"Boot menu order: {shown}")


def _set(store: BcdStore, ref: FileRef, obj: BcdObject, code: int, value, action: str, title: str) -> Step:
    change = set_change(store, ref, obj, code, value)
    if change is None:
        return Step(action, title, skipped="already so")
    return Step(action, title, (change,))
