"""Options every command family shares, spelled and explained once (typer Option objects can be
reused across commands)."""

import typer

JSON = typer.Option(False, "--json", help="Machine-readable output (stable keys).")
FORMAT = typer.Option(None, "--format", help="Force the image format: raw, vhd, vhdx, qcow2, vmdk.")
ACCEL = typer.Option(None, "--accel", help="auto (default), kvm or tcg; env RESCUE_ACCEL.")
ROOT = typer.Option(None, "--root", help="DISK:PARTITION of the Windows install when there are several.")
DISCARD_LOGS = typer.Option(False, "--discard-hive-logs",
                            help="Ignore pending .LOG1/.LOG2 transaction logs of a hive instead of refusing.")
DRY_RUN = typer.Option(False, "--dry-run", help="Show the plan and stop (the disk is opened read-only).")
YES = typer.Option(False, "--yes", "-y", help="Apply without asking (needed when stdin is not a terminal).")
