"""Rules for native files: Mach-O and PE binaries, ELF files for the wrong machine, ELF files
linked against musl, and ELF files that need a newer glibc than the runtime's OS image has.
"""

from __future__ import annotations

import posixpath

from .archive import LayerFile
from .context import CheckContext
from .elf import ET_REL, ElfInfo
from .findings import Finding, error, warning
from .formats import FileFormat
from .python_abi import pip_reinstall_fix, site_packages_version
from .runtimes import dotted_version

# Names that a loader opens by themselves: shared libraries, CPython extension modules
# (".pyd" only on Windows, which means the Linux build is missing) and Node.js addons.
_LOADED_SUFFIXES = (".so", ".node", ".pyd")
# Lambda starts everything in extensions/ and puts /opt/bin on PATH and /opt/lib on LD_LIBRARY_PATH.
_LOADED_ROOTS = ("extensions", "bin", "lib")


def is_loaded_at_run_time(name: str) -> bool:
    """Tell whether Lambda or a language runtime would load or execute the file at `name`."""
    if name.split("/", 1)[0] in _LOADED_ROOTS:
        return True
    base = posixpath.basename(name)
    return base.endswith(_LOADED_SUFFIXES) or ".so." in base


def rebuild_fix(context: CheckContext, member: LayerFile) -> str:
    """Say how to get a build of `member` that the target runtime can load."""
    runtime = context.runtime
    base = posixpath.basename(member.name)
    if base.endswith((".so", ".pyd")) and (member.name.startswith("python/") or "/site-packages/" in member.name):
        python_version = site_packages_version(member.name)
        if python_version is None and runtime.language == "python":
            python_version = (runtime.version[0], runtime.version[1])
        return pip_reinstall_fix(context, member.name, python_version)

    return (
        f"rebuild it for {context.architecture.gnu_cpu} Linux with glibc {dotted_version(runtime.os_image.glibc)} "
        f"or older, for example in the {runtime.sam_build_image} image"
    )


def check_binaries(context: CheckContext) -> list[Finding]:
    """Check every regular file whose content is a native binary."""
    findings: list[Finding] = []
    for member in context.layer.regular_files():
        if member.format in (FileFormat.MACH_O, FileFormat.PE):
            findings.append(_foreign_binary(context, member))
        elif member.format is FileFormat.ELF:
            findings.extend(_check_elf(context, member))
    return findings


def _foreign_binary(context: CheckContext, member: LayerFile) -> Finding:
    problem = f"{member.description}, which Linux cannot load"
    if is_loaded_at_run_time(member.name):
        return error("foreign-binary", member.name, problem, rebuild_fix(context, member))
    # Wheels such as setuptools ship Windows launchers that are never run on Linux.
    return warning("foreign-binary", member.name, problem, "delete it unless something copies it to another system")


def _check_elf(context: CheckContext, member: LayerFile) -> list[Finding]:
    info = member.elf
    if info is None:
        if member.elf_error is None:
            return []
        return [
            warning(
                "elf-unreadable",
                member.name,
                f"ELF file that could not be parsed ({member.elf_error}), "
                "so its machine and glibc needs were not checked",
                "check that the file is complete",
            )
        ]

    architecture = context.architecture
    if member.is_foreign_binary(architecture):
        byte_order = "little-endian" if info.little_endian else "big-endian"
        problem = (
            f"{info.bits}-bit {byte_order} ELF file for {info.machine_name}, but Lambda on {architecture.name} "
            f"runs only 64-bit little-endian {architecture.gnu_cpu} code"
        )
        if info.file_type == ET_REL:
            # Object files (.o) are inputs to a linker, never loaded, so they only waste space.
            return [warning("elf-machine", member.name, problem, "delete it unless a build step uses it")]
        return [error("elf-machine", member.name, problem, rebuild_fix(context, member))]

    findings: list[Finding] = []
    musl_marker = _musl_marker(info)
    if musl_marker is not None:
        findings.append(
            error(
                "elf-musl",
                member.name,
                f"linked against musl libc ({musl_marker}), but Amazon Linux uses glibc",
                rebuild_fix(context, member),
            )
        )

    required = info.glibc_required()
    os_image = context.runtime.os_image
    if required is not None and required[0] > os_image.glibc:
        version, version_name = required
        findings.append(
            error(
                "glibc-version",
                member.name,
                f"needs glibc {dotted_version(version)} ({version_name}), but {context.runtime.name} runs on "
                f"{os_image.name} with glibc {dotted_version(os_image.glibc)}",
                rebuild_fix(context, member),
            )
        )
    return findings


def _musl_marker(info: ElfInfo) -> str | None:
    if info.interpreter and "ld-musl" in info.interpreter:
        return info.interpreter
    for library in info.needed:
        if library.startswith("libc.musl"):
            return library
    return None
