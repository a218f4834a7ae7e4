"""Free space offline (the article's step 2): cleanup like Disk Cleanup, expand the OS disk,
partition and NTFS, and a fragmentation report. Findings for `inspect`/`diagnose` in `findings`."""
