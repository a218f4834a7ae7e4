"""Registry hive files on the host: the regf base block, a minimal-hive writer, and a typed hivex wrapper.

Registry and BCD logic both work on hive files downloaded to the host (ground rule 5): nothing in
this package talks to libguestfs.
"""

from rescue.hive.regf import RegfHeader, read_header, write_minimal_hive

__all__ = ["Hive", "RegValue", "open_hive", "RegfHeader", "read_header", "write_minimal_hive"]


def __getattr__(name: str):
    # The hivex wrapper is loaded on first use: rescue.hive.values and .regf (value codecs, the base
    # block) need no hivex bindings, so `rescue --help`, `--version` and `doctor` work on a host
    # that lacks them (doctor then says what to install).
    if name in ("Hive", "RegValue", "open_hive"):
        from rescue.hive import hive

        return getattr(hive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
