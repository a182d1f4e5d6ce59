"""Lambda runtimes and architectures that the layer checker supports, with the facts it checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OsImage:
    """The operating system image a Lambda runtime runs on."""

    name: str
    glibc: tuple[int, int]


AMAZON_LINUX_2 = OsImage("Amazon Linux 2", (2, 26))
AMAZON_LINUX_2023 = OsImage("Amazon Linux 2023", (2, 34))


@dataclass(frozen=True)
class Runtime:
    """A Lambda runtime identifier and what it implies for layer content.

    `language` is "python", "nodejs", "java" or "provided". `version` is the language version
    the runtime runs, such as (3, 12) for python3.12 or (20,) for nodejs20.x, and empty for the
    OS-only runtimes.
    """

    name: str
    language: str
    version: tuple[int, ...]
    os_image: OsImage

    @property
    def sam_build_image(self) -> str:
        """Name the AWS SAM build image for this runtime, which builds code the runtime can load."""
        return f"public.ecr.aws/sam/build-{self.name}"


def dotted_version(version: tuple[int, ...]) -> str:
    """Format a version tuple such as (2, 34) as "2.34"."""
    return ".".join(str(part) for part in version)


def _runtime(name: str, language: str, version: tuple[int, ...], os_image: OsImage) -> Runtime:
    return Runtime(name=name, language=language, version=version, os_image=os_image)


# Runtime identifiers as the Lambda API spells them. OS images and glibc versions: Amazon Linux 2
# ships glibc 2.26 and Amazon Linux 2023 ships glibc 2.34.
RUNTIMES: dict[str, Runtime] = {
    runtime.name: runtime
    for runtime in (
        _runtime("python3.9", "python", (3, 9), AMAZON_LINUX_2),
        _runtime("python3.10", "python", (3, 10), AMAZON_LINUX_2),
        _runtime("python3.11", "python", (3, 11), AMAZON_LINUX_2),
        _runtime("python3.12", "python", (3, 12), AMAZON_LINUX_2023),
        _runtime("python3.13", "python", (3, 13), AMAZON_LINUX_2023),
        # python3.14, nodejs24.x and java25: identifiers from the Lambda runtimes page and the
        # AWS SDK's Runtime enum (late 2025); their images are Amazon Linux 2023 like the other
        # current runtimes.
        _runtime("python3.14", "python", (3, 14), AMAZON_LINUX_2023),
        _runtime("nodejs16.x", "nodejs", (16,), AMAZON_LINUX_2),
        _runtime("nodejs18.x", "nodejs", (18,), AMAZON_LINUX_2),
        _runtime("nodejs20.x", "nodejs", (20,), AMAZON_LINUX_2023),
        _runtime("nodejs22.x", "nodejs", (22,), AMAZON_LINUX_2023),
        _runtime("nodejs24.x", "nodejs", (24,), AMAZON_LINUX_2023),
        _runtime("java8.al2", "java", (8,), AMAZON_LINUX_2),
        _runtime("java11", "java", (11,), AMAZON_LINUX_2),
        _runtime("java17", "java", (17,), AMAZON_LINUX_2),
        _runtime("java21", "java", (21,), AMAZON_LINUX_2023),
        _runtime("java25", "java", (25,), AMAZON_LINUX_2023),
        _runtime("provided.al2", "provided", (), AMAZON_LINUX_2),
        _runtime("provided.al2023", "provided", (), AMAZON_LINUX_2023),
    )
}


@dataclass(frozen=True)
class Architecture:
    """A Lambda instruction set architecture.

    `elf_machine` is the ELF e_machine value (System V ABI). `gnu_cpu` is the CPU part of the
    GNU triplet in CPython extension module names, such as x86_64-linux-gnu.
    `pip_platform` is a wheel platform tag that both Amazon Linux images can load, because
    manylinux2014 wheels need only glibc 2.17.
    """

    name: str
    elf_machine: int
    gnu_cpu: str
    pip_platform: str

    @property
    def gnu_triplet(self) -> str:
        return f"{self.gnu_cpu}-linux-gnu"


ARCHITECTURES: dict[str, Architecture] = {
    "x86_64": Architecture(name="x86_64", elf_machine=62, gnu_cpu="x86_64", pip_platform="manylinux2014_x86_64"),
    "arm64": Architecture(name="arm64", elf_machine=183, gnu_cpu="aarch64", pip_platform="manylinux2014_aarch64"),
}
