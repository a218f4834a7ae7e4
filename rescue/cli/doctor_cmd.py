"""`rescue doctor`: is this host ready, and what to install or set (rescue.doctor does the checks).

Exit 0 when ready (warnings allowed), 10 when a check failed (README "Exit codes"): the same code
a command gets when the appliance cannot be launched, since that is what would happen next.
"""

from __future__ import annotations

from typing import Optional

import typer

from rescue.cli.options import ACCEL as _ACCEL, JSON as _JSON

_MARK = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "bold red"),
         "skipped": ("skip", "dim")}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(
        json_output: bool = _JSON,
        accel: Optional[str] = _ACCEL,
        no_launch: bool = typer.Option(False, "--no-launch", help="Skip the one appliance launch (instant)."),
    ) -> None:
        """Check this host: libguestfs appliance, KVM or TCG, ntfs-3g, qemu-img, temp space. Exit 10 if not ready."""
        import contextlib

        from rescue import doctor
        from rescue.cli.common import err, out, print_json, warn
        from rescue.errors import ApplianceError

        def spinner(label: str):
            if json_output or not err.is_terminal:
                return contextlib.nullcontext()
            return err.status(f"{label}…", spinner="dots")

        report = doctor.diagnose(launch=not no_launch, accel=accel, notify=warn, progress=spinner)
        if json_output:
            launch = report.launch
            print_json({
                "ready": report.ready,
                "distribution": report.distribution,
                "checks": [{"id": c.id, "title": c.title, "status": c.status.value, "detail": c.detail,
                            "advice": c.advice} for c in report.checks],
                "launch": None if launch is None else {"ok": launch.ok, "accel": launch.accel,
                                                       "seconds": round(launch.seconds, 1),
                                                       "error": launch.error or None,
                                                       "features": launch.features},
            })
        else:
            width = max(len(c.title) for c in report.checks)
            for c in report.checks:
                label, style = _MARK[c.status.value]
                out.print(f"  [{style}]{label:<4}[/{style}] ", end="")
                out.print(f"{c.title.ljust(width)}  {c.detail}", markup=False)
                if c.advice and c.status.value != "ok":
                    out.print(f"       {''.ljust(width)}  → {c.advice}", markup=False)
            if report.ready:
                out.print("[green]This host is ready.[/green]")
        if not report.ready:
            names = ", ".join(c.title for c in report.failures)
            raise ApplianceError(f"This host is not ready for rescue: {names}.",
                                 hint="Follow each failed check's advice (`advice` in the JSON), then run "
                                      "`rescue doctor` again." if json_output else
                                 "Do what the → lines above say, then run `rescue doctor` again.")
