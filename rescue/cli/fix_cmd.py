"""`rescue diagnose`, `rescue fix SCENARIO` and `rescue scenarios`, built from the scenario registry.

Each registered scenario (rescue.repairs.scenarios) becomes `rescue fix NAME` (and `fix ALIAS` for
its stop codes) with its own options; `rescue diagnose` runs the checks of every scenario (or of
`--scenario NAME`) in one launch. This module only parses arguments and renders what the runner
(rescue.repairs.runner) returns.

diagnose: read-only; exit 0 healthy, 1 findings (or an error's own code).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

import typer
from typer.core import TyperCommand, TyperGroup

from rescue.cli.common import ConsoleReporter, open_disks, out, print_json
from rescue.cli.options import (ACCEL, DISCARD_HIBERNATION, DISCARD_LOGS, FORMAT, JSON, RESET_NTFS_LOG, ROOT,
                                ntfs as ntfs_options)
from rescue.errors import ExitCode, RescueError

if TYPE_CHECKING:
    from rescue.repairs.base import Scenario
    from rescue.repairs.findings import Diagnosis

_DISKS = typer.Argument(None, metavar="DISK...", show_default=False,
                        help="OS disk (image or block device), then data disks; with --each, one disk per VM.")


def _fleet_params() -> List[inspect.Parameter]:
    return [_param("each", typer.Option(False, "--each", help="Every DISK is a VM of its own: one appliance for "
                                                            "all, a report per VM (fleet mode)."), bool),
            _param("manifest", typer.Option(None, "--manifest", metavar="FILE",
                                            help="Fleet mode over the VMs listed in FILE: one line per VM, its OS "
                                                 "disk then its data disks."), Optional[str]),
            _param("jobs", typer.Option(None, "--jobs", metavar="N",
                                        help="Fleet mode: N appliances side by side, each with a share of the VMs "
                                             "(default: 1 per 2 cores, bounded by memory)."), Optional[int])]


def _need_disks(a: Dict[str, Any]) -> List[str]:
    from rescue.errors import UsageError

    if not a.get("disks"):
        raise UsageError("Give at least one disk (an image file or a block device).")
    return list(a["disks"])


# --- building typer commands from scenario options ---------------------------------------------------
def _param(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _option_param(opt) -> inspect.Parameter:
    from rescue.repairs.base import OptionKind

    if opt.kind is OptionKind.FLAG:
        return _param(opt.name, typer.Option(bool(opt.default), opt.flag, help=opt.help), bool)
    return _param(opt.name, typer.Option(opt.default, opt.flag, help=opt.help, metavar=opt.metavar),
                  Optional[str])


def _common_params() -> List[inspect.Parameter]:
    return [_param("json_output", JSON, bool), _param("fmt", FORMAT, Optional[str]),
            _param("accel", ACCEL, Optional[str]), _param("root", ROOT, Optional[str]),
            _param("discard_hive_logs", DISCARD_LOGS, bool)]


def _command(body: Callable[[Dict[str, Any]], None], params: Sequence[inspect.Parameter], doc: str) -> Callable:
    """A function typer can read (signature and annotations) that hands its arguments to `body`."""
    def command(**kwargs: Any) -> None:
        body(kwargs)

    command.__signature__ = inspect.Signature(list(params))  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    return command


def _values(options: Sequence, given: Dict[str, Any], **extra: Any):
    from rescue.repairs.base import OptionValues

    values = {o.name: o.parse(given.get(o.name)) for o in options}
    if values.get("temp_drive") is None and any(o.name == "temp_drive" for o in options):
        values["temp_drive"] = next(o.default for o in options if o.name == "temp_drive")
    values.update(extra)
    return OptionValues(values)


# --- rescue fix SCENARIO ----------------------------------------------------------------------------
def _fix_command(scenario: Scenario, alias_of: Optional[str] = None) -> Callable:
    params = [_param("disks", _DISKS, List[str]), *(_option_param(o) for o in scenario.options)]
    if scenario.can_expand:
        params += [
            _param("expand", typer.Option(
                None, "--expand", metavar="SIZE",
                help="Also grow the OS disk image to SIZE (e.g. 127G; the article allows up to 1T) and the "
                     "Windows partition and NTFS with it; `fill` grows them into a disk already grown (e.g. by "
                     "`az disk update`). Cannot be undone by `rescue undo`."), Optional[str]),
            _param("allow_large", typer.Option(False, "--allow-large", help="Allow --expand beyond 1 TiB."), bool)]
    params += [*_fleet_params(),
               _param("dry_run", typer.Option(False, "--dry-run", help="Show the plan; open the disk read-only."),
                      bool),
               _param("yes", typer.Option(False, "--yes", "-y", help="Apply without asking (required without "
                                                                      "a terminal)."), bool),
               _param("reset_ntfs_log", RESET_NTFS_LOG, bool), _param("discard_hibernation", DISCARD_HIBERNATION, bool),
               *_common_params()]

    def body(a: Dict[str, Any]) -> None:
        run_fix_cli(scenario, a)

    doc = (f"Alias of `fix {alias_of}`." if alias_of else
           f"{scenario.summary}. One plan, one launch; --dry-run shows it, a backup is kept for `rescue undo`.")
    return _command(body, params, doc)


def run_fix_cli(scenario: Scenario, a: Dict[str, Any]) -> None:
    from rescue.cli.views import apply_outcome, render_diagnosis
    from rescue.repairs.runner import run_fix, staged_images

    if a.get("each") or a.get("manifest"):
        raise typer.Exit(_fix_fleet(scenario, a))
    disks, dry_run, json_output = _need_disks(a), a["dry_run"], a["json_output"]
    expand = a.get("expand")
    options = _values(scenario.options, a, discard_hive_logs=a["discard_hive_logs"], expand=bool(expand))
    reporter = ConsoleReporter(assume_yes=a["yes"], json_output=json_output)
    with staged_images(disks, expand, allow_large=a.get("allow_large", False), dry_run=dry_run,
                       fmt=a["fmt"]) as (images, stage):
        with open_disks(disks, write=not dry_run, fmt=a["fmt"], accel=a["accel"], root=a["root"],
                        images=images, reporter=reporter,
                        ntfs=ntfs_options(a["reset_ntfs_log"], a["discard_hibernation"])) as target:
            outcome = run_fix(target, scenario, options, dry_run=dry_run, stage=stage)
    if json_output:
        print_json(outcome.to_json())
        return
    apply_outcome(outcome.result)
    if outcome.after is None:
        return
    render_diagnosis(outcome.after, title="After")
    if outcome.commit is not None:
        out.print(f"Committed {outcome.commit.committed_bytes:,} changed bytes into {disks[0]} and read them back"
                  + (" (the image grew; `rescue undo` cannot shrink it)." if outcome.commit.image_grown else "."))
    if outcome.result.backup_id:
        out.print(f"Backup: {outcome.result.backup_id} (undo with `rescue undo {' '.join(disks)}`)")
    if outcome.next_steps:
        out.print("[bold]Next steps[/bold]")
        for i, line in enumerate(outcome.next_steps, 1):
            out.print(f"  {i}. {line}")


def _fix_fleet(scenario: Scenario, a: Dict[str, Any]) -> int:
    from rescue.cli.fleet_cmd import common_argv, confirm_plans, option_argv, run_fleet, warn_unsupported
    from rescue.fleet import fix_each

    warn_unsupported(a)
    options = _values(scenario.options, a, discard_hive_logs=a["discard_hive_logs"], expand=False,
                      reset_ntfs_log=a["reset_ntfs_log"], discard_hibernation=a["discard_hibernation"])
    return run_fleet(
        "fix", a, write=not a["dry_run"], title=f"fix {scenario.name}",
        child_argv=lambda m: ["fix", scenario.name, "--manifest", m, *option_argv(scenario.options, a),
                              *common_argv(a)],
        local=lambda fleet, reporter: fix_each(fleet, scenario, options, dry_run=a["dry_run"],
                                               confirm=confirm_plans(reporter)))


class ScenarioGroup(TyperGroup):
    """`rescue fix`: one subcommand per registered scenario, built when asked for, so a scenario
    registered by any module (or a test) is a command without touching this file."""

    # ctx: the Context of the click that typer builds on (its own vendored copy in recent typer,
    # click itself before), so the override takes what the base class takes.
    def list_commands(self, ctx: Any) -> List[str]:
        from rescue.repairs.base import scenarios

        names = []
        for s in scenarios():
            names.append(s.name)
            names += [a for a in s.aliases if a.lower().startswith("0x")]
        return names

    def get_command(self, ctx: Any, cmd_name: str):
        from rescue.repairs.base import get

        try:
            scenario = get(cmd_name)
        except RescueError:
            return None
        sub = typer.Typer(add_completion=False)
        alias_of = None if cmd_name == scenario.name else scenario.name
        sub.command(cmd_name)(_fix_command(scenario, alias_of))
        command = typer.main.get_command(sub)
        command.name = cmd_name
        return command


# --- rescue diagnose ----------------------------------------------------------------------------------
DIAGNOSE_HELP = ("Check a disk for every boot failure rescue knows (read-only, one launch) and print the "
                 "command that fixes each one found. Exit 0 healthy, 1 problems found.")


def _diagnose_options(selected: Sequence[Scenario]) -> List:
    seen: Dict[str, Any] = {}
    for s in selected:
        for o in s.options:
            if o.diagnose and o.flag not in seen:
                seen[o.flag] = o
    return list(seen.values())


def _diagnose_command() -> Callable:
    from rescue.repairs.base import scenarios

    options = _diagnose_options(scenarios())
    params = [_param("disks", _DISKS, List[str]),
              _param("scenario", typer.Option(None, "--scenario", "-s", metavar="NAME",
                                              help="Only this scenario's checks (a name or alias; repeatable)."),
                     Optional[List[str]]),
              *(_option_param(o) for o in options), *_fleet_params(), *_common_params()]

    def body(a: Dict[str, Any]) -> None:
        from rescue.repairs.base import get
        from rescue.repairs.context import RepairContext
        from rescue.repairs.runner import diagnose, diagnosis_json

        selected = tuple(dict.fromkeys(get(n) for n in a["scenario"])) if a.get("scenario") else scenarios()
        # Options of scenarios registered after this command was built (or fix-only ones) read as
        # their defaults.
        every = {o.name: o for s in selected for o in s.options}
        every.update({o.name: o for o in options})
        values = _values(list(every.values()), a, discard_hive_logs=a["discard_hive_logs"])
        if a.get("each") or a.get("manifest"):
            from rescue.cli.fleet_cmd import common_argv, option_argv, run_fleet, warn_unsupported
            from rescue.fleet import diagnose_each

            warn_unsupported(a)
            picked = [w for n in (a.get("scenario") or ()) for w in ("--scenario", n)]
            raise typer.Exit(run_fleet(
                "diagnose", a, write=False, title="Triage",
                child_argv=lambda m: ["diagnose", "--manifest", m, *picked, *option_argv(options, a),
                                      *common_argv(a)],
                local=lambda fleet, reporter: diagnose_each(fleet, selected, values)))
        disks = _need_disks(a)
        reporter = ConsoleReporter(json_output=a["json_output"])
        with open_disks(disks, fmt=a["fmt"], accel=a["accel"], root=a["root"], reporter=reporter) as target:
            diag = diagnose(RepairContext(target, values, reporter=reporter), selected)
        if a["json_output"]:
            print_json(diagnosis_json(diag, selected))
        else:
            render_triage(diag, selected, narrowed=bool(a.get("scenario")))
        raise typer.Exit(ExitCode.OK if diag.healthy else ExitCode.FINDINGS)

    return _command(body, params, DIAGNOSE_HELP)


class DiagnoseCommand(TyperCommand):
    """`rescue diagnose`, whose options are the union of every registered scenario's options.

    Reading them imports every scenario module, which `rescue --help` (it lists this command with
    its one-line help) and the other commands must not pay for. So typer builds this command from
    a placeholder without parameters, and its `params` and `callback` are those of the real
    command, built from the registry on first use: parsing a command line, its help, shell
    completion or the man page. Attributes rather than `get_params()`, because click itself and
    the man page builder read `command.params` directly."""

    _built_command: Optional[Any] = None    # the real command (a TyperCommand), once built

    def _built(self) -> Any:
        if self._built_command is None:
            sub = typer.Typer(add_completion=False)
            sub.command(self.name)(_diagnose_command())
            self._built_command = typer.main.get_command(sub)
        return self._built_command

    @property
    def params(self) -> List[Any]:
        return self._built().params

    @params.setter
    def params(self, placeholder: List[Any]) -> None:
        # click's __init__ stores the placeholder's parameters (none): the real ones replace them.
        pass

    @property
    def callback(self) -> Any:
        return self._built().callback

    @callback.setter
    def callback(self, placeholder: Any) -> None:
        pass


def render_triage(diag: Diagnosis, selected: Sequence[Scenario], *, narrowed: bool) -> None:
    from rescue.cli.views import render_diagnosis
    from rescue.repairs.findings import Diagnosis, OK

    blockers = [f for f in diag.findings if f.scenario is None]
    if blockers:
        render_diagnosis(Diagnosis(diag.disks, tuple(blockers)), title="Unsafe states (block every fix)")
    quiet, blind = [], []
    for s in selected:
        mine = diag.of_scenario(s.name)
        if not mine and s.checks:
            # Every check needed a source already reported unreadable under another scenario.
            blind.append(s.name)
            continue
        if not narrowed and len(selected) > 1 and all(f.status == OK for f in mine):
            quiet.append(s.name)
            continue
        render_diagnosis(Diagnosis(diag.disks, mine), title=f"{s.name}: {s.title}")
    if quiet:
        out.print(f"No problem found by: {', '.join(quiet)}.")
    if blind:
        out.print(f"Could not check (a source above is unreadable): {', '.join(blind)}.")
    if diag.blockers:
        out.print("[red]A fix is blocked until the unsafe state above is cleared; nothing can be written safely.[/red]")
    elif diag.healthy:
        out.print("[green]Healthy: none of the causes checked were found.[/green]")
    else:
        cmds = diag.fix_commands()
        out.print(f"{len(diag.found)} problem(s) found." + (" Fix them with:" if cmds else ""))
        for c in cmds:
            out.print(f"  {c}", markup=False, highlight=False)
        for note in diag.fix_notes():
            out.print(f"  {note}", markup=False, highlight=False)


# --- registration ----------------------------------------------------------------------------------
def register(app: typer.Typer) -> None:
    @app.command("diagnose", cls=DiagnoseCommand, help=DIAGNOSE_HELP)
    def diagnose_placeholder() -> None:
        """Replaced by the command built from the scenario registry (DiagnoseCommand)."""

    fix_app = typer.Typer(cls=ScenarioGroup, no_args_is_help=True,
                          help="Repair a disk for a named boot failure (`rescue scenarios` lists them).")
    app.add_typer(fix_app, name="fix")

    @app.command("scenarios")
    def scenarios_cmd(json_output: bool = JSON) -> None:
        """List the boot failures rescue diagnoses and fixes: name, aliases (stop codes), summary."""
        from rich.table import Table

        from rescue.repairs.base import scenarios

        items = scenarios()
        if json_output:
            print_json({"scenarios": [s.to_json() for s in items]})
            return
        t = Table(title="Scenarios (`rescue fix NAME DISK...`)", title_justify="left")
        for col in ("name", "aliases", "summary"):
            t.add_column(col, overflow="fold")
        for s in items:
            t.add_row(s.name, ", ".join(s.aliases), s.summary)
        out.print(t)
