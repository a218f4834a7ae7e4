"""Registry offline: reg.exe-like query/add/delete, page file (article step 4), crash dump + NMI (5b/5c).

API for other layers (everything reads host hive copies; planners return a `rescue.safety.plan.Step`
for `rescue.safety.apply.execute`): `summary.summarize(target, temp_drive="D:", ram_bytes=None,
dump_file=None)` reads SYSTEM once through an open target and returns a `RegistrySummary` (page file
settings per control set, where they point, page files found, crash dump settings per control set,
dump-space check, WHEA BadPages, and `findings`: typed `rescue.repairs.findings.Finding`s with ids
"pagefile-not-on-temp-drive", "crashdump-disabled", "nmi-crashdump-off", "dump-volume-too-small",
"whea-bad-pages"; `system_copy` is the host copy it read, logs replayed: open it with `Hive(...)` for the
planners); `summary.summarize_hive(system_path, ref=..., layout=..., found=...)` does the same
without a target. Pure readers: `pagefile.read_pagefile_settings(system)`, `crashdump.read_crashdump(system)`,
`findings.read_whea_badpages(system)` (system = host path or open `Hive`). Planners:
`pagefile.plan_pagefile_reset(system, ref, found, location="D:\\pagefile.sys 0 0", temp_drive="D:")`
(found = `pagefile.scan_pagefiles(target)`; `pagefile.bytes_freed(step)`),
`crashdump.plan_crashdump_enable(system, ref, dump_file="%SystemRoot%\\MEMORY.DMP")`,
`findings.plan_clear_whea_badpages(system, ref)`, and reg.exe's `regops.plan_add / plan_delete_value /
plan_delete_all_values / plan_delete_key`. `crashdump.check_dump_space(dump_file, layout, ram_bytes=...,
found_pagefiles=...)` and `crashdump.parse_size("16G")` serve `--ram`. Key spelling -> file:
`paths.parse_key`, `paths.locate_on_disk / locate_in_file`, `paths.resolve_path` (CurrentControlSet via
Select\\Current). The CLI side is rescue/cli/reg_cmd.py (`inspect_section(target)` for `rescue inspect`).
"""
