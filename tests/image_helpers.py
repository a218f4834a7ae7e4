"""Helpers for tests that make disk images by hand (shared by unit and integration tests)."""

from __future__ import annotations

from pathlib import Path


def set_vhd_current_size(path: str | Path, size: int) -> None:
    """Rewrite a qemu-made dynamic VHD's footer (both copies: the first and the last 512 bytes) with
    another current_size (offset 48) and a valid checksum (offset 64: one's complement of the byte
    sum). The creator stays "qemu", so qemu keeps sizing the image by its CHS geometry: the footer
    then disagrees with what the guest sees."""
    with open(path, "r+b") as fh:
        end = fh.seek(0, 2)
        for at in (0, end - 512):
            fh.seek(at)
            footer = bytearray(fh.read(512))
            assert footer[:8] == b"conectix" and footer[28:32] == b"qemu"
            footer[48:56] = size.to_bytes(8, "big")
            footer[64:68] = b"\0\0\0\0"
            footer[64:68] = (~sum(footer) & 0xFFFFFFFF).to_bytes(4, "big")
            fh.seek(at)
            fh.write(footer)
