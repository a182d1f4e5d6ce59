#!/usr/bin/env python3
"""Build the Lambda layer zip of the telemetry-ext extension.

Lambda extracts a layer into /opt, so the zip contains:

    extensions/telemetry-ext       the bash launcher (mode 755), which Lambda starts
    telemetry-ext/telemetry_ext/   the extension package without the simulator and layer_check
    telemetry-ext/<dependency>     the pure-Python wheels pinned in layer/requirements.txt

The launcher puts /opt/telemetry-ext first on sys.path of an isolated (-I) interpreter, so the
dependencies stay off the function's own import path.

The zip is reproducible: entries are sorted, every entry has the same timestamp (1980-01-01, or
SOURCE_DATE_EPOCH when set), files are 644 except the launcher, directories are 755, and no
extra fields are written. Two builds of the same tree with the same Python and zlib versions
give the same bytes, whether or not the wheel cache was warm.

Uses the standard library only. Run it with an interpreter that has pip:

    .venv/bin/python layer/build.py --output dist/telemetry-ext-layer.zip
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
EXTENSION_NAME = "telemetry-ext"
PACKAGE_NAME = "telemetry_ext"

DEFAULT_OUTPUT = REPO_ROOT / "dist" / "telemetry-ext-layer.zip"
DEFAULT_REQUIREMENTS = REPO_ROOT / "layer" / "requirements.txt"
DEFAULT_CACHE_DIR = REPO_ROOT / "build" / "layer-wheels"

# The oldest Lambda Python runtime the layer supports. With these flags pip accepts only wheels
# tagged py3-none-any whose Requires-Python includes this version.
TARGET_PYTHON_VERSION = "3.9"
PURE_WHEEL_FLAGS = [
    "--only-binary=:all:",
    "--implementation", "py",
    "--abi", "none",
    "--platform", "any",
    "--python-version", TARGET_PYTHON_VERSION,
]

LAUNCHER_MODE = stat.S_IFREG | 0o755
FILE_MODE = stat.S_IFREG | 0o644
DIR_MODE = stat.S_IFDIR | 0o755
MSDOS_DIRECTORY_FLAG = 0x10
ZIP_CREATE_SYSTEM_UNIX = 3
COMPRESS_LEVEL = 9

# The earliest and latest times that a zip (MS-DOS) timestamp can store.
ZIP_MIN_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_MAX_DATE_TIME = (2107, 12, 31, 23, 59, 58)

# Package subtrees that stay out of the layer: developer tools, not part of the extension.
EXCLUDED_PACKAGE_DIRS = {"simulator"}
EXCLUDED_PACKAGE_PREFIX = "layer_check"

# Files that pip writes into *.dist-info when installing. RECORD lists files that the build
# removes (bin/ scripts), and none of them is needed at run time. METADATA and licenses stay,
# because aws-lambda-powertools and importlib.metadata read METADATA.
DROPPED_DIST_INFO_FILES = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}

COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll", ".exe")
ELF_MAGIC = b"\x7fELF"
MACH_O_MAGICS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
# Mach-O universal binaries and Java class files share this magic, and both are compiled code.
FAT_BINARY_MAGIC = b"\xca\xfe\xba\xbe"


class BuildError(Exception):
    """The layer cannot be built. The message states what failed and what to do next."""


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the telemetry-ext Lambda layer zip.")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="path of the zip to write (default: %(default)s)",
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        default=DEFAULT_REQUIREMENTS,
        help="pinned, hash-checked runtime dependencies (default: %(default)s)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help="folder that keeps downloaded wheels between builds (default: %(default)s)",
    )
    return parser.parse_args(argv)


def zip_date_time(environ: Mapping[str, str]) -> Tuple[int, int, int, int, int, int]:
    """Return the timestamp of every entry: SOURCE_DATE_EPOCH in UTC, or 1980-01-01 00:00:00.

    The value is clamped to the range that a zip timestamp can store.
    """
    raw = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return ZIP_MIN_DATE_TIME
    try:
        epoch = int(raw)
    except ValueError:
        raise BuildError(
            f"invalid SOURCE_DATE_EPOCH {raw!r}: expected whole seconds since 1970-01-01 UTC"
        ) from None
    if epoch < 0:
        return ZIP_MIN_DATE_TIME
    try:
        date_time = tuple(time.gmtime(epoch)[:6])
    except (OverflowError, OSError, ValueError):
        return ZIP_MAX_DATE_TIME
    return max(ZIP_MIN_DATE_TIME, min(date_time, ZIP_MAX_DATE_TIME))  # type: ignore[return-value]


def read_launcher(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BuildError(f"cannot read the launcher {path}: {error}") from None
    if not data.startswith(b"#!"):
        raise BuildError(f"the launcher {path} does not start with a #! line")
    if b"\r\n" in data:
        # Linux reads "bash\r" from a CRLF #! line and fails to start the extension.
        raise BuildError(
            f"the launcher {path} has CRLF line endings; check it out with LF endings "
            "(for example with git config core.autocrlf false)"
        )
    return data


def is_excluded_name(name: str) -> bool:
    """Return True for caches, compiled bytecode, hidden files and editor backups."""
    return (
        name == "__pycache__"
        or name.endswith((".pyc", ".pyo", "~"))
        or name.startswith(".")
    )


def collect_package_files(package_dir: Path) -> Dict[str, Path]:
    """Map each zip path under telemetry-ext/telemetry_ext/ to its source file."""
    if not (package_dir / "__init__.py").is_file():
        raise BuildError(f"package not found: {package_dir / '__init__.py'} is missing")

    files: Dict[str, Path] = {}
    for root, dirs, names in os.walk(package_dir):
        root_path = Path(root)
        at_package_root = root_path == package_dir
        kept_dirs = []
        for name in dirs:
            if is_excluded_name(name):
                continue
            if at_package_root and name in EXCLUDED_PACKAGE_DIRS:
                continue
            if at_package_root and name.startswith(EXCLUDED_PACKAGE_PREFIX):
                continue
            kept_dirs.append(name)
        dirs[:] = sorted(kept_dirs)

        for name in sorted(names):
            if is_excluded_name(name):
                continue
            if at_package_root and name.startswith(EXCLUDED_PACKAGE_PREFIX):
                continue
            relative = (root_path / name).relative_to(package_dir).as_posix()
            files[f"{EXTENSION_NAME}/{PACKAGE_NAME}/{relative}"] = root_path / name
    return files


def run_pip(arguments: List[str], environ: Mapping[str, str], action: str) -> None:
    command = [sys.executable, "-m", "pip", *arguments]
    result = subprocess.run(
        command,
        env=dict(environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output_tail = "\n".join(result.stdout.splitlines()[-30:])
        raise BuildError(
            f"{action} failed (pip exit status {result.returncode}).\n"
            f"command: {' '.join(command)}\n{output_tail}"
        )


def ensure_wheels(requirements: Path, cache_root: Path) -> Path:
    """Return a folder with the pinned wheels, downloading them only when it is not cached yet.

    The folder name is derived from the requirements file's sha256, so editing a pin makes a new
    folder. A download becomes visible under that name only after pip succeeded.
    """
    try:
        requirements_bytes = requirements.read_bytes()
    except OSError as error:
        raise BuildError(f"cannot read the requirements file {requirements}: {error}") from None
    key_source = requirements_bytes + " ".join(PURE_WHEEL_FLAGS).encode()
    wheel_dir = cache_root / hashlib.sha256(key_source).hexdigest()[:16]
    if wheel_dir.is_dir():
        return wheel_dir

    cache_root.mkdir(parents=True, exist_ok=True)
    download_dir = Path(tempfile.mkdtemp(prefix="download-", dir=cache_root))
    try:
        # Pins with hashes, as in layer/requirements.txt, put pip in hash-checking mode, so it
        # rejects any file whose sha256 differs.
        run_pip(
            [
                "download",
                "--no-deps",
                *PURE_WHEEL_FLAGS,
                "--dest", str(download_dir),
                "--requirement", str(requirements),
            ],
            os.environ,
            "downloading the layer's dependencies",
        )
        try:
            download_dir.rename(wheel_dir)
        except OSError:
            # Another build finished the same download first, so its folder is used instead.
            if not wheel_dir.is_dir():
                raise
    finally:
        if download_dir.exists():
            shutil.rmtree(download_dir)
    return wheel_dir


def install_dependencies(requirements: Path, wheel_dir: Path, target: Path) -> None:
    """Install the pinned wheels from wheel_dir into target, without reaching any index."""
    # Without PIP_* variables, with --isolated and with PIP_CONFIG_FILE=/dev/null, pip reads no
    # configuration file, so no configured index, find-links or constraint changes the result.
    environ = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
    environ["PIP_CONFIG_FILE"] = os.devnull
    run_pip(
        [
            "install",
            "--isolated",
            "--no-index",
            "--find-links", str(wheel_dir),
            "--no-deps",
            "--no-compile",
            "--disable-pip-version-check",
            *PURE_WHEEL_FLAGS,
            "--target", str(target),
            "--requirement", str(requirements),
        ],
        environ,
        f"installing the layer's dependencies from {wheel_dir} (delete that folder to download again)",
    )


def collect_dependency_files(target: Path) -> Dict[str, Path]:
    """Map each zip path under telemetry-ext/ to an installed dependency file.

    Skips console scripts (bin/), bytecode caches and the pip bookkeeping files in *.dist-info.
    """
    files: Dict[str, Path] = {}
    for root, dirs, names in os.walk(target):
        root_path = Path(root)
        if root_path == target:
            if (target / PACKAGE_NAME).exists():
                raise BuildError(
                    f"a dependency installs a top-level {PACKAGE_NAME!r}, which would replace the extension"
                )
            dirs[:] = [name for name in dirs if name != "bin"]
        dirs[:] = sorted(name for name in dirs if name != "__pycache__")

        in_dist_info = root_path.name.endswith(".dist-info")
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")):
                continue
            if in_dist_info and name in DROPPED_DIST_INFO_FILES:
                continue
            path = root_path / name
            if path.is_symlink():
                raise BuildError(
                    f"a dependency installed a symbolic link, which the layer does not support: {path}"
                )
            files[f"{EXTENSION_NAME}/{path.relative_to(target).as_posix()}"] = path
    return files


def compiled_file_kind(name: str, data: bytes) -> Optional[str]:
    """Return what kind of compiled file this is, or None for source and data files."""
    base_name = name.rsplit("/", 1)[-1].lower()
    if base_name.endswith(COMPILED_SUFFIXES) or ".so." in base_name:
        return "shared library or executable, by its file name"
    if data.startswith(ELF_MAGIC):
        return "ELF binary"
    if data.startswith(MACH_O_MAGICS):
        return "Mach-O binary"
    if data.startswith(FAT_BINARY_MAGIC):
        return "Mach-O universal binary or Java class file"
    if data.startswith(b"MZ") and len(data) >= 0x40:
        pe_offset = int.from_bytes(data[0x3C:0x40], "little")
        if data[pe_offset:pe_offset + 4] == b"PE\0\0":
            return "Windows PE binary"
    return None


def check_no_compiled_files(entries: Mapping[str, Tuple[bytes, int]]) -> None:
    findings = []
    for name in sorted(entries):
        kind = compiled_file_kind(name, entries[name][0])
        if kind is not None:
            findings.append(f"  {name}: {kind}")
    if findings:
        raise BuildError(
            "the layer must contain pure Python only, but these files are compiled:\n"
            + "\n".join(findings)
            + "\nPin a release of that package that ships a py3-none-any wheel in layer/requirements.txt."
        )


def directory_entries(file_names: Sequence[str]) -> List[str]:
    """Return an entry name with a trailing slash for every folder that contains a file."""
    directories = set()
    for name in file_names:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.add("/".join(parts[:depth]) + "/")
    return sorted(directories)


def write_zip(
    entries: Mapping[str, Tuple[bytes, int]],
    output: Path,
    date_time: Tuple[int, int, int, int, int, int],
) -> None:
    """Write entries ({name: (data, st_mode)}) and their folders to output, replacing it atomically."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for name in sorted([*entries, *directory_entries(list(entries))]):
                info = zipfile.ZipInfo(name, date_time)
                info.create_system = ZIP_CREATE_SYSTEM_UNIX
                if name.endswith("/"):
                    info.external_attr = (DIR_MODE << 16) | MSDOS_DIRECTORY_FLAG
                    archive.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
                else:
                    data, mode = entries[name]
                    info.external_attr = mode << 16
                    archive.writestr(
                        info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
                    )
        os.replace(partial, output)
    finally:
        if partial.exists():
            partial.unlink()


def build_layer(output: Path, requirements: Path, cache_dir: Path, environ: Mapping[str, str]) -> None:
    date_time = zip_date_time(environ)

    entries: Dict[str, Tuple[bytes, int]] = {}
    launcher = REPO_ROOT / "extensions" / EXTENSION_NAME
    entries[f"extensions/{EXTENSION_NAME}"] = (read_launcher(launcher), LAUNCHER_MODE)
    for name, path in collect_package_files(REPO_ROOT / "src" / PACKAGE_NAME).items():
        entries[name] = (path.read_bytes(), FILE_MODE)

    wheel_dir = ensure_wheels(requirements, cache_dir)
    with tempfile.TemporaryDirectory(prefix="telemetry-ext-layer-") as staging:
        target = Path(staging) / "site-packages"
        install_dependencies(requirements, wheel_dir, target)
        for name, path in collect_dependency_files(target).items():
            if name in entries:
                raise BuildError(f"a dependency file collides with an extension file: {name}")
            entries[name] = (path.read_bytes(), FILE_MODE)

    check_no_compiled_files(entries)
    write_zip(entries, output, date_time)


def describe_zip(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
    unzipped_bytes = sum(info.file_size for info in members)
    return "\n".join(
        [
            f"path: {path.resolve()}",
            f"zip size: {path.stat().st_size} bytes",
            f"unzipped size: {unzipped_bytes} bytes in {len(members)} files",
            f"sha256: {digest}",
        ]
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        build_layer(args.output, args.requirements, args.cache_dir, os.environ)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(describe_zip(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
