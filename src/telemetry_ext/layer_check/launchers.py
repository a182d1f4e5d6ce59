"""Rules for extensions/, the folder whose files Lambda starts as external extensions.

Lambda starts every regular file directly in /opt/extensions/ and ignores sub-directories.
A file that cannot be executed fails the function's init. At most 10 extensions run per
function. Lambda runs them as a non-root user, so launchers need mode 755.
"""

from __future__ import annotations

import posixpath
import re
import stat

from .archive import MEMBER_READ_ERRORS, Layer, LayerFile
from .context import CheckContext
from .findings import Finding, error, warning
from .formats import FileFormat

EXTENSIONS_DIR = "extensions"
MAX_EXTENSIONS = 10

# Launchers are short scripts. The CRLF and #! checks read at most this much of each one.
_LAUNCHER_READ_BYTES = 1024 * 1024
# Top-level folders that Lambda itself puts on a search path, so they never belong to one extension.
_SEARCH_PATH_ROOTS = frozenset({"python", "nodejs", "java", "ruby", "bin", "lib", EXTENSIONS_DIR})
_OPT_REFERENCE = re.compile(rb"/opt/([A-Za-z0-9._-]+)")
_UTF8_BOM = b"\xef\xbb\xbf"
_CHMOD_FIX = "run chmod 755 on it before zipping"


def launcher_files(layer: Layer) -> list[LayerFile]:
    """Return the members directly in extensions/, which Lambda would start."""
    return [
        member
        for member in layer.files
        if not member.is_dir and len(member.parts) == 2 and member.parts[0] == EXTENSIONS_DIR
    ]


def find_private_dirs(layer: Layer) -> frozenset[str]:
    """Return the top-level folders that hold an extension's own files.

    A folder counts when its name equals a launcher's file name, with or without its suffix,
    or when a launcher script refers to it as /opt/<folder>. This is the layout AWS recommends
    for an extension's private dependencies.
    """
    top_level_dirs = {member.parts[0] for member in layer.files if member.is_dir or len(member.parts) > 1}

    candidates: set[str] = set()
    for launcher in launcher_files(layer):
        file_name = launcher.parts[1]
        candidates.add(file_name)
        candidates.add(file_name.rsplit(".", 1)[0])
        if launcher.format is FileFormat.SCRIPT:
            try:
                text = layer.read(launcher, _LAUNCHER_READ_BYTES)
            except MEMBER_READ_ERRORS:
                continue
            candidates.update(match.decode("ascii") for match in _OPT_REFERENCE.findall(text))

    return frozenset((candidates & top_level_dirs) - _SEARCH_PATH_ROOTS)


def check_extensions(context: CheckContext) -> list[Finding]:
    """Check the launchers in extensions/, their count and stray directories."""
    layer = context.layer
    findings: list[Finding] = []

    sub_directories: set[str] = set()
    for member in layer.files:
        parts = member.parts
        if parts[0] == EXTENSIONS_DIR and (len(parts) > 2 or (member.is_dir and len(parts) == 2)):
            sub_directories.add(parts[1])
    for directory in sorted(sub_directories):
        findings.append(
            warning(
                "extension-directory",
                f"{EXTENSIONS_DIR}/{directory}/",
                "directory inside extensions/, which Lambda ignores because it starts only the files directly in it",
                "keep the launcher directly in extensions/ and its other files in a top-level folder "
                "with the launcher's name",
            )
        )

    launchers = launcher_files(layer)
    if len(launchers) > MAX_EXTENSIONS:
        findings.append(
            error(
                "extension-count",
                f"{EXTENSIONS_DIR}/",
                f"{len(launchers)} files, but Lambda runs at most {MAX_EXTENSIONS} extensions per function, "
                "counted across all its layers",
                "remove launchers or spread them over layers for different functions",
            )
        )

    for launcher in launchers:
        findings.extend(_check_launcher(layer, launcher))
    return findings


def _check_launcher_link(layer: Layer, launcher: LayerFile) -> list[Finding]:
    """Check the file a symbolic-link launcher points to, or warn when it is not in this layer."""
    try:
        target = layer.read(launcher, 4096).decode("utf-8", "replace")
    except MEMBER_READ_ERRORS:
        return []
    if target.startswith("/opt/"):
        resolved = posixpath.normpath(target[len("/opt/"):])
    elif target.startswith("/"):
        resolved = None
    else:
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(launcher.name), target))
    # NOTE: a link to another link is not followed further.
    target_file = next((member for member in layer.regular_files() if member.name == resolved), None)
    if target_file is not None:
        return _check_launcher(layer, target_file)
    return [
        warning(
            "extension-link-outside",
            launcher.name,
            f"extension launcher is a symbolic link to {target!r}, which is not a file of this layer; "
            "Lambda cannot start it unless the runtime or another layer provides that file",
            "store the launcher itself in extensions/ instead of a link",
        )
    ]


def _check_launcher(layer: Layer, launcher: LayerFile) -> list[Finding]:
    if launcher.is_symlink:
        return _check_launcher_link(layer, launcher)

    findings = _check_launcher_mode(launcher)
    if launcher.read_error is not None or launcher.format in (FileFormat.ELF, FileFormat.MACH_O, FileFormat.PE):
        # Binaries are checked by the binary rules, and read errors are reported by the packaging rules.
        return findings

    try:
        content = layer.read(launcher, _LAUNCHER_READ_BYTES)
    except MEMBER_READ_ERRORS:
        return findings

    if not content:
        findings.append(
            error("extension-empty", launcher.name, "extension launcher is empty", "add the script or binary")
        )
    elif content.startswith(_UTF8_BOM):
        findings.append(
            error(
                "extension-shebang",
                launcher.name,
                "extension launcher starts with a UTF-8 byte order mark, so the kernel does not see its #! line",
                "save it as UTF-8 without a byte order mark",
            )
        )
    elif not content.startswith(b"#!"):
        findings.append(
            error(
                "extension-shebang",
                launcher.name,
                "extension launcher is neither an ELF binary nor a script with a #! line, so Lambda cannot execute it",
                "make the first line an interpreter line such as #!/bin/bash",
            )
        )

    if b"\r\n" in content:
        findings.append(
            error(
                "extension-crlf",
                launcher.name,
                "extension launcher has CRLF (Windows) line endings, so the interpreter path and each command "
                "end in a carriage return",
                "convert it to LF line endings, for example with dos2unix",
            )
        )
    return findings


def _check_launcher_mode(launcher: LayerFile) -> list[Finding]:
    if launcher.mode is None:
        return [
            error(
                "extension-mode",
                launcher.name,
                "extension launcher has no Unix permissions in the zip, so it is not executable",
                "run chmod 755 on it and build the zip with a tool that stores Unix permissions, "
                "such as zip on Linux or macOS",
            )
        ]

    permissions = stat.S_IMODE(launcher.mode)
    if permissions & 0o111 == 0:
        problem = f"extension launcher has mode {permissions:04o}, so it is not executable"
        return [error("extension-mode", launcher.name, problem, _CHMOD_FIX)]
    if permissions & stat.S_IXOTH == 0:
        return [
            error(
                "extension-mode",
                launcher.name,
                f"extension launcher has mode {permissions:04o}, which lets only its owner and group execute it, "
                "but Lambda runs extensions as a non-root user",
                _CHMOD_FIX,
            )
        ]
    return []
