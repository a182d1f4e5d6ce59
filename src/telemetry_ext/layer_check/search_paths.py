"""Rules for packages that sit where the runtime does not look for them.

Lambda extracts layers into /opt and puts these layer folders on the search paths (AWS Lambda
Developer Guide, "Packaging your layer content"): python/ and python/lib/python3.x/site-packages/
for Python, nodejs/node_modules/ and nodejs/node<major>/node_modules/ for Node.js, and
java/lib/ on the CLASSPATH for Java. Folders that belong to an extension launcher are exempt,
because an extension sets up its own paths.
"""

from __future__ import annotations

import posixpath
import re

from .context import CheckContext
from .findings import Finding, error, plural, warning
from .runtimes import dotted_version

_EXTENSION_MODULE = re.compile(r"\.(?:cpython-[^.]+|abi3)\.so$")
_VERSIONED_SITE_PACKAGES = re.compile(r"python/lib/python(\d+)\.(\d+)/site-packages/$")
_NODE_VERSION_DIR = re.compile(r"node(\d+)$")
# Top-level folders that other runtimes or Lambda itself read, so Python files in them are not
# misplaced Python packages (node-gyp, for example, ships Python code inside node_modules).
_NOT_PYTHON_ROOTS = frozenset({"python", "nodejs", "java", "ruby", "extensions"})


def check_search_paths(context: CheckContext) -> list[Finding]:
    """Check that the packages for the target runtime's language sit on its search path."""
    language = context.runtime.language
    if language == "python":
        return _check_python_paths(context)
    if language == "nodejs":
        return _check_node_paths(context)
    if language == "java":
        return _check_java_paths(context)
    return []


def _check_python_paths(context: CheckContext) -> list[Finding]:
    runtime = context.runtime
    target_site_packages = f"python/lib/python{dotted_version(runtime.version)}/site-packages/"

    site_packages_counts: dict[str, int] = {}
    top_level_packages: set[str] = set()
    top_level_modules: list[str] = []
    for member in context.layer.files:
        if member.is_dir:
            continue
        parts = member.parts
        top = parts[0]
        if top in context.private_dirs:
            continue

        if "site-packages" in parts[:-1]:
            site_packages = "/".join(parts[: parts.index("site-packages") + 1]) + "/"
            if site_packages != target_site_packages:
                site_packages_counts[site_packages] = site_packages_counts.get(site_packages, 0) + 1
            continue

        if top in _NOT_PYTHON_ROOTS:
            continue
        if len(parts) == 1:
            if top.endswith(".py") or _EXTENSION_MODULE.search(top):
                top_level_modules.append(top)
        elif _is_package_marker(parts):
            top_level_packages.add(top)

    findings: list[Finding] = []
    searched = f"{runtime.name} imports only from python/ and {target_site_packages} in a layer"
    for site_packages, count in sorted(site_packages_counts.items()):
        if _VERSIONED_SITE_PACKAGES.match(site_packages):
            findings.append(
                warning(
                    "python-version-path",
                    site_packages,
                    f"site-packages folder with {plural(count, 'file')} that is not on the path for this runtime, "
                    f"because {searched}",
                    f"install the packages for {runtime.name} into {target_site_packages} or python/",
                )
            )
        else:
            findings.append(
                error(
                    "python-path",
                    site_packages,
                    f"site-packages folder with {plural(count, 'file')} that is not on the path, because {searched}",
                    f"move the folder's contents to {target_site_packages} or python/",
                )
            )

    for package in sorted(top_level_packages):
        findings.append(
            error(
                "python-path",
                f"{package}/",
                f"Python package at the top of the layer, but {searched}",
                f"move it to python/{package}/ and any .dist-info folder of it to python/",
            )
        )
    for module in top_level_modules:
        findings.append(
            error(
                "python-path",
                module,
                f"Python module at the top of the layer, but {searched}",
                f"move it to python/{module}",
            )
        )
    return findings


def _is_package_marker(parts: list[str]) -> bool:
    """Tell whether a file below a top-level folder shows that the folder is a Python package.

    Markers are an __init__.py in the folder, an __init__.py one level down (a namespace package
    such as google/protobuf/), or an extension module in the folder.
    """
    if len(parts) == 2:
        return parts[1] == "__init__.py" or bool(_EXTENSION_MODULE.search(parts[1]))
    return len(parts) == 3 and parts[2] == "__init__.py"


def _check_node_paths(context: CheckContext) -> list[Finding]:
    runtime = context.runtime
    major = runtime.version[0]
    searched = (
        f"{runtime.name} loads modules only from nodejs/node_modules/ and nodejs/node{major}/node_modules/ "
        "in a layer"
    )

    top_level_modules = False
    other_versions: set[str] = set()
    for member in context.layer.files:
        parts = member.parts
        if parts[0] in context.private_dirs:
            continue
        if parts[0] == "node_modules" and len(parts) > 1:
            top_level_modules = True
        if len(parts) > 2 and parts[0] == "nodejs" and parts[2] == "node_modules":
            version_dir = _NODE_VERSION_DIR.match(parts[1])
            if version_dir is not None and int(version_dir[1]) != major:
                other_versions.add(f"nodejs/{parts[1]}/node_modules/")

    findings: list[Finding] = []
    if top_level_modules:
        findings.append(
            error(
                "node-path",
                "node_modules/",
                f"Node.js modules at the top of the layer, but {searched}",
                "move node_modules/ to nodejs/node_modules/",
            )
        )
    for folder in sorted(other_versions):
        findings.append(
            warning(
                "node-version-path",
                folder,
                f"modules for another Node.js major version, not on the path for this runtime, because {searched}",
                f"install them for {runtime.name} into nodejs/node_modules/ or nodejs/node{major}/node_modules/",
            )
        )
    return findings


def _check_java_paths(context: CheckContext) -> list[Finding]:
    runtime = context.runtime
    misplaced: dict[str, int] = {}
    for member in context.layer.regular_files():
        if member.parts[0] in context.private_dirs or not member.name.endswith(".jar"):
            continue
        if member.name.startswith("java/lib/"):
            continue
        # JAR files at the top of the layer are reported one by one, the others by folder.
        folder = posixpath.dirname(member.name)
        key = f"{folder}/" if folder else member.name
        misplaced[key] = misplaced.get(key, 0) + 1

    problem = f"outside java/lib/, which is the layer folder {runtime.name} puts on the CLASSPATH"
    return [
        warning(
            "java-path",
            path,
            f"{plural(count, 'JAR file')} {problem}" if path.endswith("/") else f"JAR file {problem}",
            "move the JAR files to java/lib/",
        )
        for path, count in sorted(misplaced.items())
    ]
