"""The one write path every repair uses: plans, backups on the disk, atomic apply, verify, undo."""
