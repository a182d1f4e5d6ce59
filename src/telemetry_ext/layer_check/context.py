"""The input that every rule of the layer checker receives."""

from __future__ import annotations

from dataclasses import dataclass

from .archive import Layer
from .runtimes import Architecture, Runtime


@dataclass(frozen=True)
class CheckContext:
    """The scanned layer and the target it is checked for.

    `private_dirs` are the top-level folders that belong to an extension launcher in
    extensions/ (see `launchers.find_private_dirs`). `function_bytes` is the unzipped size of
    the function's own code, which counts toward the same limit as the layers.
    """

    layer: Layer
    runtime: Runtime
    architecture: Architecture
    function_bytes: int
    private_dirs: frozenset[str]
