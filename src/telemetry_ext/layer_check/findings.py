"""The problems the layer checker reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.Enum):
    """Severity of a finding. Only errors make the checker exit with status 1."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem in a layer.

    `code` is a stable identifier of the rule, for scripts that filter the JSON output.
    `path` is the path inside the zip, or None when the problem concerns the layer as a whole.
    `fix` is the action that solves the problem and may be empty.
    """

    severity: Severity
    code: str
    path: str | None
    problem: str
    fix: str = ""


def plural(count: int, noun: str) -> str:
    """Format a count with its noun, such as "1 error" or "2 errors"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def error(code: str, path: str | None, problem: str, fix: str = "") -> Finding:
    return Finding(Severity.ERROR, code, path, problem, fix)


def warning(code: str, path: str | None, problem: str, fix: str = "") -> Finding:
    return Finding(Severity.WARNING, code, path, problem, fix)
