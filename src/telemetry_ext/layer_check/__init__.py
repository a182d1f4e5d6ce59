"""Check a Lambda layer zip, ours or anyone's, for a target runtime and architecture.

The checker reads the zip directly and reports, per path inside the zip:

- native files built for another system: Mach-O and PE binaries, ELF files for another
  machine or in 32-bit or big-endian form, and ELF files linked against musl;
- ELF files that need a newer glibc than the runtime's Amazon Linux image has;
- CPython extension modules whose ABI tag the target Python does not import;
- packages outside the folders the runtime searches (python/, nodejs/node_modules/, java/lib/);
- launchers in extensions/ that cannot be executed, directories there, and more than 10 launchers;
- unreadable members, unsafe paths, missing read permissions and the 250 MiB unzipped limit.

Run it as `telemetry-ext-check-layer LAYER.zip --runtime python3.12 --arch x86_64` or with
`python -m telemetry_ext.layer_check`. Exit status: 0 without errors, 1 with errors, 2 on a
usage error or an unreadable zip.
"""

from __future__ import annotations

from .archive import LayerReadError
from .checker import Report, check_layer
from .cli import main
from .findings import Finding, Severity
from .runtimes import ARCHITECTURES, RUNTIMES

__all__ = ["ARCHITECTURES", "RUNTIMES", "Finding", "LayerReadError", "Report", "Severity", "check_layer", "main"]
