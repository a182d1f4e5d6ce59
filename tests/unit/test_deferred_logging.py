"""Deferred start-up logging, run in child interpreters because its state is process-wide."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_child(source: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True, timeout=60, check=True
    )


def test_records_held_until_load():
    result = run_child(
        """
        import sys
        from telemetry_ext import deferred_logging
        deferred_logging.configure("my-ext", "INFO")
        log = deferred_logging.get_logger("telemetry_ext.test")
        log.info("first %d", 1)
        log.warning("second")
        print("logging imported:", "logging" in sys.modules, flush=True)
        deferred_logging.load()
        log.error("third")
        """
    )

    assert "logging imported: False" in result.stdout
    assert result.stderr.splitlines() == ["[my-ext] INFO first 1", "[my-ext] WARNING second", "[my-ext] ERROR third"]


def test_level_filter_applies_to_held_records():
    result = run_child(
        """
        from telemetry_ext import deferred_logging
        deferred_logging.configure("my-ext", "WARNING")
        log = deferred_logging.get_logger("telemetry_ext.test")
        log.info("hidden")
        log.debug("hidden too")
        log.warning("shown")
        deferred_logging.load()
        """
    )

    assert result.stderr.splitlines() == ["[my-ext] WARNING shown"]


def test_exception_keeps_traceback():
    result = run_child(
        """
        from telemetry_ext import deferred_logging
        deferred_logging.configure("my-ext", "INFO")
        log = deferred_logging.get_logger("telemetry_ext.test")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("handling failed")
        deferred_logging.load()
        """
    )

    assert "[my-ext] ERROR handling failed" in result.stderr
    assert "ValueError: boom" in result.stderr


def test_passes_through_without_configure():
    result = run_child(
        """
        import logging
        logging.basicConfig(format="%(name)s %(message)s")
        from telemetry_ext import deferred_logging
        deferred_logging.get_logger("telemetry_ext.test").warning("direct")
        """
    )

    assert result.stderr.splitlines() == ["telemetry_ext.test direct"]
