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
RESET_NTFS_LOG = typer.Option(
    False, "--reset-ntfs-log",
    help="On an NTFS volume Windows did not shut down cleanly (crash, forced stop): reset its log as ntfs-3g "
         "does and mark it for chkdsk at the next boot, then write. Never implied by --yes.")
DISCARD_HIBERNATION = typer.Option(
    False, "--discard-hibernation",
    help="On a hibernated or Fast Startup volume: invalidate the hibernation image (Windows cold-boots), reset "
         "the log and mark the volume for chkdsk, then write. Never implied by --yes.")


def ntfs(reset_ntfs_log: bool, discard_hibernation: bool):
    """The NtfsOptions of a writing command's two flags."""
    from rescue.safety.ntfs_reset import NtfsOptions

    return NtfsOptions(reset_log=reset_ntfs_log, discard_hibernation=discard_hibernation)
