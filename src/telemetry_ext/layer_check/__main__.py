"""Allow `python -m telemetry_ext.layer_check LAYER.zip --runtime RUNTIME --arch ARCH`."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
