"""layer/build.py: the layer zip's layout, modes, reproducibility and importability.

The layer is built once per module into a temporary folder, using the repository's wheel cache
(build/layer-wheels). When that cache is empty, the build downloads the pinned wheels from the
configured PyPI index. The reproducibility test builds a second copy with an empty cache, so it
always downloads.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from types import ModuleType
from typing import Dict, List

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "layer" / "build.py"
REQUIREMENTS = REPO_ROOT / "layer" / "requirements.txt"
LAUNCHER = REPO_ROOT / "extensions" / "telemetry-ext"
PACKAGE_SOURCE = REPO_ROOT / "src" / "telemetry_ext"

PRIVATE_FOLDER = "telemetry-ext"
LAUNCHER_ENTRY = "extensions/telemetry-ext"
BUILD_TIMEOUT_S = 300
IMPORT_TIMEOUT_S = 60
DEPENDENCY_MODULES = [
    "requests",
    "urllib3",
    "idna",
    "certifi",
    "charset_normalizer",
    "aws_lambda_powertools",
    "jmespath",
    "typing_extensions",
]
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll", ".exe")
BINARY_MAGICS = (
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"MZ",
)


@dataclass
class BuiltLayer:
    path: Path
    stdout: str


def build_environment() -> Dict[str, str]:
    environ = dict(os.environ)
    environ.pop("SOURCE_DATE_EPOCH", None)
    return environ


def run_build(output: Path, cwd: Path, *extra_arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--output", str(output), *extra_arguments],
        cwd=cwd,
        env=build_environment(),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def base_python() -> Path:
    """Return the interpreter that the virtualenv was created from, which has no project packages."""
    bin_dir = Path(sys.base_prefix) / "bin"
    for name in (f"python{sys.version_info[0]}.{sys.version_info[1]}", "python3"):
        if (bin_dir / name).is_file():
            return bin_dir / name
    pytest.fail(f"no base interpreter found in {bin_dir}")


def load_build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layer_build", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pinned_versions() -> Dict[str, str]:
    """Return {canonical name: version} from the name==version lines of layer/requirements.txt."""
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> BuiltLayer:
    output = tmp_path_factory.mktemp("layer") / "telemetry-ext-layer.zip"
    result = run_build(output, cwd=output.parent)
    assert result.returncode == 0, f"build failed:\n{result.stdout}\n{result.stderr}"
    return BuiltLayer(path=output, stdout=result.stdout)


@pytest.fixture(scope="module")
def members(layer: BuiltLayer) -> Dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(layer.path) as archive:
        return {info.filename: info for info in archive.infolist()}


@pytest.fixture(scope="module")
def unzipped(layer: BuiltLayer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(layer.path) as archive:
        archive.extractall(target)
    return target


def file_names(members: Dict[str, zipfile.ZipInfo]) -> List[str]:
    return [name for name, info in members.items() if not info.is_dir()]


def test_build_is_reproducible(layer: BuiltLayer, tmp_path: Path) -> None:
    second = tmp_path / "second.zip"
    # An empty cache makes this build download the wheels again, so it also shows that the
    # output does not depend on the state of the cache.
    result = run_build(second, tmp_path, "--cache-dir", str(tmp_path / "empty-cache"))

    assert result.returncode == 0, f"build failed:\n{result.stdout}\n{result.stderr}"
    assert sha256_of(second) == sha256_of(layer.path)


def test_build_prints_size_and_sha256(layer: BuiltLayer) -> None:
    assert f"path: {layer.path.resolve()}" in layer.stdout
    assert f"zip size: {layer.path.stat().st_size} bytes" in layer.stdout
    assert f"sha256: {sha256_of(layer.path)}" in layer.stdout
    with zipfile.ZipFile(layer.path) as archive:
        unzipped_bytes = sum(info.file_size for info in archive.infolist())
    assert f"unzipped size: {unzipped_bytes} bytes" in layer.stdout


def test_launcher_is_executable_file(members: Dict[str, zipfile.ZipInfo], layer: BuiltLayer) -> None:
    info = members[LAUNCHER_ENTRY]
    mode = info.external_attr >> 16

    assert not info.is_dir()
    assert stat.S_ISREG(mode)
    assert stat.S_IMODE(mode) == 0o755
    assert info.create_system == 3
    with zipfile.ZipFile(layer.path) as archive:
        assert archive.read(LAUNCHER_ENTRY) == LAUNCHER.read_bytes()


def test_file_and_folder_modes(members: Dict[str, zipfile.ZipInfo]) -> None:
    for name, info in members.items():
        mode = info.external_attr >> 16
        assert info.create_system == 3, name
        if name == LAUNCHER_ENTRY:
            continue
        if info.is_dir():
            assert name.endswith("/"), name
            assert stat.S_ISDIR(mode), name
            assert stat.S_IMODE(mode) == 0o755, name
        else:
            assert stat.S_ISREG(mode), name
            assert stat.S_IMODE(mode) == 0o644, name


def test_every_folder_has_entry(members: Dict[str, zipfile.ZipInfo]) -> None:
    for name in members:
        parts = name.rstrip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            assert "/".join(parts[:depth]) + "/" in members, name


def test_entries_sorted_without_variation(members: Dict[str, zipfile.ZipInfo]) -> None:
    names = list(members)

    assert names == sorted(names)
    for name, info in members.items():
        assert info.date_time == (1980, 1, 1, 0, 0, 0), name
        assert info.extra == b"", name
        if not info.is_dir():
            assert info.compress_type == zipfile.ZIP_DEFLATED, name


def test_top_level_layout(members: Dict[str, zipfile.ZipInfo]) -> None:
    top_level = {name.split("/", 1)[0] for name in members}

    assert top_level == {"extensions", PRIVATE_FOLDER}
    assert not any(name.startswith("python/") for name in members)
    assert [name for name in members if name.startswith("extensions/")] == ["extensions/", LAUNCHER_ENTRY]


def test_development_files_excluded(members: Dict[str, zipfile.ZipInfo]) -> None:
    for name in members:
        assert not name.startswith(f"{PRIVATE_FOLDER}/telemetry_ext/simulator"), name
        assert "layer_check" not in name, name
        assert "__pycache__" not in name, name
        assert not name.endswith((".pyc", ".pyo")), name
        assert not name.startswith(f"{PRIVATE_FOLDER}/bin/"), name
        assert not name.endswith(".dist-info/RECORD"), name


def test_package_matches_source(members: Dict[str, zipfile.ZipInfo], layer: BuiltLayer) -> None:
    expected = {}
    for path in sorted(PACKAGE_SOURCE.rglob("*")):
        relative = path.relative_to(PACKAGE_SOURCE)
        if not path.is_file() or "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        if relative.parts[0] == "simulator" or relative.parts[0].startswith("layer_check"):
            continue
        expected[f"{PRIVATE_FOLDER}/telemetry_ext/{relative.as_posix()}"] = path
    prefix = f"{PRIVATE_FOLDER}/telemetry_ext/"
    packaged = [name for name in file_names(members) if name.startswith(prefix)]

    assert sorted(packaged) == sorted(expected)
    with zipfile.ZipFile(layer.path) as archive:
        for name, path in expected.items():
            assert archive.read(name) == path.read_bytes(), name


def test_no_compiled_files(members: Dict[str, zipfile.ZipInfo], layer: BuiltLayer) -> None:
    with zipfile.ZipFile(layer.path) as archive:
        for name in file_names(members):
            assert not name.lower().endswith(COMPILED_SUFFIXES), name
            assert ".so." not in name.rsplit("/", 1)[-1], name
            head = archive.read(name)[:4]
            assert not head.startswith(BINARY_MAGICS), f"{name} starts with {head!r}"


def test_dependencies_match_pins(members: Dict[str, zipfile.ZipInfo]) -> None:
    installed = {}
    for name in members:
        match = re.fullmatch(rf"{PRIVATE_FOLDER}/([^/]+)-([^/-]+)\.dist-info/", name)
        if match:
            installed[canonicalize_name(match.group(1))] = match.group(2)

    assert installed == pinned_versions()


def test_dependencies_satisfy_each_other(unzipped: Path) -> None:
    pins = {name: Version(version) for name, version in pinned_versions().items()}
    # The markers are evaluated for the oldest supported runtime, Python 3.9.
    marker_environment = dict(default_environment(), python_version="3.9", python_full_version="3.9.0")

    for metadata_path in sorted((unzipped / PRIVATE_FOLDER).glob("*.dist-info/METADATA")):
        metadata = Parser().parsestr(metadata_path.read_text(encoding="utf-8"))
        requires_python = metadata.get("Requires-Python")
        if requires_python:
            assert Requirement(f"python{requires_python}").specifier.contains("3.9"), metadata_path
        for requirement_text in metadata.get_all("Requires-Dist") or []:
            requirement = Requirement(requirement_text)
            marker = requirement.marker
            if marker is not None and not marker.evaluate(dict(marker_environment, extra="")):
                continue
            name = canonicalize_name(requirement.name)
            source = f"{metadata['Name']} requires {requirement}"
            assert name in pins, f"{source}, which layer/requirements.txt does not pin"
            pinned = pins[name]
            assert requirement.specifier.contains(pinned, prereleases=True), f"{source}, pinned {pinned}"


def test_pins_within_project_dependencies() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = pinned_versions()

    for requirement_text in project["dependencies"]:
        requirement = Requirement(requirement_text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"pyproject.toml depends on {name}, which layer/requirements.txt does not pin"
        assert requirement.specifier.contains(pins[name]), f"{pins[name]} is outside {requirement}"


def test_private_folder_imports_alone(unzipped: Path) -> None:
    # -S leaves out the base interpreter's site-packages too, so every import that is not in the
    # standard library has to come from the layer.
    private_folder = unzipped / PRIVATE_FOLDER
    script = (
        "import importlib, json, pkgutil, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import telemetry_ext, telemetry_ext.main\n"
        "modules = [info.name for info in pkgutil.walk_packages(telemetry_ext.__path__, 'telemetry_ext.')]\n"
        "for name in modules: importlib.import_module(name)\n"
        f"dependencies = {DEPENDENCY_MODULES!r}\n"
        "files = {name: importlib.import_module(name).__file__ for name in dependencies}\n"
        "print(json.dumps({'modules': modules, 'files': files}))\n"
    )

    result = subprocess.run(
        [str(base_python()), "-I", "-S", "-c", script, str(private_folder)],
        cwd=unzipped,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "telemetry_ext.main" in report["modules"]
    for name, file in report["files"].items():
        assert Path(file).resolve().is_relative_to(private_folder.resolve()), f"{name} imported from {file}"


def test_launcher_command_imports(unzipped: Path) -> None:
    # The same interpreter flags and sys.path change as the exec line in the launcher.
    private_folder = unzipped / PRIVATE_FOLDER
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import telemetry_ext.main, requests, aws_lambda_powertools\n"
        "from aws_lambda_powertools.metrics import EphemeralMetrics\n"
        "for module in (telemetry_ext.main, requests, aws_lambda_powertools): print(module.__file__)\n"
    )

    result = subprocess.run(
        [str(base_python()), "-I", "-c", script, str(private_folder)],
        cwd=unzipped,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    for file in result.stdout.split():
        assert Path(file).resolve().is_relative_to(private_folder.resolve()), file


def annotations_with_union_operator(tree: ast.Module) -> List[int]:
    """Return the line numbers of annotations that use X | Y, which Python 3.9 cannot evaluate."""
    annotations = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every_argument = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
            every_argument += [argument for argument in (arguments.vararg, arguments.kwarg) if argument]
            annotations += [argument.annotation for argument in every_argument if argument.annotation]
            if node.returns is not None:
                annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
    lines = []
    for annotation in annotations:
        for part in ast.walk(annotation):
            if isinstance(part, ast.BinOp) and isinstance(part.op, ast.BitOr):
                lines.append(part.lineno)
    return lines


def test_package_parses_as_python39(unzipped: Path) -> None:
    # The layer lists python3.9 as a compatible runtime, and no 3.9 interpreter runs these tests.
    # ast.parse with feature_version rejects newer syntax such as match statements and except*.
    # NOTE: newer standard library calls and X | Y outside annotations still pass unnoticed.
    for path in sorted((unzipped / PRIVATE_FOLDER / "telemetry_ext").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))
        postponed = any(
            isinstance(node, ast.ImportFrom)
            and node.module == "__future__"
            and any(alias.name == "annotations" for alias in node.names)
            for node in tree.body
        )
        if not postponed:
            union_lines = annotations_with_union_operator(tree)
            assert union_lines == [], f"{path}: X | Y annotations without postponed evaluation"


def test_build_rejects_compiled_only_package(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    # pydantic-core publishes compiled wheels only, so the pure-wheel flags find no file. The
    # version installed here exists on the configured index.
    requirements.write_text(f"pydantic-core=={importlib.metadata.version('pydantic-core')}\n")

    result = run_build(
        tmp_path / "layer.zip",
        tmp_path,
        "--requirements", str(requirements),
        "--cache-dir", str(tmp_path / "cache"),
    )

    assert result.returncode == 1
    assert "error: downloading the layer's dependencies failed" in result.stderr
    assert "pydantic-core" in result.stderr
    assert not (tmp_path / "layer.zip").exists()


BY_NAME = "shared library or executable, by its file name"
# An MS-DOS header whose e_lfanew field (offset 0x3C) points at the "PE\0\0" signature.
PE_HEAD = b"MZ" + b"\0" * 0x3A + (0x40).to_bytes(4, "little") + b"PE\0\0"


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("lib/module.py", b"import os\n", None),
        ("lib/_speedups.cpython-311-x86_64-linux-gnu.so", b"", BY_NAME),
        ("lib/libcrypto.so.3", b"", BY_NAME),
        ("lib/tool.exe", b"", BY_NAME),
        ("lib/data.bin", b"\x7fELF\x02\x01\x01", "ELF binary"),
        ("lib/data.bin", b"\xcf\xfa\xed\xfe\x07", "Mach-O binary"),
        ("lib/data.bin", b"\xca\xfe\xba\xbe\x00", "Mach-O universal binary or Java class file"),
        ("lib/data.bin", PE_HEAD, "Windows PE binary"),
        ("lib/notes.txt", b"MZ is a text line" + b"\0" * 0x40, None),
    ],
)
def test_compiled_file_kind(name: str, head: bytes, expected: "str | None") -> None:
    build = load_build_module()

    assert build.compiled_file_kind(name, head) == expected


def test_check_rejects_compiled_files() -> None:
    build = load_build_module()
    entries = {
        "telemetry-ext/pkg/__init__.py": (b"", 0o100644),
        "telemetry-ext/pkg/_speedups.so": (b"\x7fELF", 0o100644),
    }

    with pytest.raises(build.BuildError, match=r"telemetry-ext/pkg/_speedups\.so"):
        build.check_no_compiled_files(entries)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (1980, 1, 1, 0, 0, 0)),
        ("", (1980, 1, 1, 0, 0, 0)),
        ("0", (1980, 1, 1, 0, 0, 0)),
        ("1700000000", (2023, 11, 14, 22, 13, 20)),
        ("99999999999", (2107, 12, 31, 23, 59, 58)),
    ],
)
def test_zip_date_time(value: "str | None", expected: tuple) -> None:
    build = load_build_module()
    environ = {} if value is None else {"SOURCE_DATE_EPOCH": value}

    assert build.zip_date_time(environ) == expected


def test_zip_date_time_rejects_invalid() -> None:
    build = load_build_module()

    with pytest.raises(build.BuildError, match="invalid SOURCE_DATE_EPOCH 'yesterday'"):
        build.zip_date_time({"SOURCE_DATE_EPOCH": "yesterday"})
