"""Disks: image format detection, acceleration choice, and the libguestfs appliance, the only part
of rescue that talks to libguestfs (only `rescue.disk.appliance` imports guestfs). A command opens
one `rescue.disk.session.DiskSession`; its failures surface as DiskError / DiskNotFoundError
(rescue.errors), never as libguestfs' RuntimeError. `rescue.disk.builder` writes scratch disks for
the sample builder and tests only."""
