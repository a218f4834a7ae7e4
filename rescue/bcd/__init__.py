"""The BCD store, offline: a typed read model over hivex, bcdedit-compatible output, edits as plans.

- constants: element codes, bcdedit names, object types, well-known GUIDs (BCD-REFERENCE.md).
- model: `BcdStore.open(path)` -> objects and decoded elements (frozen dataclasses).
- devices: the binary device structure, and the attached partition a device names.
- render: `bcdedit /enum` text and the JSON shape of `rescue bcd enum --json`.
- edit: planners (set, deletevalue, ems, bootems, emssettings, clear badmemory) returning plan Steps.
- summary: the BCD facts inspect and diagnose report.
"""
