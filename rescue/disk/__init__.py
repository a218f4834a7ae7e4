"""Disks: image format detection, acceleration choice, and the libguestfs session (the only module
that imports guestfs is `rescue.disk.session`)."""
