"""telemetry-ext: an external AWS Lambda extension that ships Telemetry API data."""

__version__ = "0.1.0"
