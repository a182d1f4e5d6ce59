"""Recognize executable formats from the first bytes of a file.

Mach-O magic numbers and the fat (universal) header come from <mach-o/loader.h> and
<mach-o/fat.h>, where the fat header is always big-endian. PE offsets come from the Microsoft
PE format specification: the DOS header stores the offset of the "PE\\0\\0" signature at 0x3c,
and the COFF machine field follows the signature.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .elf import ELF_MAGIC

# Enough for the Mach-O fat architecture table and for the PE signature of any common linker.
HEAD_BYTES = 4096


class FileFormat(enum.Enum):
    ELF = "ELF"
    MACH_O = "Mach-O"
    PE = "PE"
    SCRIPT = "script"
    OTHER = "other"


@dataclass(frozen=True)
class Detected:
    """The format of a file and, for foreign binaries, a description such as "Mach-O binary for arm64"."""

    format: FileFormat
    description: str = ""


_MACH_O_THIN = {
    0xFEEDFACE: ">",  # MH_MAGIC, 32-bit, big-endian
    0xCEFAEDFE: "<",  # MH_CIGAM, 32-bit, little-endian
    0xFEEDFACF: ">",  # MH_MAGIC_64, big-endian
    0xCFFAEDFE: "<",  # MH_CIGAM_64, little-endian
}
# Fat magic -> (byte order of the header, size of one fat_arch record).
_MACH_O_FAT = {
    0xCAFEBABE: (">", 20),  # FAT_MAGIC
    0xBEBAFECA: ("<", 20),  # FAT_CIGAM
    0xCAFEBABF: (">", 32),  # FAT_MAGIC_64
    0xBFBAFECA: ("<", 32),  # FAT_CIGAM_64
}
_MACH_O_CPUS = {
    7: "i386",
    0x01000007: "x86_64",
    12: "arm",
    0x0100000C: "arm64",
    0x0200000C: "arm64_32",
    18: "ppc",
    0x01000012: "ppc64",
}
# Java class files share 0xCAFEBABE. Their next four bytes are the minor and major class file
# version, and major versions start at 45, so a smaller value is a Mach-O architecture count.
_FIRST_JAVA_MAJOR_VERSION = 45

_PE_MACHINES = {0x14C: "x86", 0x8664: "x86-64", 0x1C4: "ARM", 0xAA64: "arm64"}
_WINDOWS_SUFFIXES = (".exe", ".dll", ".pyd", ".sys")
_UTF8_BOM = b"\xef\xbb\xbf"


def detect_format(head: bytes, name: str) -> Detected:
    """Classify a file from its first HEAD_BYTES bytes and its name."""
    if head.startswith(ELF_MAGIC):
        return Detected(FileFormat.ELF)

    if len(head) >= 4:
        magic = struct.unpack(">I", head[:4])[0]
        if magic in _MACH_O_THIN:
            return Detected(FileFormat.MACH_O, _describe_thin_mach_o(head, _MACH_O_THIN[magic]))
        if magic in _MACH_O_FAT:
            fat = _describe_fat_mach_o(head, *_MACH_O_FAT[magic])
            if fat is not None:
                return Detected(FileFormat.MACH_O, fat)

    if head.startswith(b"MZ"):
        pe = _describe_pe(head, name)
        if pe is not None:
            return Detected(FileFormat.PE, pe)

    if head.startswith(b"#!") or head.startswith(_UTF8_BOM + b"#!"):
        return Detected(FileFormat.SCRIPT)
    return Detected(FileFormat.OTHER)


def _cpu_name(cpu_type: int) -> str:
    return _MACH_O_CPUS.get(cpu_type, f"CPU type {cpu_type:#x}")


def _describe_thin_mach_o(head: bytes, endian: str) -> str:
    if len(head) < 8:
        return "Mach-O (macOS) binary"
    cpu_type = struct.unpack(endian + "I", head[4:8])[0]
    return f"Mach-O (macOS) binary for {_cpu_name(cpu_type)}"


def _describe_fat_mach_o(head: bytes, endian: str, record_size: int) -> str | None:
    if len(head) < 8:
        return None
    count = struct.unpack(endian + "I", head[4:8])[0]
    if not 0 < count < _FIRST_JAVA_MAJOR_VERSION:
        return None

    cpus = []
    for index in range(count):
        start = 8 + index * record_size
        if start + 4 > len(head):
            break
        cpus.append(_cpu_name(struct.unpack(endian + "I", head[start:start + 4])[0]))
    if not cpus:
        return "Mach-O universal (macOS) binary"
    return "Mach-O universal (macOS) binary for " + ", ".join(cpus)


def _describe_pe(head: bytes, name: str) -> str | None:
    is_windows_name = name.lower().endswith(_WINDOWS_SUFFIXES)
    if len(head) >= 0x40:
        signature_offset = struct.unpack("<I", head[0x3C:0x40])[0]
        if signature_offset + 6 <= len(head) and head[signature_offset:signature_offset + 4] == b"PE\0\0":
            machine = struct.unpack("<H", head[signature_offset + 4:signature_offset + 6])[0]
            return f"Windows PE file for {_PE_MACHINES.get(machine, f'machine {machine:#x}')}"
    if is_windows_name:
        return "Windows (MZ) executable"
    return None
