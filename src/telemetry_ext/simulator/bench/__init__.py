"""Benchmarks of the extension, run against the local sandbox: ``make bench``.

``python -m telemetry_ext.simulator.bench --layer dist/telemetry-ext-layer.zip --output
docs/benchmarks.md`` measures cold start, memory, the time added to each invoke, ingest
throughput, the SHUTDOWN drain and the layer size, prints a table and writes it as Markdown
(and with ``--json PATH`` as JSON).

This package's ``__init__`` imports nothing, so that the ingest client subprocess
(``python -m telemetry_ext.simulator.bench.ingest_client``) starts quickly.
"""
