"""Command line of the layer checker: parse arguments, run the check, print the report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .archive import LayerReadError
from .checker import Report, check_layer
from .findings import plural
from .runtimes import ARCHITECTURES, RUNTIMES, Architecture, Runtime

PROG = "telemetry-ext-check-layer"

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check a Lambda layer zip for content that fails on the given runtime and architecture.",
        epilog="Exit status: 0 when there are no errors, 1 when there are, 2 on a usage error or an unreadable zip.",
    )
    parser.add_argument("layer", metavar="LAYER.zip", help="path of the layer zip")
    parser.add_argument(
        "--runtime",
        required=True,
        type=_parse_runtime,
        metavar="RUNTIME",
        help=f"Lambda runtime of the functions that use the layer: {', '.join(RUNTIMES)}",
    )
    parser.add_argument(
        "--arch",
        default=ARCHITECTURES["x86_64"],
        type=_parse_architecture,
        metavar="ARCH",
        help=f"instruction set architecture: {' or '.join(ARCHITECTURES)} (default: x86_64)",
    )
    parser.add_argument(
        "--function-size",
        default=0,
        type=_parse_size,
        metavar="BYTES",
        help="unzipped size of the function's own code in bytes, added to the layer for the size limit (default: 0)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as a JSON object instead of text")
    return parser


def _parse_runtime(value: str) -> Runtime:
    runtime = RUNTIMES.get(value)
    if runtime is None:
        raise argparse.ArgumentTypeError(f"invalid runtime {value!r} (valid runtimes: {', '.join(RUNTIMES)})")
    return runtime


def _parse_architecture(value: str) -> Architecture:
    architecture = ARCHITECTURES.get(value)
    if architecture is None:
        raise argparse.ArgumentTypeError(
            f"invalid architecture {value!r} (valid architectures: {', '.join(ARCHITECTURES)})"
        )
    return architecture


def _parse_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise argparse.ArgumentTypeError(f"invalid size {value!r} (expected a whole number of bytes, 0 or more)")
    return size


def format_text(report: Report) -> str:
    """Render one line per finding and a summary line."""
    lines = []
    for finding in report.findings:
        path = finding.path if finding.path is not None else report.layer_name
        line = f"{finding.severity.name} {path}: {finding.problem}"
        if finding.fix:
            line += f" ({finding.fix})"
        lines.append(line)

    target = f"({report.runtime.name}, {report.architecture.name})"
    size = f"{report.unzipped_bytes:,} bytes unzipped"
    if report.findings:
        counts = f"{plural(report.error_count, 'error')}, {plural(report.warning_count, 'warning')}"
        lines.append(f"{report.layer_name}: {counts} {target}, {size}")
    else:
        lines.append(f"{report.layer_name}: OK {target}, {size}")
    return "\n".join(lines)


def format_json(report: Report) -> str:
    """Render the report as a JSON object with lowerCamelCase keys."""
    document = {
        "layer": report.layer_name,
        "runtime": report.runtime.name,
        "architecture": report.architecture.name,
        "ok": report.error_count == 0,
        "errors": report.error_count,
        "warnings": report.warning_count,
        "unzippedBytes": report.unzipped_bytes,
        "functionBytes": report.function_bytes,
        "limitBytes": report.limit_bytes,
        "findings": [
            {
                "severity": finding.severity.value,
                "code": finding.code,
                "path": finding.path,
                "problem": finding.problem,
                "fix": finding.fix,
            }
            for finding in report.findings
        ],
    }
    return json.dumps(document, indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the layer checker and return the exit status (0 no errors, 1 errors, 2 usage or read error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse has printed the usage message; --help exits with 0, a usage error with 2.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    try:
        report = check_layer(args.layer, args.runtime, args.arch, args.function_size)
    except LayerReadError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    print(format_json(report) if args.json else format_text(report))
    return EXIT_ERRORS if report.error_count else EXIT_OK
