"""Run every rule on one layer zip and collect the findings."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .archive import Layer
from .binaries import check_binaries
from .context import CheckContext
from .findings import Finding, Severity
from .launchers import check_extensions, find_private_dirs
from . import packaging
from .python_abi import check_python_abi
from .runtimes import Architecture, Runtime
from .search_paths import check_search_paths

_RULES = (packaging.check_packaging, check_extensions, check_binaries, check_python_abi, check_search_paths)


@dataclass(frozen=True)
class Report:
    """The outcome of checking one layer: its findings, errors first, and its size."""

    layer_name: str
    runtime: Runtime
    architecture: Architecture
    unzipped_bytes: int
    function_bytes: int
    limit_bytes: int
    findings: tuple[Finding, ...]

    @property
    def error_count(self) -> int:
        return sum(1 for finding in self.findings if finding.severity is Severity.ERROR)

    @property
    def warning_count(self) -> int:
        return sum(1 for finding in self.findings if finding.severity is Severity.WARNING)


def check_layer(
    path: str | os.PathLike[str], runtime: Runtime, architecture: Architecture, function_bytes: int = 0
) -> Report:
    """Check the layer zip at `path` for `runtime` on `architecture`.

    `function_bytes` is the unzipped size of the function's own code. Raises
    archive.LayerReadError when the file cannot be opened as a zip.
    """
    with Layer(path) as layer:
        layer.scan()
        context = CheckContext(
            layer=layer,
            runtime=runtime,
            architecture=architecture,
            function_bytes=function_bytes,
            private_dirs=find_private_dirs(layer),
        )
        findings: list[Finding] = []
        for rule in _RULES:
            findings.extend(rule(context))

        return Report(
            layer_name=layer.display_name,
            runtime=runtime,
            architecture=architecture,
            unzipped_bytes=layer.unzipped_bytes,
            function_bytes=function_bytes,
            limit_bytes=packaging.UNZIPPED_LIMIT_BYTES,
            findings=tuple(sorted(findings, key=_sort_key)),
        )


def _sort_key(finding: Finding) -> tuple[int, bool, str, str]:
    # Errors come first. Within each severity, findings about the whole layer come last.
    return (0 if finding.severity is Severity.ERROR else 1, finding.path is None, finding.path or "", finding.code)
