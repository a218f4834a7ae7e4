"""Registry hive files on the host: the regf base block, a minimal-hive writer, and a typed hivex wrapper.

Registry and BCD logic both work on hive files downloaded to the host (ground rule 5): nothing in
this package talks to libguestfs.
"""

from rescue.hive.hive import Hive, RegValue, open_hive
from rescue.hive.regf import RegfHeader, read_header, write_minimal_hive

__all__ = ["Hive", "RegValue", "open_hive", "RegfHeader", "read_header", "write_minimal_hive"]
