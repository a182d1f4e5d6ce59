"""Read what the dynamic loader needs from an ELF file: class, byte order, machine, the
interpreter, the needed libraries and the symbol versions it requires, such as GLIBC_2.34.

Record layouts follow the System V ABI (ELF header, section and program headers, dynamic
entries) and the Linux Standard Base for `.gnu.version_r` (Elf_Verneed and Elf_Vernaux
records, 16 bytes each in both classes). Both classes and both byte orders are read.

The parser reads from a seekable binary stream, so a member of a zip archive can be parsed
without extracting it. It prefers the program headers, which sit near the start of the file
and are what the loader uses, and falls back to the section headers for files without a
PT_DYNAMIC segment.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

ELF_MAGIC = b"\x7fELF"

ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2

ET_REL = 1
ET_EXEC = 2
ET_DYN = 3

MACHINE_NAMES: dict[int, str] = {
    2: "SPARC",
    3: "x86 (i386)",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    22: "s390",
    40: "ARM (32-bit)",
    62: "x86_64",
    183: "aarch64",
    243: "RISC-V",
}

SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE

PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3

DT_NULL = 0
DT_NEEDED = 1
DT_STRTAB = 5
DT_STRSZ = 10
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF

# Bounds against malformed files: real binaries stay far below them.
_MAX_TABLE_ENTRIES = 65_536
_MAX_REGION_BYTES = 16 * 1024 * 1024
_MAX_INTERPRETER_BYTES = 4096
# An Elf_Verneed chain has no size of its own when found through DT_VERNEED, so this much is read.
_VERNEED_READ_BYTES = 256 * 1024

_HEADER_FORMATS = {64: "HHIQQQIHHHHHH", 32: "HHIIIIIHHHHHH"}
_SECTION_FORMATS = {64: "IIQQQQIIQQ", 32: "IIIIIIIIII"}
_DYNAMIC_FORMATS = {64: "qQ", 32: "iI"}
_VERNEED_FORMAT = "HHIII"
_VERNAUX_FORMAT = "IHHII"
_VERNEED_SIZE = 16

_GLIBC_VERSION = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?")
# glibc 2.36 added the GLIBC_ABI_DT_RELR marker version for objects linked with DT_RELR.
_GLIBC_MARKER_VERSIONS: dict[str, tuple[int, ...]] = {"GLIBC_ABI_DT_RELR": (2, 36)}


class ElfError(ValueError):
    """The file starts like ELF but a header or table is truncated or inconsistent."""


@dataclass(frozen=True)
class Segment:
    kind: int
    offset: int
    vaddr: int
    file_size: int


@dataclass(frozen=True)
class Section:
    kind: int
    offset: int
    size: int
    link: int
    info: int


@dataclass(frozen=True)
class VersionNeed:
    """One required symbol version, such as GLIBC_2.34 from libc.so.6."""

    library: str
    version: str


@dataclass(frozen=True)
class ElfInfo:
    """Header fields and dynamic linking data of one ELF file."""

    bits: int
    little_endian: bool
    file_type: int
    machine: int
    interpreter: str | None
    needed: tuple[str, ...]
    version_needs: tuple[VersionNeed, ...]

    @property
    def machine_name(self) -> str:
        return MACHINE_NAMES.get(self.machine, f"machine {self.machine}")

    def glibc_required(self) -> tuple[tuple[int, ...], str] | None:
        """Return the newest glibc version this file needs and the version name that needs it."""
        newest: tuple[tuple[int, ...], str] | None = None
        for need in self.version_needs:
            version = glibc_version(need.version)
            if version is not None and (newest is None or version > newest[0]):
                newest = (version, need.version)
        return newest


def glibc_version(version_name: str) -> tuple[int, ...] | None:
    """Return the glibc release a symbol version name stands for, or None for other names."""
    marker = _GLIBC_MARKER_VERSIONS.get(version_name)
    if marker is not None:
        return marker

    match = _GLIBC_VERSION.fullmatch(version_name)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


class _Reader:
    """Bounded reads from a seekable stream of known size."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self.size = size

    def read(self, offset: int, length: int, region_name: str) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ElfError(f"{region_name} at offset {offset} ({length} bytes) lies outside the {self.size}-byte file")
        self._stream.seek(offset)
        data = self._stream.read(length)
        if len(data) != length:
            raise ElfError(f"{region_name} at offset {offset} is truncated")
        return data


def parse_elf(stream: BinaryIO, size: int) -> ElfInfo:
    """Parse the headers and dynamic linking data of the ELF file in `stream` (`size` bytes).

    Raises ElfError when the file is not ELF or a table is malformed.
    """
    reader = _Reader(stream, size)
    ident = reader.read(0, 16, "ELF identification")
    if ident[:4] != ELF_MAGIC:
        raise ElfError("missing ELF magic number")

    if ident[4] == ELFCLASS64:
        bits = 64
    elif ident[4] == ELFCLASS32:
        bits = 32
    else:
        raise ElfError(f"invalid ELF class {ident[4]}")

    if ident[5] == ELFDATA2LSB:
        endian = "<"
    elif ident[5] == ELFDATA2MSB:
        endian = ">"
    else:
        raise ElfError(f"invalid ELF byte order {ident[5]}")

    header_format = endian + _HEADER_FORMATS[bits]
    header = struct.unpack(header_format, reader.read(16, struct.calcsize(header_format), "ELF header"))
    (file_type, machine, _version, _entry, ph_offset, sh_offset, _flags, _eh_size,
     ph_entry_size, ph_count, sh_entry_size, sh_count, _sh_string_index) = header

    segments = _read_segments(reader, endian, bits, ph_offset, ph_entry_size, ph_count)
    interpreter = _read_interpreter(reader, segments)

    dynamic_segment = next((segment for segment in segments if segment.kind == PT_DYNAMIC), None)
    if dynamic_segment is not None:
        needed, version_needs = _read_dynamic_from_segments(reader, endian, bits, segments, dynamic_segment)
    else:
        sections = _read_sections(reader, endian, bits, sh_offset, sh_entry_size, sh_count)
        needed, version_needs = _read_dynamic_from_sections(reader, endian, bits, sections)

    return ElfInfo(
        bits=bits,
        little_endian=endian == "<",
        file_type=file_type,
        machine=machine,
        interpreter=interpreter,
        needed=tuple(needed),
        version_needs=tuple(version_needs),
    )


def _read_segments(
    reader: _Reader, endian: str, bits: int, offset: int, entry_size: int, count: int
) -> list[Segment]:
    if offset == 0 or count == 0:
        return []

    minimum_size = 56 if bits == 64 else 32
    if entry_size < minimum_size or count > _MAX_TABLE_ENTRIES:
        raise ElfError(f"invalid program header table ({count} entries of {entry_size} bytes)")

    table = reader.read(offset, entry_size * count, "program header table")
    segments = []
    for index in range(count):
        start = index * entry_size
        if bits == 64:
            kind, _flags, seg_offset, vaddr, _paddr, file_size, _mem_size, _align = struct.unpack_from(
                endian + "IIQQQQQQ", table, start
            )
        else:
            kind, seg_offset, vaddr, _paddr, file_size, _mem_size, _flags, _align = struct.unpack_from(
                endian + "IIIIIIII", table, start
            )
        segments.append(Segment(kind=kind, offset=seg_offset, vaddr=vaddr, file_size=file_size))
    return segments


def _read_sections(
    reader: _Reader, endian: str, bits: int, offset: int, entry_size: int, count: int
) -> list[Section]:
    if offset == 0:
        return []

    section_format = endian + _SECTION_FORMATS[bits]
    if entry_size < struct.calcsize(section_format):
        raise ElfError(f"invalid section header size {entry_size}")

    if count == 0:
        # Extended numbering (System V ABI): with 0xff00 or more sections, e_shnum is 0 and the
        # real count is the sh_size of section 0.
        first = _unpack_section(reader.read(offset, entry_size, "section header 0"), section_format, 0)
        count = first.size
    if count > _MAX_TABLE_ENTRIES:
        raise ElfError(f"section header table claims {count} entries")

    table = reader.read(offset, entry_size * count, "section header table")
    return [_unpack_section(table, section_format, index * entry_size) for index in range(count)]


def _unpack_section(table: bytes, section_format: str, start: int) -> Section:
    _name, kind, _flags, _addr, offset, size, link, info, _align, _entry_size = struct.unpack_from(
        section_format, table, start
    )
    return Section(kind=kind, offset=offset, size=size, link=link, info=info)


def _read_interpreter(reader: _Reader, segments: list[Segment]) -> str | None:
    for segment in segments:
        if segment.kind == PT_INTERP:
            length = min(segment.file_size, _MAX_INTERPRETER_BYTES)
            raw = reader.read(segment.offset, length, "PT_INTERP segment")
            return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    return None


def _read_dynamic_from_segments(
    reader: _Reader, endian: str, bits: int, segments: list[Segment], dynamic: Segment
) -> tuple[list[str], list[VersionNeed]]:
    dynamic_data = _read_region(reader, dynamic.offset, dynamic.file_size, "PT_DYNAMIC segment")
    entries = _parse_dynamic(dynamic_data, endian, bits)

    string_table_address = _first_value(entries, DT_STRTAB)
    if string_table_address is None:
        return [], []
    string_table_size = _first_value(entries, DT_STRSZ)
    string_table_offset = _address_to_offset(segments, string_table_address, "DT_STRTAB")
    if string_table_size is None:
        string_table_size = min(reader.size - string_table_offset, _MAX_REGION_BYTES)
    string_table = _read_region(reader, string_table_offset, string_table_size, "dynamic string table")

    needed = [_string_at(string_table, value) for tag, value in entries if tag == DT_NEEDED]

    version_needs: list[VersionNeed] = []
    verneed_address = _first_value(entries, DT_VERNEED)
    verneed_count = _first_value(entries, DT_VERNEEDNUM)
    if verneed_address is not None and verneed_count:
        verneed_offset = _address_to_offset(segments, verneed_address, "DT_VERNEED")
        length = min(reader.size - verneed_offset, _VERNEED_READ_BYTES)
        verneed_data = reader.read(verneed_offset, length, "version needs")
        version_needs = _parse_version_needs(verneed_data, verneed_count, string_table, endian)
    return needed, version_needs


def _read_dynamic_from_sections(
    reader: _Reader, endian: str, bits: int, sections: list[Section]
) -> tuple[list[str], list[VersionNeed]]:
    needed: list[str] = []
    version_needs: list[VersionNeed] = []

    for section in sections:
        if section.kind == SHT_DYNAMIC:
            string_table = _linked_string_table(reader, sections, section, ".dynamic")
            entries = _parse_dynamic(_read_region(reader, section.offset, section.size, ".dynamic"), endian, bits)
            needed = [_string_at(string_table, value) for tag, value in entries if tag == DT_NEEDED]
            break

    for section in sections:
        if section.kind == SHT_GNU_VERNEED:
            string_table = _linked_string_table(reader, sections, section, ".gnu.version_r")
            verneed_data = _read_region(reader, section.offset, section.size, ".gnu.version_r")
            # sh_info is the number of Elf_Verneed entries (LSB), and 0 means "follow vn_next".
            count = section.info if section.info else _MAX_TABLE_ENTRIES
            version_needs = _parse_version_needs(verneed_data, count, string_table, endian)
            break

    return needed, version_needs


def _linked_string_table(reader: _Reader, sections: list[Section], section: Section, region_name: str) -> bytes:
    if not 0 < section.link < len(sections):
        raise ElfError(f"{region_name} links to section {section.link}, which does not exist")
    linked = sections[section.link]
    return _read_region(reader, linked.offset, linked.size, f"string table of {region_name}")


def _read_region(reader: _Reader, offset: int, size: int, region_name: str) -> bytes:
    if size > _MAX_REGION_BYTES:
        raise ElfError(f"{region_name} claims {size} bytes")
    return reader.read(offset, size, region_name)


def _parse_dynamic(data: bytes, endian: str, bits: int) -> list[tuple[int, int]]:
    entry_format = endian + _DYNAMIC_FORMATS[bits]
    entry_size = struct.calcsize(entry_format)
    entries = []
    for start in range(0, len(data) - entry_size + 1, entry_size):
        tag, value = struct.unpack_from(entry_format, data, start)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    return entries


def _first_value(entries: list[tuple[int, int]], tag: int) -> int | None:
    for entry_tag, value in entries:
        if entry_tag == tag:
            return value
    return None


def _address_to_offset(segments: list[Segment], address: int, region_name: str) -> int:
    for segment in segments:
        if segment.kind == PT_LOAD and segment.vaddr <= address < segment.vaddr + segment.file_size:
            return address - segment.vaddr + segment.offset
    raise ElfError(f"{region_name} address {address:#x} is not inside any PT_LOAD segment")


def _parse_version_needs(data: bytes, count: int, string_table: bytes, endian: str) -> list[VersionNeed]:
    needs: list[VersionNeed] = []
    entry_offset = 0
    for _ in range(min(count, _MAX_TABLE_ENTRIES)):
        if entry_offset + _VERNEED_SIZE > len(data):
            raise ElfError(f"Elf_Verneed entry at {entry_offset} lies outside the version needs")
        _version, aux_count, file_name, aux_offset, next_offset = struct.unpack_from(
            endian + _VERNEED_FORMAT, data, entry_offset
        )
        library = _string_at(string_table, file_name)

        aux_position = entry_offset + aux_offset
        for _ in range(aux_count):
            if aux_position + _VERNEED_SIZE > len(data):
                raise ElfError(f"Elf_Vernaux entry at {aux_position} lies outside the version needs")
            _hash, _flags, _other, name, aux_next = struct.unpack_from(endian + _VERNAUX_FORMAT, data, aux_position)
            needs.append(VersionNeed(library=library, version=_string_at(string_table, name)))
            if aux_next == 0:
                break
            aux_position += aux_next

        if next_offset == 0:
            break
        entry_offset += next_offset
    return needs


def _string_at(string_table: bytes, index: int) -> str:
    if not 0 <= index < len(string_table):
        raise ElfError(f"string index {index} lies outside the {len(string_table)}-byte string table")
    end = string_table.find(b"\0", index)
    if end == -1:
        end = len(string_table)
    return string_table[index:end].decode("utf-8", "replace")
