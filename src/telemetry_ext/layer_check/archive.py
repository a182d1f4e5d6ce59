"""Open a layer zip and describe each member without extracting anything to disk."""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from types import TracebackType

from .elf import ElfError, ElfInfo, parse_elf
from .formats import HEAD_BYTES, FileFormat, detect_format
from .runtimes import Architecture

# ZipInfo.create_system value of zip tools on Unix and macOS, the only ones that store st_mode.
_CREATE_SYSTEM_UNIX = 3

# Exceptions that zipfile raises for a member it cannot read: a bad CRC or header (BadZipFile), broken
# deflate data (zlib.error, EOFError), encryption (RuntimeError) or an unsupported compression
# method (NotImplementedError).
MEMBER_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError)


class LayerReadError(Exception):
    """The layer file is missing, unreadable or not a zip archive."""


@dataclass
class LayerFile:
    """One member of the layer zip.

    `name` is the path inside the zip with any leading "./" removed. `mode` is the Unix st_mode
    stored in the zip, or None when the zip stores none (archives made on Windows).
    `format` is None for directories and symbolic links, whose content is not checked.
    """

    name: str
    info: zipfile.ZipInfo
    is_dir: bool
    is_symlink: bool
    mode: int | None
    format: FileFormat | None = None
    description: str = ""
    elf: ElfInfo | None = None
    elf_error: str | None = None
    read_error: str | None = None

    @property
    def file_size(self) -> int:
        return self.info.file_size

    @property
    def parts(self) -> list[str]:
        return self.name.rstrip("/").split("/")

    def is_foreign_binary(self, architecture: Architecture) -> bool:
        """Tell whether the content is a binary built for another system than Linux on `architecture`."""
        if self.format in (FileFormat.MACH_O, FileFormat.PE):
            return True
        elf = self.elf
        return elf is not None and (elf.bits != 64 or not elf.little_endian or elf.machine != architecture.elf_machine)


class Layer:
    """An open layer zip. Use it as a context manager so the archive is closed.

    `display_name` is the name used in reports. `zip_bytes` is the size of the zip file itself.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.display_name = os.path.basename(os.fspath(path))
        try:
            self.zip_bytes = os.path.getsize(path)
            self._zip = zipfile.ZipFile(path)
        except OSError as exc:
            raise LayerReadError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from exc
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise LayerReadError(f"cannot read {os.fspath(path)}: {exc}") from exc
        self.files = [_describe_member(info) for info in self._zip.infolist()]

    def __enter__(self) -> Layer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def unzipped_bytes(self) -> int:
        return sum(member.file_size for member in self.files if not member.is_dir)

    def regular_files(self) -> list[LayerFile]:
        return [member for member in self.files if not member.is_dir and not member.is_symlink]

    def read(self, member: LayerFile, max_bytes: int) -> bytes:
        """Return the first `max_bytes` bytes of a member. Raises the zipfile errors listed above."""
        with self._zip.open(member.info) as stream:
            return stream.read(max_bytes)

    def scan(self) -> None:
        """Detect the format of every regular file and parse the ELF ones.

        Failures are stored on the member (`read_error`, `elf_error`) instead of raised, so one
        broken member does not stop the check of the others.
        """
        for member in self.regular_files():
            try:
                head = self.read(member, HEAD_BYTES)
            except MEMBER_READ_ERRORS as exc:
                member.read_error = str(exc) or type(exc).__name__
                continue

            detected = detect_format(head, member.name)
            member.format = detected.format
            member.description = detected.description
            if detected.format is FileFormat.ELF:
                self._parse_elf(member)

    def _parse_elf(self, member: LayerFile) -> None:
        # ZipExtFile can seek, so only the headers and tables are decompressed and kept.
        try:
            with self._zip.open(member.info) as stream:
                member.elf = parse_elf(stream, member.file_size)
        except ElfError as exc:
            member.elf_error = str(exc)
        except MEMBER_READ_ERRORS as exc:
            member.read_error = str(exc) or type(exc).__name__


def _describe_member(info: zipfile.ZipInfo) -> LayerFile:
    mode: int | None = None
    if info.create_system == _CREATE_SYSTEM_UNIX:
        mode = (info.external_attr >> 16) or None

    name = info.filename
    while name.startswith("./"):
        name = name[2:]

    is_dir = info.is_dir() or (mode is not None and stat.S_ISDIR(mode))
    is_symlink = mode is not None and stat.S_ISLNK(mode)
    return LayerFile(name=name, info=info, is_dir=is_dir, is_symlink=is_symlink, mode=mode)
