"""Registry value types and their exact on-disk encodings (MS-RRP / winnt.h REG_* constants)."""

from __future__ import annotations

import struct

REG_NONE = 0
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_DWORD_BIG_ENDIAN = 5
REG_LINK = 6
REG_MULTI_SZ = 7
REG_RESOURCE_LIST = 8
REG_FULL_RESOURCE_DESCRIPTOR = 9
REG_RESOURCE_REQUIREMENTS_LIST = 10
REG_QWORD = 11

TYPE_NAMES = {
    REG_NONE: "REG_NONE", REG_SZ: "REG_SZ", REG_EXPAND_SZ: "REG_EXPAND_SZ", REG_BINARY: "REG_BINARY",
    REG_DWORD: "REG_DWORD", REG_DWORD_BIG_ENDIAN: "REG_DWORD_BIG_ENDIAN", REG_LINK: "REG_LINK",
    REG_MULTI_SZ: "REG_MULTI_SZ", REG_RESOURCE_LIST: "REG_RESOURCE_LIST",
    REG_FULL_RESOURCE_DESCRIPTOR: "REG_FULL_RESOURCE_DESCRIPTOR",
    REG_RESOURCE_REQUIREMENTS_LIST: "REG_RESOURCE_REQUIREMENTS_LIST", REG_QWORD: "REG_QWORD",
}
TYPES_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}


def type_name(t: int) -> str:
    return TYPE_NAMES.get(t, f"REG_0x{t:x}")


def encode_sz(text: str) -> bytes:
    """REG_SZ / REG_EXPAND_SZ: UTF-16LE with one terminating NUL, as RegSetValueEx stores it."""
    return (text + "\x00").encode("utf-16-le")


def decode_sz(data: bytes) -> str:
    """Strip every trailing NUL: real hives carry zero, one or two (BCD-REFERENCE.md §6)."""
    if len(data) % 2:
        data = data[:-1]
    return data.decode("utf-16-le", errors="replace").rstrip("\x00")


def encode_multi_sz(items: list[str]) -> bytes:
    """REG_MULTI_SZ: each string NUL-terminated, then one more NUL ending the list."""
    return "".join(s + "\x00" for s in items).encode("utf-16-le") + b"\x00\x00"


def decode_multi_sz(data: bytes) -> list[str]:
    if len(data) % 2:
        data = data[:-1]
    text = data.decode("utf-16-le", errors="replace")
    # Tolerate a missing final terminator and stop at the empty string that ends the list.
    out: list[str] = []
    for part in text.split("\x00"):
        if part == "":
            break
        out.append(part)
    return out


def encode_dword(n: int) -> bytes:
    return struct.pack("<I", n & 0xFFFFFFFF)


def encode_qword(n: int) -> bytes:
    return struct.pack("<Q", n & 0xFFFFFFFFFFFFFFFF)


def decode_value(t: int, data: bytes):
    """Python value for display and JSON: str, list[str], int, or bytes for everything else."""
    if t in (REG_SZ, REG_EXPAND_SZ, REG_LINK):
        return decode_sz(data)
    if t == REG_MULTI_SZ:
        return decode_multi_sz(data)
    if t == REG_DWORD and len(data) >= 4:
        return struct.unpack_from("<I", data)[0]
    if t == REG_DWORD_BIG_ENDIAN and len(data) >= 4:
        return struct.unpack_from(">I", data)[0]
    if t == REG_QWORD and len(data) >= 8:
        return struct.unpack_from("<Q", data)[0]
    return bytes(data)
