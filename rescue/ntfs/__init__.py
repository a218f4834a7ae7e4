"""NTFS metadata the log reset needs, parsed from raw bytes (no appliance, no ntfs-3g).

mft: boot sector, MFT records, attributes, data runs. logfile: $LogFile restart pages.
state: what Windows left the volume in (clean, crashed, hibernated, Fast Startup, dirty) and the
evidence. reset: the exact writes a log reset makes, in a crash-safe order.
"""
