"""Rules for CPython extension modules whose file name tag does not fit the Python that imports them.

On Linux, CPython 3.X imports an extension module only from files named
`NAME.cpython-3X-<cpu>-linux-gnu.so`, `NAME.abi3.so` or `NAME.so`
(importlib.machinery.EXTENSION_SUFFIXES), so a module tagged for another version or CPU is
never found. An abi3 module works on its minimum version and every later one. That minimum is
not in the file name but in the wheel tag, such as cp38-abi3-manylinux2014_x86_64, which pip
records in the WHEEL file of the package's .dist-info folder.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from dataclasses import dataclass

from .archive import MEMBER_READ_ERRORS, Layer, LayerFile
from .context import CheckContext
from .findings import Finding, error
from .runtimes import dotted_version

_TAGGED_MODULE = re.compile(r"\.cpython-(?P<version>\d{2,3})(?P<flags>[a-z]*)(?:-(?P<platform>[A-Za-z0-9_-]+))?\.so$")
_VERSIONED_SITE_PACKAGES = re.compile(r"python/lib/python(\d+)\.(\d+)/site-packages/")
_BUNDLED_PYTHON = re.compile(r"(?:^|/)(?:bin/python|lib/libpython|lib/python)(\d+)\.(\d+)(?:$|/|\.)")
_ABI3_WHEEL_TAG = re.compile(r"cp(\d)(\d+)-abi3-")
_METADATA_READ_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class _Importer:
    """The Python that would import a module: its version and a description for messages."""

    version: tuple[int, int]
    description: str


def check_python_abi(context: CheckContext) -> list[Finding]:
    """Check the ABI tag of every CPython extension module against the Python that would import it."""
    layer = context.layer
    bundled_versions = _bundled_python_versions(layer, context.private_dirs)
    abi3_minimums: dict[str, tuple[str, tuple[int, int]]] | None = None

    findings: list[Finding] = []
    for member in layer.regular_files():
        base = posixpath.basename(member.name)
        match = _TAGGED_MODULE.search(base)
        if match is not None:
            importer = _find_importer(context, member.name, bundled_versions)
            finding = _check_tagged_module(context, member, match, importer)
            if finding is not None:
                findings.append(finding)
            continue

        if not base.endswith(".abi3.so"):
            continue
        importer = _find_importer(context, member.name, bundled_versions)
        if importer is None:
            continue
        if abi3_minimums is None:
            abi3_minimums = _abi3_minimum_versions(layer)
        minimum = abi3_minimums.get(member.name)
        if minimum is not None and importer.version < minimum[1]:
            wheel_tag, version = minimum
            findings.append(
                error(
                    "python-abi",
                    member.name,
                    f"abi3 extension module for CPython {dotted_version(version)} and newer "
                    f"(wheel tag {wheel_tag}), but {importer.description} is older",
                    pip_reinstall_fix(context, member.name, importer.version),
                )
            )
    return findings


def _check_tagged_module(
    context: CheckContext,
    member: LayerFile,
    match: re.Match[str],
    importer: _Importer | None,
) -> Finding | None:
    digits = match["version"]
    version = (int(digits[0]), int(digits[1:]))
    flags = match["flags"]
    platform = match["platform"]
    triplet = context.architecture.gnu_triplet

    # A binary for another system already gets a finding from its content, which is more precise than the name.
    platform_ok = platform is None or platform == triplet or member.is_foreign_binary(context.architecture)
    # Lambda runs the default CPython build, so debug ("d") and free-threaded ("t") modules do not load.
    version_ok = importer is None or (version == importer.version and flags == "")
    if platform_ok and version_ok:
        return None

    tag = f"cpython-{digits}{flags}" + (f"-{platform}" if platform else "")
    if importer is None:
        return error(
            "python-abi",
            member.name,
            f"extension module tagged {tag}, but the layer targets {triplet}",
            pip_reinstall_fix(context, member.name, None),
        )

    importable_tag = f"cpython-{importer.version[0]}{importer.version[1]}-{triplet}"
    return error(
        "python-abi",
        member.name,
        f"extension module tagged {tag}, but {importer.description} imports only {importable_tag}, "
        "abi3 and untagged modules",
        pip_reinstall_fix(context, member.name, importer.version),
    )


def _find_importer(context: CheckContext, name: str, bundled_versions: dict[str, tuple[int, int]]) -> _Importer | None:
    """Return the Python that would import the module at `name`, or None when the layer does not tell.

    A version-specific site-packages folder is only read by that version, a folder with a
    bundled interpreter is read by that interpreter, and everything else by the runtime.
    """
    version = site_packages_version(name)
    if version is not None:
        dotted = dotted_version(version)
        return _Importer(version, f"Python {dotted} (for python/lib/python{dotted}/site-packages/)")

    top = name.split("/", 1)[0]
    if top in bundled_versions:
        version = bundled_versions[top]
        return _Importer(version, f"the Python {dotted_version(version)} bundled in {top}/")

    runtime = context.runtime
    if runtime.language == "python":
        return _Importer((runtime.version[0], runtime.version[1]), runtime.name)
    return None


def site_packages_version(name: str) -> tuple[int, int] | None:
    """Return X.Y when `name` lies in python/lib/pythonX.Y/site-packages/, else None."""
    match = _VERSIONED_SITE_PACKAGES.match(name)
    if match is None:
        return None
    return int(match[1]), int(match[2])


def _bundled_python_versions(layer: Layer, private_dirs: frozenset[str]) -> dict[str, tuple[int, int]]:
    """Map each extension folder with a single bundled Python (bin/python3.X, lib/python3.X/) to its version."""
    found: dict[str, set[tuple[int, int]]] = {}
    for member in layer.files:
        top, _, rest = member.name.partition("/")
        if top not in private_dirs:
            continue
        match = _BUNDLED_PYTHON.search(rest)
        if match is not None:
            found.setdefault(top, set()).add((int(match[1]), int(match[2])))
    return {top: versions.pop() for top, versions in found.items() if len(versions) == 1}


def _abi3_minimum_versions(layer: Layer) -> dict[str, tuple[str, tuple[int, int]]]:
    """Map each abi3 module listed in a .dist-info RECORD to its wheel tag and minimum Python version."""
    members = {member.name: member for member in layer.regular_files()}
    minimums: dict[str, tuple[str, tuple[int, int]]] = {}

    for name, member in members.items():
        parts = member.parts
        if len(parts) < 2 or parts[-1] != "RECORD" or not parts[-2].endswith(".dist-info"):
            continue
        dist_info = "/".join(parts[:-1])
        wheel = members.get(f"{dist_info}/WHEEL")
        if wheel is None:
            continue

        wheel_text = _read_text(layer, wheel)
        record_text = _read_text(layer, member)
        if wheel_text is None or record_text is None:
            continue
        minimum = _abi3_minimum(wheel_text)
        if minimum is None:
            continue

        site_dir = "/".join(parts[:-2])
        for row in csv.reader(io.StringIO(record_text)):
            if row and row[0].endswith(".abi3.so"):
                minimums[posixpath.normpath(posixpath.join(site_dir, row[0]))] = minimum
    return minimums


def _abi3_minimum(wheel_text: str) -> tuple[str, tuple[int, int]] | None:
    lowest: tuple[str, tuple[int, int]] | None = None
    for line in wheel_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() != "Tag":
            continue
        tag = value.strip()
        match = _ABI3_WHEEL_TAG.match(tag)
        if match is None:
            continue
        version = (int(match[1]), int(match[2]))
        if lowest is None or version < lowest[1]:
            lowest = (tag, version)
    return lowest


def _read_text(layer: Layer, member: LayerFile) -> str | None:
    try:
        return layer.read(member, _METADATA_READ_BYTES).decode("utf-8", "replace")
    except MEMBER_READ_ERRORS:
        return None


def pip_reinstall_fix(context: CheckContext, name: str, version: tuple[int, int] | None) -> str:
    """Say how to reinstall the package that contains `name` for the target CPU and Python version."""
    site_packages = name.find("site-packages/")
    if site_packages != -1:
        folder = name[: site_packages + len("site-packages/")]
    elif name.startswith("python/"):
        folder = "python/"
    else:
        folder = name.split("/", 1)[0] + "/"

    python_version = f" --python-version {dotted_version(version)}" if version is not None else ""
    return (
        f"reinstall the package with pip install --platform {context.architecture.pip_platform}"
        f"{python_version} --only-binary=:all: --target {folder}"
    )
