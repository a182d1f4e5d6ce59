"""Tests for the layer checker. Every layer is a small zip built here, with hand-made binaries."""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from telemetry_ext.layer_check import ARCHITECTURES, RUNTIMES, Finding, Report, Severity, check_layer, main
from telemetry_ext.layer_check import packaging
from telemetry_ext.layer_check.elf import parse_elf

EM_386 = 3
EM_X86_64 = 62
EM_AARCH64 = 183
ET_REL = 1
ET_EXEC = 2
ET_DYN = 3

SHT_STRTAB = 3
SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
DT_NEEDED = 1
DT_STRTAB = 5
DT_STRSZ = 10
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF

LAUNCHER = b"#!/bin/bash\nexec /opt/telemetry-ext/bin/run \"$@\"\n"

# An entry is (path inside the zip, content, Unix mode). A mode of None writes the entry the
# way Windows tools do, without Unix permissions. A path ending in "/" is a directory.
Entry = tuple[str, bytes, "int | None"]


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


def build_elf(
    *,
    machine: int = EM_X86_64,
    bits: int = 64,
    little_endian: bool = True,
    file_type: int = ET_DYN,
    version_needs: dict[str, list[str]] | None = None,
    needed: tuple[str, ...] = (),
    interpreter: str | None = None,
    with_sections: bool = True,
    with_segments: bool = False,
) -> bytes:
    """Build an ELF file with .dynstr, .gnu.version_r and .dynamic, reachable through section
    headers, program headers (PT_LOAD, PT_DYNAMIC, PT_INTERP) or both."""
    endian = "<" if little_endian else ">"
    version_needs = version_needs or {}
    base_address = 0x10000

    string_table = bytearray(b"\0")
    string_offsets: dict[str, int] = {}

    def add_string(text: str) -> int:
        if text not in string_offsets:
            string_offsets[text] = len(string_table)
            string_table.extend(text.encode() + b"\0")
        return string_offsets[text]

    for library in needed:
        add_string(library)

    verneed = bytearray()
    libraries = list(version_needs.items())
    for index, (library, versions) in enumerate(libraries):
        next_offset = 16 + 16 * len(versions) if index < len(libraries) - 1 else 0
        verneed += struct.pack(endian + "HHIII", 1, len(versions), add_string(library), 16, next_offset)
        for position, version in enumerate(versions):
            aux_next = 16 if position < len(versions) - 1 else 0
            verneed += struct.pack(endian + "IHHII", 0, 0, 2 + position, add_string(version), aux_next)

    header_size = 64 if bits == 64 else 52
    segment_size = 56 if bits == 64 else 32
    section_size = 64 if bits == 64 else 40
    segment_count = 0
    if with_segments:
        segment_count = 3 if interpreter else 2

    def align(offset: int) -> int:
        return (offset + 7) & ~7

    offset = header_size + segment_count * segment_size
    interpreter_bytes = (interpreter.encode() + b"\0") if interpreter else b""
    interpreter_offset = offset
    offset = align(offset + len(interpreter_bytes))
    string_table_offset = offset
    offset = align(offset + len(string_table))
    verneed_offset = offset
    offset = align(offset + len(verneed))

    dynamic_format = endian + ("qQ" if bits == 64 else "iI")
    dynamic_entries = [(DT_NEEDED, string_offsets[library]) for library in needed]
    dynamic_entries += [(DT_STRTAB, base_address + string_table_offset), (DT_STRSZ, len(string_table))]
    if libraries:
        dynamic_entries += [(DT_VERNEED, base_address + verneed_offset), (DT_VERNEEDNUM, len(libraries))]
    dynamic_entries.append((0, 0))
    dynamic = b"".join(struct.pack(dynamic_format, tag, value) for tag, value in dynamic_entries)
    dynamic_offset = offset
    offset = align(offset + len(dynamic))

    section_names = b"\0.dynstr\0.gnu.version_r\0.dynamic\0.shstrtab\0"
    section_names_offset = offset
    offset = align(offset + len(section_names))
    section_table_offset = offset if with_sections else 0
    total_size = offset + (5 * section_size if with_sections else 0)

    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little_endian else 2, 1, 0]) + bytes(8)
    header_format = endian + ("HHIQQQIHHHHHH" if bits == 64 else "HHIIIIIHHHHHH")
    header = ident + struct.pack(
        header_format,
        file_type,
        machine,
        1,
        0,
        header_size if with_segments else 0,
        section_table_offset,
        0,
        header_size,
        segment_size,
        segment_count,
        section_size,
        5 if with_sections else 0,
        4 if with_sections else 0,
    )

    def segment(kind: int, seg_offset: int, size: int) -> bytes:
        address = base_address + seg_offset
        if bits == 64:
            return struct.pack(endian + "IIQQQQQQ", kind, 4, seg_offset, address, address, size, size, 8)
        return struct.pack(endian + "IIIIIIII", kind, seg_offset, address, address, size, size, 4, 4)

    segments = b""
    if with_segments:
        segments += segment(PT_LOAD, 0, total_size)
        segments += segment(PT_DYNAMIC, dynamic_offset, len(dynamic))
        if interpreter:
            segments += segment(PT_INTERP, interpreter_offset, len(interpreter_bytes))

    def section(name: int, kind: int, sec_offset: int, size: int, link: int = 0, info: int = 0) -> bytes:
        if bits == 64:
            return struct.pack(endian + "IIQQQQIIQQ", name, kind, 0, 0, sec_offset, size, link, info, 8, 0)
        return struct.pack(endian + "IIIIIIIIII", name, kind, 0, 0, sec_offset, size, link, info, 4, 0)

    body = bytearray(total_size)
    body[: len(header)] = header
    body[header_size : header_size + len(segments)] = segments
    body[interpreter_offset : interpreter_offset + len(interpreter_bytes)] = interpreter_bytes
    body[string_table_offset : string_table_offset + len(string_table)] = string_table
    body[verneed_offset : verneed_offset + len(verneed)] = verneed
    body[dynamic_offset : dynamic_offset + len(dynamic)] = dynamic
    body[section_names_offset : section_names_offset + len(section_names)] = section_names
    if with_sections:
        table = (
            section(0, 0, 0, 0)
            + section(1, SHT_STRTAB, string_table_offset, len(string_table))
            + section(9, SHT_GNU_VERNEED, verneed_offset, len(verneed), link=1, info=len(libraries))
            + section(24, SHT_DYNAMIC, dynamic_offset, len(dynamic), link=1)
            + section(33, SHT_STRTAB, section_names_offset, len(section_names))
        )
        body[section_table_offset : section_table_offset + len(table)] = table
    return bytes(body)


def build_elf_header(machine: int, bits: int = 64, little_endian: bool = True) -> bytes:
    """Build an ELF file that is only a header, which is enough for the machine check."""
    elf = build_elf(machine=machine, bits=bits, little_endian=little_endian, with_sections=False)
    return elf[: 64 if bits == 64 else 52]


def build_mach_o(magic: int, cpu_types: tuple[int, ...] = (0x0100000C,)) -> bytes:
    """Build the start of a Mach-O file: a thin header or a fat header with its architecture table."""
    if magic in (0xCAFEBABE, 0xCAFEBABF, 0xBEBAFECA, 0xBFBAFECA):
        endian = ">" if magic in (0xCAFEBABE, 0xCAFEBABF) else "<"
        record = "IIIII" if magic in (0xCAFEBABE, 0xBEBAFECA) else "IIQQII"
        data = struct.pack(">I", magic) + struct.pack(endian + "I", len(cpu_types))
        for cpu_type in cpu_types:
            data += struct.pack(endian + record, cpu_type, 0, 4096, 4096, 12) if record == "IIIII" else struct.pack(
                endian + record, cpu_type, 0, 4096, 4096, 12, 0
            )
        return data + bytes(64)
    endian = ">" if magic in (0xFEEDFACE, 0xFEEDFACF) else "<"
    return struct.pack(">I", magic) + struct.pack(endian + "II", cpu_types[0], 0) + bytes(64)


def build_pe(machine: int = 0x8664) -> bytes:
    """Build a DOS header that points to a PE signature and COFF machine field."""
    data = bytearray(0x80 + 24)
    data[0:2] = b"MZ"
    struct.pack_into("<I", data, 0x3C, 0x80)
    data[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<H", data, 0x84, machine)
    return bytes(data)


def write_layer(path: Path, entries: list[Entry]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is None:
                info.create_system = 0
                info.external_attr = 0x10 if name.endswith("/") else 0
            else:
                file_type = stat.S_IFDIR if name.endswith("/") else stat.S_IFREG
                info.create_system = 3
                info.external_attr = (file_type | mode) << 16
            archive.writestr(info, data)
    return path


def check(
    tmp_path: Path,
    entries: list[Entry],
    runtime: str = "python3.12",
    arch: str = "x86_64",
    function_bytes: int = 0,
) -> Report:
    layer = write_layer(tmp_path / "layer.zip", entries)
    return check_layer(layer, RUNTIMES[runtime], ARCHITECTURES[arch], function_bytes)


def findings_for(report: Report, code: str) -> list[Finding]:
    return [finding for finding in report.findings if finding.code == code]


def clean_layer() -> list[Entry]:
    """A layer in the recommended layout: a launcher, its private folder, and Python packages."""
    glibc_2_34 = {"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.34"]}
    return [
        ("extensions/", b"", 0o755),
        ("extensions/telemetry-ext", LAUNCHER, 0o755),
        ("telemetry-ext/", b"", 0o755),
        ("telemetry-ext/telemetry_ext/__init__.py", b"", 0o644),
        ("telemetry-ext/requests/__init__.py", b"", 0o644),
        ("python/", b"", 0o755),
        ("python/mypkg/__init__.py", b"VALUE = 1\n", 0o644),
        ("python/mypkg/_speedups.cpython-312-x86_64-linux-gnu.so", build_elf(version_needs=glibc_2_34), 0o755),
        ("python/lib/python3.12/site-packages/six.py", b"", 0o644),
        ("bin/tool", build_elf(file_type=ET_EXEC, version_needs={"libc.so.6": ["GLIBC_2.17"]}), 0o755),
    ]


# ---------------------------------------------------------------------------------------------
# Native files built for another system
# ---------------------------------------------------------------------------------------------

MACH_O_MAGICS = [0xFEEDFACE, 0xCEFAEDFE, 0xFEEDFACF, 0xCFFAEDFE, 0xCAFEBABE, 0xBEBAFECA, 0xCAFEBABF, 0xBFBAFECA]


@pytest.mark.parametrize("magic", MACH_O_MAGICS, ids=[f"{magic:#010x}" for magic in MACH_O_MAGICS])
def test_mach_o_shared_object_is_error(tmp_path: Path, magic: int) -> None:
    report = check(tmp_path, [("python/fast.so", build_mach_o(magic), 0o755)])

    found = findings_for(report, "foreign-binary")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert found[0].path == "python/fast.so"
    assert "Mach-O" in found[0].problem


def test_mach_o_universal_names_architectures(tmp_path: Path) -> None:
    report = check(tmp_path, [("lib/libfoo.so", build_mach_o(0xCAFEBABE, (0x01000007, 0x0100000C)), 0o755)])

    found = findings_for(report, "foreign-binary")
    assert len(found) == 1
    assert "x86_64, arm64" in found[0].problem


def test_mach_o_outside_load_paths_is_warning(tmp_path: Path) -> None:
    report = check(tmp_path, [("python/pkg/data/helper.dylib", build_mach_o(0xCFFAEDFE), 0o644)])

    found = findings_for(report, "foreign-binary")
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING


def test_java_class_file_is_not_mach_o(tmp_path: Path) -> None:
    class_file = struct.pack(">IHH", 0xCAFEBABE, 0, 65) + bytes(32)

    report = check(tmp_path, [("java/lib/Main.class", class_file, 0o644)], runtime="java21")

    assert findings_for(report, "foreign-binary") == []


def test_pe_extension_module_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("python/fast.cp312-win_amd64.pyd", build_pe(0x8664), 0o644)])

    found = findings_for(report, "foreign-binary")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert "Windows PE file for x86-64" in found[0].problem


def test_pe_launcher_template_is_warning(tmp_path: Path) -> None:
    report = check(tmp_path, [("python/setuptools/cli-64.exe", build_pe(0x8664), 0o644)])

    found = findings_for(report, "foreign-binary")
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING


def test_aarch64_elf_for_x86_64_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("python/fast.so", build_elf_header(EM_AARCH64), 0o755)], arch="x86_64")

    found = findings_for(report, "elf-machine")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert found[0].path == "python/fast.so"
    assert "ELF file for aarch64" in found[0].problem


def test_x86_64_elf_for_arm64_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("bin/tool", build_elf_header(EM_X86_64), 0o755)], arch="arm64")

    found = findings_for(report, "elf-machine")
    assert len(found) == 1
    assert "ELF file for x86_64" in found[0].problem


def test_aarch64_elf_for_arm64_passes(tmp_path: Path) -> None:
    report = check(tmp_path, [("bin/tool", build_elf_header(EM_AARCH64), 0o755)], arch="arm64")

    assert report.findings == ()


def test_32_bit_elf_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("lib/libold.so", build_elf_header(EM_386, bits=32), 0o755)])

    found = findings_for(report, "elf-machine")
    assert len(found) == 1
    assert "32-bit" in found[0].problem


def test_big_endian_elf_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("lib/libbe.so", build_elf_header(EM_X86_64, little_endian=False), 0o755)])

    found = findings_for(report, "elf-machine")
    assert len(found) == 1
    assert "big-endian" in found[0].problem


def test_foreign_object_file_is_warning(tmp_path: Path) -> None:
    object_file = build_elf(machine=EM_AARCH64, file_type=ET_REL, with_sections=False)

    report = check(tmp_path, [("python/pkg/build/helper.o", object_file, 0o644)])

    found = findings_for(report, "elf-machine")
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING


def test_truncated_elf_is_warning(tmp_path: Path) -> None:
    elf = build_elf(version_needs={"libc.so.6": ["GLIBC_2.34"]})

    report = check(tmp_path, [("python/pkg/fast.so", elf[:-40], 0o755)])

    found = findings_for(report, "elf-unreadable")
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING


def test_musl_binary_is_error(tmp_path: Path) -> None:
    elf = build_elf(
        needed=("libc.musl-x86_64.so.1",),
        interpreter="/lib/ld-musl-x86_64.so.1",
        with_sections=False,
        with_segments=True,
    )

    report = check(tmp_path, [("bin/tool", elf, 0o755)])

    found = findings_for(report, "elf-musl")
    assert len(found) == 1
    assert "ld-musl" in found[0].problem


# ---------------------------------------------------------------------------------------------
# glibc versions
# ---------------------------------------------------------------------------------------------


def test_glibc_2_34_for_python3_11_is_error(tmp_path: Path) -> None:
    elf = build_elf(version_needs={"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.17"]})

    report = check(tmp_path, [("python/pkg/fast.cpython-311-x86_64-linux-gnu.so", elf, 0o755)], runtime="python3.11")

    found = findings_for(report, "glibc-version")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert "glibc 2.34 (GLIBC_2.34)" in found[0].problem
    assert "glibc 2.26" in found[0].problem


def test_glibc_2_34_for_python3_12_passes(tmp_path: Path) -> None:
    elf = build_elf(version_needs={"libc.so.6": ["GLIBC_2.34"]})

    report = check(tmp_path, [("python/pkg/fast.cpython-312-x86_64-linux-gnu.so", elf, 0o755)], runtime="python3.12")

    assert findings_for(report, "glibc-version") == []


def test_glibc_found_through_program_headers(tmp_path: Path) -> None:
    elf = build_elf(
        version_needs={"libm.so.6": ["GLIBC_2.29"], "libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.28"]},
        with_sections=False,
        with_segments=True,
    )

    report = check(tmp_path, [("bin/tool", elf, 0o755)], runtime="provided.al2")

    found = findings_for(report, "glibc-version")
    assert len(found) == 1
    assert "GLIBC_2.29" in found[0].problem


def test_glibc_dt_relr_marker_needs_2_36(tmp_path: Path) -> None:
    elf = build_elf(version_needs={"libc.so.6": ["GLIBC_ABI_DT_RELR", "GLIBC_2.17"]})

    report = check(tmp_path, [("lib/libnew.so", elf, 0o755)], runtime="provided.al2023")

    found = findings_for(report, "glibc-version")
    assert len(found) == 1
    assert "glibc 2.36" in found[0].problem


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little_endian", [True, False])
@pytest.mark.parametrize("layout", ["sections", "segments"])
def test_parse_elf_reads_every_class_and_byte_order(bits: int, little_endian: bool, layout: str) -> None:
    elf = build_elf(
        machine=EM_AARCH64,
        bits=bits,
        little_endian=little_endian,
        version_needs={"libc.so.6": ["GLIBC_2.17", "GLIBC_2.28"], "libstdc++.so.6": ["GLIBCXX_3.4.29"]},
        needed=("libstdc++.so.6", "libc.so.6"),
        with_sections=layout == "sections",
        with_segments=layout == "segments",
    )

    info = parse_elf(io.BytesIO(elf), len(elf))

    assert info.bits == bits
    assert info.little_endian is little_endian
    assert info.machine == EM_AARCH64
    assert info.needed == ("libstdc++.so.6", "libc.so.6")
    assert [(need.library, need.version) for need in info.version_needs] == [
        ("libc.so.6", "GLIBC_2.17"),
        ("libc.so.6", "GLIBC_2.28"),
        ("libstdc++.so.6", "GLIBCXX_3.4.29"),
    ]
    assert info.glibc_required() == ((2, 28), "GLIBC_2.28")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_gcc_shared_object_is_parsed(tmp_path: Path) -> None:
    source = tmp_path / "tiny.c"
    source.write_text("#include <string.h>\nvoid copy(char *d, const char *s, size_t n) { memcpy(d, s, n); }\n")
    shared_object = tmp_path / "libtiny.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(shared_object), str(source)], check=True, timeout=60)
    data = shared_object.read_bytes()

    info = parse_elf(io.BytesIO(data), len(data))

    host_machines = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}
    if platform.machine() in host_machines:
        assert info.machine == host_machines[platform.machine()]
    assert "libc.so.6" in info.needed
    assert info.glibc_required() is not None


# ---------------------------------------------------------------------------------------------
# CPython extension module tags
# ---------------------------------------------------------------------------------------------


def test_cpython_311_module_for_python3_12_is_error(tmp_path: Path) -> None:
    name = "python/pkg/fast.cpython-311-x86_64-linux-gnu.so"

    report = check(tmp_path, [(name, build_elf_header(EM_X86_64), 0o755)], runtime="python3.12")

    found = findings_for(report, "python-abi")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert found[0].path == name
    assert "cpython-311-x86_64-linux-gnu" in found[0].problem
    assert "cpython-312-x86_64-linux-gnu" in found[0].problem


def test_matching_cpython_module_passes(tmp_path: Path) -> None:
    name = "python/pkg/fast.cpython-313-aarch64-linux-gnu.so"

    report = check(tmp_path, [(name, build_elf_header(EM_AARCH64), 0o755)], runtime="python3.13", arch="arm64")

    assert report.findings == ()


def test_module_tagged_for_other_arch_is_error(tmp_path: Path) -> None:
    # The content is right for x86_64, but Python looks for the x86_64 tag, so the name alone breaks the import.
    name = "python/pkg/fast.cpython-312-aarch64-linux-gnu.so"

    report = check(tmp_path, [(name, build_elf_header(EM_X86_64), 0o755)], runtime="python3.12")

    found = findings_for(report, "python-abi")
    assert len(found) == 1
    assert "aarch64-linux-gnu" in found[0].problem


def test_free_threaded_module_is_error(tmp_path: Path) -> None:
    name = "python/pkg/fast.cpython-313t-x86_64-linux-gnu.so"

    report = check(tmp_path, [(name, build_elf_header(EM_X86_64), 0o755)], runtime="python3.13")

    assert len(findings_for(report, "python-abi")) == 1


def test_module_in_versioned_site_packages_uses_that_version(tmp_path: Path) -> None:
    name = "python/lib/python3.11/site-packages/pkg/fast.cpython-311-x86_64-linux-gnu.so"

    report = check(tmp_path, [(name, build_elf_header(EM_X86_64), 0o755)], runtime="python3.12")

    assert findings_for(report, "python-abi") == []
    assert len(findings_for(report, "python-version-path")) == 1


def test_abi3_module_without_metadata_passes(tmp_path: Path) -> None:
    report = check(tmp_path, [("python/pkg/_rust.abi3.so", build_elf_header(EM_X86_64), 0o755)], runtime="python3.9")

    assert report.findings == ()


def abi3_layer(wheel_tag: str) -> list[Entry]:
    record = "pkg/__init__.py,,\npkg/_rust.abi3.so,sha256=x,64\npkg-1.0.dist-info/RECORD,,\n"
    wheel = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {wheel_tag}\n"
    return [
        ("python/pkg/__init__.py", b"", 0o644),
        ("python/pkg/_rust.abi3.so", build_elf_header(EM_X86_64), 0o755),
        ("python/pkg-1.0.dist-info/RECORD", record.encode(), 0o644),
        ("python/pkg-1.0.dist-info/WHEEL", wheel.encode(), 0o644),
    ]


def test_abi3_module_newer_than_target_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, abi3_layer("cp313-abi3-manylinux_2_17_x86_64"), runtime="python3.12")

    found = findings_for(report, "python-abi")
    assert len(found) == 1
    assert found[0].path == "python/pkg/_rust.abi3.so"
    assert "CPython 3.13 and newer" in found[0].problem


def test_abi3_module_older_than_target_passes(tmp_path: Path) -> None:
    report = check(tmp_path, abi3_layer("cp38-abi3-manylinux_2_17_x86_64"), runtime="python3.12")

    assert findings_for(report, "python-abi") == []


def test_module_tag_checked_without_python_runtime(tmp_path: Path) -> None:
    name = "opt-tool/fast.cpython-312-aarch64-linux-gnu.so"

    report = check(tmp_path, [(name, b"not a binary", 0o644)], runtime="provided.al2023", arch="x86_64")

    found = findings_for(report, "python-abi")
    assert len(found) == 1
    assert "but the layer targets x86_64-linux-gnu" in found[0].problem


# ---------------------------------------------------------------------------------------------
# Search paths
# ---------------------------------------------------------------------------------------------


def test_top_level_package_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("requests/__init__.py", b"", 0o644), ("requests/api.py", b"", 0o644)])

    found = findings_for(report, "python-path")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert found[0].path == "requests/"


def test_top_level_module_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("six.py", b"", 0o644)])

    found = findings_for(report, "python-path")
    assert [finding.path for finding in found] == ["six.py"]


def test_top_level_namespace_package_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("google/protobuf/__init__.py", b"", 0o644)])

    found = findings_for(report, "python-path")
    assert [finding.path for finding in found] == ["google/"]


def test_site_packages_without_python_prefix_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("lib/python3.12/site-packages/requests/__init__.py", b"", 0o644)])

    found = findings_for(report, "python-path")
    assert [finding.path for finding in found] == ["lib/python3.12/site-packages/"]


def test_other_python_version_site_packages_is_warning(tmp_path: Path) -> None:
    report = check(tmp_path, [("python/lib/python3.11/site-packages/requests/__init__.py", b"", 0o644)])

    found = findings_for(report, "python-version-path")
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING
    assert found[0].path == "python/lib/python3.11/site-packages/"
    assert "not on the path for this runtime" in found[0].problem
    assert "python3.12 imports only from python/ and python/lib/python3.12/site-packages/" in found[0].problem


def test_extension_private_folder_is_not_flagged(tmp_path: Path) -> None:
    entries = [
        ("extensions/telemetry-ext", LAUNCHER, 0o755),
        ("telemetry-ext/requests/__init__.py", b"", 0o644),
        ("telemetry-ext/lib/python3.11/site-packages/urllib3/__init__.py", b"", 0o644),
    ]

    report = check(tmp_path, entries)

    assert report.findings == ()


def test_folder_named_in_launcher_is_private(tmp_path: Path) -> None:
    launcher = b"#!/bin/sh\nexport PYTHONPATH=/opt/shipper-deps\nexec python3 /opt/shipper-deps/main.py\n"
    entries = [
        ("extensions/shipper", launcher, 0o755),
        ("shipper-deps/requests/__init__.py", b"", 0o644),
    ]

    report = check(tmp_path, entries)

    assert findings_for(report, "python-path") == []


def test_package_beside_unrelated_launcher_is_flagged(tmp_path: Path) -> None:
    entries = [
        ("extensions/telemetry-ext", LAUNCHER, 0o755),
        ("requests/__init__.py", b"", 0o644),
    ]

    report = check(tmp_path, entries)

    assert [finding.path for finding in findings_for(report, "python-path")] == ["requests/"]


def test_bundled_python_sets_module_version(tmp_path: Path) -> None:
    # An extension that brings its own Python 3.11 loads cpython-311 modules on any runtime.
    module_name = "ext/lib/python3.11/site-packages/pkg/fast.cpython-311-x86_64-linux-gnu.so"
    entries = [
        ("extensions/ext", b"#!/bin/sh\nexec /opt/ext/bin/python3.11 /opt/ext/main.py\n", 0o755),
        ("ext/bin/python3.11", build_elf_header(EM_X86_64), 0o755),
        (module_name, build_elf_header(EM_X86_64), 0o755),
    ]

    report = check(tmp_path, entries, runtime="python3.12")

    assert findings_for(report, "python-abi") == []


def test_top_level_node_modules_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("node_modules/left-pad/index.js", b"", 0o644)], runtime="nodejs20.x")

    found = findings_for(report, "node-path")
    assert [finding.path for finding in found] == ["node_modules/"]


def test_node_modules_for_other_major_is_warning(tmp_path: Path) -> None:
    report = check(tmp_path, [("nodejs/node18/node_modules/left-pad/index.js", b"", 0o644)], runtime="nodejs20.x")

    found = findings_for(report, "node-version-path")
    assert [finding.path for finding in found] == ["nodejs/node18/node_modules/"]


def test_jar_outside_java_lib_is_warning(tmp_path: Path) -> None:
    entries = [("jackson-core.jar", b"PK", 0o644), ("java/lib/good.jar", b"PK", 0o644)]

    report = check(tmp_path, entries, runtime="java21")

    found = findings_for(report, "java-path")
    assert [finding.path for finding in found] == ["jackson-core.jar"]


# ---------------------------------------------------------------------------------------------
# extensions/
# ---------------------------------------------------------------------------------------------


def test_launcher_without_execute_bit_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("extensions/telemetry-ext", LAUNCHER, 0o644)])

    found = findings_for(report, "extension-mode")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert found[0].path == "extensions/telemetry-ext"
    assert "0644" in found[0].problem


def test_launcher_executable_by_owner_only_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("extensions/telemetry-ext", LAUNCHER, 0o744)])

    found = findings_for(report, "extension-mode")
    assert len(found) == 1
    assert "non-root user" in found[0].problem


def test_launcher_without_unix_mode_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("extensions/telemetry-ext", LAUNCHER, None)])

    found = findings_for(report, "extension-mode")
    assert len(found) == 1
    assert "no Unix permissions" in found[0].problem


def test_launcher_with_crlf_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("extensions/telemetry-ext", LAUNCHER.replace(b"\n", b"\r\n"), 0o755)])

    found = findings_for(report, "extension-crlf")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert found[0].path == "extensions/telemetry-ext"


def test_launcher_without_shebang_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("extensions/telemetry-ext", b"exec /opt/telemetry-ext/bin/run\n", 0o755)])

    found = findings_for(report, "extension-shebang")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert "#!" in found[0].problem


def test_launcher_with_byte_order_mark_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("extensions/telemetry-ext", b"\xef\xbb\xbf" + LAUNCHER, 0o755)])

    found = findings_for(report, "extension-shebang")
    assert len(found) == 1
    assert "byte order mark" in found[0].problem


def test_empty_launcher_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("extensions/telemetry-ext", b"", 0o755)])

    assert len(findings_for(report, "extension-empty")) == 1


def test_elf_launcher_needs_no_shebang(tmp_path: Path) -> None:
    report = check(tmp_path, [("extensions/agent", build_elf_header(EM_X86_64), 0o755)])

    assert report.findings == ()


def test_directory_in_extensions_is_warning(tmp_path: Path) -> None:
    entries = [("extensions/tools/", b"", 0o755), ("extensions/tools/helper", LAUNCHER, 0o755)]

    report = check(tmp_path, entries)

    found = findings_for(report, "extension-directory")
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING
    assert found[0].path == "extensions/tools/"


def test_more_than_ten_launchers_is_error(tmp_path: Path) -> None:
    entries = [(f"extensions/ext{index:02d}", LAUNCHER, 0o755) for index in range(11)]

    report = check(tmp_path, entries)

    found = findings_for(report, "extension-count")
    assert len(found) == 1
    assert "11 files" in found[0].problem


def test_ten_launchers_pass(tmp_path: Path) -> None:
    entries = [(f"extensions/ext{index:02d}", LAUNCHER, 0o755) for index in range(10)]

    report = check(tmp_path, entries)

    assert findings_for(report, "extension-count") == []


# ---------------------------------------------------------------------------------------------
# The archive as a whole
# ---------------------------------------------------------------------------------------------


def test_layer_over_size_limit_is_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "UNZIPPED_LIMIT_BYTES", 100_000)

    report = check(tmp_path, [("python/data.bin", bytes(150_000), 0o644)])

    found = findings_for(report, "unzipped-size")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert found[0].path is None
    assert "150,000 bytes unzipped" in found[0].problem
    assert "python/data.bin" in found[0].fix


def test_function_size_counts_toward_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "UNZIPPED_LIMIT_BYTES", 100_000)

    report = check(tmp_path, [("python/data.bin", bytes(60_000), 0o644)], function_bytes=50_000)

    found = findings_for(report, "unzipped-size")
    assert len(found) == 1
    assert found[0].severity is Severity.ERROR
    assert "layer 60,000 + function 50,000" in found[0].problem


def test_layer_near_size_limit_is_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "UNZIPPED_LIMIT_BYTES", 100_000)

    report = check(tmp_path, [("python/data.bin", bytes(90_000), 0o644)])

    found = findings_for(report, "unzipped-size")
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING
    assert "90%" in found[0].problem


def test_file_not_world_readable_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("python/secret.py", b"", 0o600)])

    found = findings_for(report, "permissions")
    assert len(found) == 1
    assert found[0].path == "python/secret.py"
    assert "0600" in found[0].problem


def test_permission_findings_are_capped(tmp_path: Path) -> None:
    entries = [(f"python/module{index:02d}.py", b"", 0o600) for index in range(25)]

    report = check(tmp_path, entries)

    found = findings_for(report, "permissions")
    assert len(found) == 21
    assert found[-1].path is None
    assert "5 more files or directories" in found[-1].problem


def test_directory_not_searchable_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("python/", b"", 0o700), ("python/a.py", b"", 0o644)])

    found = findings_for(report, "permissions")
    assert [finding.path for finding in found] == ["python/"]


def test_zip_over_direct_upload_limit_is_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "DIRECT_UPLOAD_LIMIT_BYTES", 100)

    report = check(tmp_path, [("python/data.bin", os.urandom(2000), 0o644)])

    found = findings_for(report, "zip-size")
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING


def test_empty_layer_is_warning(tmp_path: Path) -> None:
    report = check(tmp_path, [("python/", b"", 0o755)])

    assert len(findings_for(report, "empty-layer")) == 1


def test_parent_directory_path_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("../escape.py", b"", 0o644)])

    found = findings_for(report, "unsafe-path")
    assert [finding.path for finding in found] == ["../escape.py"]


def test_backslash_path_is_error(tmp_path: Path) -> None:
    report = check(tmp_path, [("python\\requests\\__init__.py", b"", 0o644)])

    assert len(findings_for(report, "unsafe-path")) == 1


def test_duplicate_path_is_warning(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        report = check(tmp_path, [("python/a.py", b"1", 0o644), ("python/a.py", b"2", 0o644)])

    found = findings_for(report, "duplicate-path")
    assert [finding.path for finding in found] == ["python/a.py"]


def test_corrupt_member_is_error(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "layer.zip", [("python/big.py", b"x = 1\n" * 2000, 0o644)])
    data = bytearray(layer.read_bytes())
    data[60:80] = bytes(20)  # Overwrite deflate data of the only member, just after its local header.
    layer.write_bytes(bytes(data))

    report = check_layer(layer, RUNTIMES["python3.12"], ARCHITECTURES["x86_64"])

    assert len(findings_for(report, "unreadable-member")) == 1


def test_clean_layer_has_no_findings(tmp_path: Path) -> None:
    report = check(tmp_path, clean_layer())

    assert report.findings == ()
    assert report.unzipped_bytes > 0


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def test_main_clean_layer_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = write_layer(tmp_path / "layer.zip", clean_layer())
    unzipped = sum(len(data) for name, data, mode in clean_layer())

    status = main([str(layer), "--runtime", "python3.12", "--arch", "x86_64"])

    output = capsys.readouterr().out.splitlines()
    assert status == 0
    assert output == [f"layer.zip: OK (python3.12, x86_64), {unzipped:,} bytes unzipped"]


def test_main_bad_layer_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = [
        ("extensions/telemetry-ext", LAUNCHER, 0o644),
        ("python/fast.so", build_mach_o(0xCFFAEDFE), 0o755),
        ("python/lib/python3.11/site-packages/six.py", b"", 0o644),
    ]
    layer = write_layer(tmp_path / "layer.zip", entries)

    status = main([str(layer), "--runtime", "python3.12", "--arch", "x86_64"])

    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    assert lines[0] == (
        "ERROR extensions/telemetry-ext: extension launcher has mode 0644, so it is not executable "
        "(run chmod 755 on it before zipping)"
    )
    assert lines[1].startswith("ERROR python/fast.so: Mach-O (macOS) binary for arm64")
    assert lines[2].startswith("WARNING python/lib/python3.11/site-packages/: ")
    assert lines[3].startswith("layer.zip: 2 errors, 1 warning (python3.12, x86_64), ")
    assert len(lines) == 4


def test_main_warnings_only_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = write_layer(tmp_path / "layer.zip", [("python/lib/python3.11/site-packages/six.py", b"", 0o644)])

    status = main([str(layer), "--runtime", "python3.12"])

    assert status == 0
    assert "layer.zip: 0 errors, 1 warning (python3.12, x86_64)" in capsys.readouterr().out


def test_main_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = write_layer(tmp_path / "layer.zip", [("python/fast.so", build_elf_header(EM_AARCH64), 0o755)])

    status = main([str(layer), "--runtime", "python3.12", "--arch", "x86_64", "--json", "--function-size", "1000"])

    document = json.loads(capsys.readouterr().out)
    assert status == 1
    assert document["ok"] is False
    assert document["errors"] == 1
    assert document["functionBytes"] == 1000
    assert document["limitBytes"] == 262_144_000
    assert document["findings"][0]["code"] == "elf-machine"
    assert document["findings"][0]["path"] == "python/fast.so"
    assert document["findings"][0]["severity"] == "error"


def test_main_invalid_runtime_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = write_layer(tmp_path / "layer.zip", clean_layer())

    status = main([str(layer), "--runtime", "python3.8"])

    error_output = capsys.readouterr().err
    assert status == 2
    assert "invalid runtime 'python3.8'" in error_output
    assert "python3.13" in error_output
    assert "provided.al2023" in error_output


def test_main_invalid_arch_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = write_layer(tmp_path / "layer.zip", clean_layer())

    status = main([str(layer), "--runtime", "python3.12", "--arch", "amd64"])

    error_output = capsys.readouterr().err
    assert status == 2
    assert "invalid architecture 'amd64' (valid architectures: x86_64, arm64)" in error_output


def test_main_negative_function_size_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = write_layer(tmp_path / "layer.zip", clean_layer())

    status = main([str(layer), "--runtime", "python3.12", "--function-size", "-5"])

    assert status == 2
    assert "invalid size '-5'" in capsys.readouterr().err


def test_main_not_a_zip_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_zip = tmp_path / "layer.zip"
    not_a_zip.write_text("hello")

    status = main([str(not_a_zip), "--runtime", "python3.12"])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "cannot read" in captured.err
    assert "not a zip file" in captured.err


def test_main_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main([str(tmp_path / "missing.zip"), "--runtime", "python3.12"])

    assert status == 2
    assert "No such file or directory" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "layer.zip", clean_layer())
    environment = dict(os.environ)
    source_root = str(Path(__file__).resolve().parents[2] / "src")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, environment.get("PYTHONPATH")]))

    completed = subprocess.run(
        [sys.executable, "-m", "telemetry_ext.layer_check", str(layer), "--runtime", "python3.12", "--arch", "x86_64"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("layer.zip: OK (python3.12, x86_64)")


def _symlink_zip(path: Path, link_name: str, target: str, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(link_name)
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, target)
        for name, data in (extra or {}).items():
            member = zipfile.ZipInfo(name)
            member.create_system = 3
            member.external_attr = (0o100755 << 16)
            archive.writestr(member, data)
    return path


def test_symlink_launcher_warning_keeps_exit_zero(tmp_path: Path) -> None:
    layer = _symlink_zip(tmp_path / "link.zip", "extensions/myext", "/nonexistent/launcher")

    code = main([str(layer), "--runtime", "python3.12", "--arch", "x86_64", "--json"])

    assert code == 0


def test_symlink_launcher_outside_layer_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = _symlink_zip(tmp_path / "link.zip", "extensions/myext", "/nonexistent/launcher")

    main([str(layer), "--runtime", "python3.12", "--arch", "x86_64"])
    output = capsys.readouterr().out

    assert "extensions/myext" in output
    assert "symbolic link to '/nonexistent/launcher'" in output


def test_symlink_launcher_inside_layer_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = _symlink_zip(
        tmp_path / "link.zip", "extensions/myext", "../myext/run.sh", {"myext/run.sh": b"#!/bin/bash\nexec true\n"}
    )

    main([str(layer), "--runtime", "python3.12", "--arch", "x86_64"])
    output = capsys.readouterr().out

    assert "symbolic link" not in output


def test_symlink_launcher_target_mode_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = tmp_path / "link.zip"
    with zipfile.ZipFile(layer, "w") as archive:
        link = zipfile.ZipInfo("extensions/myext")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "../myext/run.sh")
        target = zipfile.ZipInfo("myext/run.sh")
        target.create_system = 3
        target.external_attr = 0o100644 << 16
        archive.writestr(target, "#!/bin/bash\nexec true\n")

    code = main([str(layer), "--runtime", "python3.12", "--arch", "x86_64"])
    output = capsys.readouterr().out

    assert code == 1
    assert "myext/run.sh" in output
    assert "0644" in output


def test_new_runtimes_accepted(tmp_path: Path) -> None:
    layer = _symlink_zip(tmp_path / "link.zip", "extensions/myext", "../myext/run.sh", {"myext/run.sh": b"#!/bin/bash\nexec true\n"})

    for runtime in ("python3.14", "nodejs24.x", "java25"):
        assert main([str(layer), "--runtime", runtime, "--arch", "arm64"]) == 0
