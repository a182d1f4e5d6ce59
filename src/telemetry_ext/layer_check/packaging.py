"""Rules for the zip as a whole: unreadable members, unsafe or duplicate paths, permissions and size.

Limits from the AWS Lambda quotas page: a function and all its layers may take at most
262,144,000 bytes (250 MiB) unzipped. A zip uploaded directly through the Lambda API may be
at most 50 MiB, and larger ones go through Amazon S3. Lambda runs code as a non-root user,
so files need mode 644 and directories and executables 755 (AWS Lambda Developer Guide,
"Deployment package file permissions").
"""

from __future__ import annotations

import stat

from .context import CheckContext
from .findings import Finding, error, warning

UNZIPPED_LIMIT_BYTES = 262_144_000
SIZE_WARNING_FRACTION = 0.8
DIRECT_UPLOAD_LIMIT_BYTES = 50 * 1024 * 1024

# A zip made with a restrictive umask has every file wrong, so past this many one finding sums up the rest.
_MAX_PERMISSION_FINDINGS = 20
_LARGEST_FILES_SHOWN = 3


def check_packaging(context: CheckContext) -> list[Finding]:
    """Run the rules that concern the archive rather than one runtime."""
    findings: list[Finding] = []
    findings.extend(_check_members(context))
    findings.extend(_check_permissions(context))
    findings.extend(_check_size(context))
    return findings


def _check_members(context: CheckContext) -> list[Finding]:
    layer = context.layer
    findings: list[Finding] = []
    if not layer.regular_files() and not any(member.is_symlink for member in layer.files):
        findings.append(
            warning("empty-layer", None, "the layer contains no files", "check the command that builds the zip")
        )

    seen: set[str] = set()
    for member in layer.files:
        name = member.name
        if name in seen:
            findings.append(
                warning(
                    "duplicate-path",
                    name,
                    "path appears more than once in the zip, and which copy ends up in /opt depends on the extractor",
                    "rebuild the zip from a clean folder",
                )
            )
        seen.add(name)

        if "\\" in name:
            findings.append(
                error(
                    "unsafe-path",
                    name,
                    "path contains backslashes, so it extracts as one file with backslashes in its name instead of "
                    "into folders",
                    "build the zip with a tool that writes / as the separator, such as zip or Python's zipfile",
                )
            )
        elif name.startswith("/") or ".." in name.split("/"):
            findings.append(
                error(
                    "unsafe-path",
                    name,
                    "path is absolute or contains '..', so it does not extract under /opt",
                    "build the zip from inside the layer folder with relative paths",
                )
            )

        if member.read_error is not None:
            findings.append(
                error(
                    "unreadable-member",
                    name,
                    f"cannot be read from the zip ({member.read_error})",
                    "rebuild the zip without encryption, using deflate or no compression",
                )
            )
    return findings


def _check_permissions(context: CheckContext) -> list[Finding]:
    findings: list[Finding] = []
    skipped = 0
    for member in context.layer.files:
        if member.mode is None or member.is_symlink:
            continue
        permissions = stat.S_IMODE(member.mode)
        if member.is_dir:
            if permissions & (stat.S_IROTH | stat.S_IXOTH) == stat.S_IROTH | stat.S_IXOTH:
                continue
            problem = f"directory has mode {permissions:04o}, which other users cannot list or enter"
            fix = "run chmod 755 on the directory before zipping"
        else:
            if permissions & stat.S_IROTH:
                continue
            problem = (
                f"file has mode {permissions:04o}, which other users cannot read, "
                "but Lambda runs code as a non-root user"
            )
            fix = "run chmod 644 on the file, or 755 on an executable, before zipping"

        if len(findings) < _MAX_PERMISSION_FINDINGS:
            findings.append(error("permissions", member.name, problem, fix))
        else:
            skipped += 1

    if skipped:
        findings.append(
            error(
                "permissions",
                None,
                f"{skipped} more files or directories that other users cannot read",
                "run chmod -R a+rX on the layer folder before zipping",
            )
        )
    return findings


def _check_size(context: CheckContext) -> list[Finding]:
    layer = context.layer
    layer_bytes = layer.unzipped_bytes
    total_bytes = layer_bytes + context.function_bytes
    limit = UNZIPPED_LIMIT_BYTES

    if context.function_bytes:
        measured = f"{total_bytes:,} bytes unzipped (layer {layer_bytes:,} + function {context.function_bytes:,})"
    else:
        measured = f"{total_bytes:,} bytes unzipped"

    largest = sorted(layer.regular_files(), key=lambda member: member.file_size, reverse=True)
    largest_text = ", ".join(f"{member.name} ({member.file_size:,} bytes)" for member in largest[:_LARGEST_FILES_SHOWN])
    fix = ""
    if largest_text:
        fix = f"remove files the function does not need, starting with the largest: {largest_text}"

    findings: list[Finding] = []
    if total_bytes > limit:
        findings.append(
            error(
                "unzipped-size",
                None,
                f"{measured}, over Lambda's limit of {limit:,} bytes for a function and all its layers",
                fix,
            )
        )
    elif total_bytes > limit * SIZE_WARNING_FRACTION:
        findings.append(
            warning(
                "unzipped-size",
                None,
                f"{measured}, {total_bytes / limit:.0%} of Lambda's limit of {limit:,} bytes for a function and "
                "all its layers, and the function's other layers count too",
                fix,
            )
        )

    if layer.zip_bytes > DIRECT_UPLOAD_LIMIT_BYTES:
        findings.append(
            warning(
                "zip-size",
                None,
                f"the zip is {layer.zip_bytes:,} bytes, over the {DIRECT_UPLOAD_LIMIT_BYTES:,}-byte limit for a "
                "direct upload to Lambda",
                "upload it to Amazon S3 and publish the layer from there",
            )
        )
    return findings
