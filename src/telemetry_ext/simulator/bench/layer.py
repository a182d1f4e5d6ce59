"""Layer size: the zip as uploaded, and what Lambda unpacks into /opt."""

from __future__ import annotations

import zipfile
from pathlib import Path

from telemetry_ext.simulator.bench.common import Row

SECTION = "layer"
# Lambda's quota on the unzipped size of a function and all its layers together.
UNZIPPED_QUOTA_BYTES = 250 * 1024 * 1024


def measure(layer_zip: Path) -> list[Row]:
    with zipfile.ZipFile(layer_zip) as archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
    unzipped = sum(info.file_size for info in entries)
    zipped = layer_zip.stat().st_size
    share = unzipped / UNZIPPED_QUOTA_BYTES * 100
    return [
        Row(SECTION, "zipBytes", "Layer zip size", "bytes", zipped, spread="single reading", note=f"{zipped / 1024 / 1024:.2f} MiB"),
        Row(
            SECTION,
            "unzippedBytes",
            "Layer unzipped size",
            "bytes",
            unzipped,
            spread="single reading",
            note=f"{unzipped / 1024 / 1024:.2f} MiB in {len(entries)} files, {share:.1f}% of Lambda's 250 MiB unzipped quota",
            extra={"files": len(entries)},
        ),
    ]
