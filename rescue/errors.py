"""The small exception hierarchy every layer raises and the CLI turns into one sentence + exit code.

Modelled on dissect.target: layers raise a `RescueError` subclass with a plain message that says
what is wrong and what to do; `rescue.cli.main` catches `RescueError`, prints the message and exits
with `exit_code`. Anything else reaching the CLI is a bug (reported as exit 70, no locals shown).

Exit codes are part of the interface and documented in README.md; never renumber them.
"""

from __future__ import annotations


class ExitCode:
    OK = 0
    FINDINGS = 1          # diagnose/inspect: the disk has problems the article's fix addresses
    USAGE = 2             # bad command line (typer/click use 2 as well)
    INPUT = 3             # missing file, not a disk image, truncated image, wrong format, a failed disk call
    NOT_WINDOWS = 4       # the disk(s) hold no Windows installation / no BCD store / ambiguous root
    UNSAFE = 5            # refused: BitLocker, hibernated/Fast Startup, unclean NTFS, dirty hive, read-only, in use
    CORRUPT = 6           # a hive or BCD store that cannot be parsed
    NOT_FOUND = 7         # a key, value, BCD object or element, backup, or file on the disk that does not exist
    WRITE_FAILED = 8      # a write failed; what was applied was rolled back from the backup
    VERIFY_FAILED = 9     # read-back after a write did not match the plan
    APPLIANCE = 10        # the libguestfs appliance could not be launched, or hung
    DECLINED = 11         # the user answered "no" at the confirmation prompt
    INTERRUPTED = 130     # Ctrl-C
    BUG = 70              # an unexpected internal error


class RescueError(Exception):
    """Base class: `str(err)` is the one sentence shown to the user."""

    exit_code: int = ExitCode.BUG

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class UsageError(RescueError):
    exit_code = ExitCode.USAGE


class InputError(RescueError):
    """The path given is missing, unreadable, not a disk image, truncated, or of the wrong format."""

    exit_code = ExitCode.INPUT


class NotWindowsError(RescueError):
    exit_code = ExitCode.NOT_WINDOWS


class UnsafeStateError(RescueError):
    """Writing now would lose data (hibernated NTFS, dirty hive, BitLocker...). Nothing was written."""

    exit_code = ExitCode.UNSAFE


class CorruptHiveError(RescueError):
    exit_code = ExitCode.CORRUPT


class NotFoundError(RescueError):
    exit_code = ExitCode.NOT_FOUND


class WriteFailedError(RescueError):
    exit_code = ExitCode.WRITE_FAILED


class VerifyError(RescueError):
    exit_code = ExitCode.VERIFY_FAILED


class ApplianceError(RescueError):
    exit_code = ExitCode.APPLIANCE


class DiskError(RescueError):
    """A libguestfs call on the attached disks failed (an I/O error, a filesystem the appliance
    cannot read, a refused operation). Raised only by rescue.disk, which translates the appliance's
    errors at its boundary, so no layer above catches RuntimeError. `operation` is the libguestfs
    call, `errno` its errno (None when libguestfs gave none). A hung or dead appliance is an
    ApplianceError instead: catching DiskError never hides one."""

    exit_code = ExitCode.INPUT

    def __init__(self, message: str, *, hint: str | None = None, operation: str = "",
                 errno: int | None = None):
        super().__init__(message, hint=hint)
        self.operation = operation
        self.errno = errno


class DiskNotFoundError(DiskError, NotFoundError):
    """The file, folder or device a disk call named does not exist (ENOENT). Also a NotFoundError,
    so code that handles "does not exist" for host files and disk files alike catches both."""

    exit_code = ExitCode.NOT_FOUND


class InterruptedWriteError(RescueError):
    """Ctrl-C at a point where "nothing more was written" would not be true: the message says
    what state the disk is in and how to finish."""
    exit_code = ExitCode.INTERRUPTED


class DeclinedError(RescueError):
    exit_code = ExitCode.DECLINED
