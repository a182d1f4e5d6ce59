"""Loggers for the start-up path that hold their records until ``logging`` is loaded.

Importing ``logging`` costs about 13 ms (it pulls in traceback, string and re), which would
delay the first ``/event/next``. Modules on the start-up path log through ``get_logger``;
their records wait in memory until ``load`` imports and configures ``logging`` on another
thread, which the extension starts once the first ``/event/next`` is under way. From then on
the loggers hand every call to ``logging`` directly.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40

_lock = threading.Lock()
_pending: list[tuple[str, int, str, tuple[Any, ...], Any]] = []
_loaded = False
# Only the extension's main() defers; anywhere else (tests, tools) records go to logging at once.
_deferring = False
_settings = {"extension_name": "telemetry-ext", "level_name": "INFO"}


class DeferredLogger:
    """The subset of ``logging.Logger`` the start-up modules use."""

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, message: str, *args: Any) -> None:
        self._log(DEBUG, message, args)

    def info(self, message: str, *args: Any) -> None:
        self._log(INFO, message, args)

    def warning(self, message: str, *args: Any) -> None:
        self._log(WARNING, message, args)

    def error(self, message: str, *args: Any) -> None:
        self._log(ERROR, message, args)

    def exception(self, message: str, *args: Any) -> None:
        self._log(ERROR, message, args, sys.exc_info())

    def _log(self, level: int, message: str, args: tuple[Any, ...], exc_info: Any = None) -> None:
        with _lock:
            if _deferring and not _loaded:
                _pending.append((self.name, level, message, args, exc_info))
                return
        import logging

        logging.getLogger(self.name).log(level, message, *args, exc_info=exc_info)


def get_logger(name: str) -> DeferredLogger:
    return DeferredLogger(name)


def configure(extension_name: str, level_name: str) -> None:
    """Hold records from now on, until ``load`` sets up a stderr handler prefixed with the name."""
    global _deferring
    _deferring = True
    _settings["extension_name"] = extension_name
    _settings["level_name"] = level_name


def load() -> None:
    """Import and configure ``logging``, then emit the held records in order. Idempotent."""
    global _loaded
    import logging

    with _lock:
        if _loaded:
            return
        level = getattr(logging, _settings["level_name"].strip().upper(), None)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"[{_settings['extension_name']}] %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(level if isinstance(level, int) else logging.INFO)
        for name, record_level, message, args, exc_info in _pending:
            logging.getLogger(name).log(record_level, message, *args, exc_info=exc_info)
        _pending.clear()
        _loaded = True


def load_in_background() -> threading.Thread:
    thread = threading.Thread(target=load, name="telemetry-logging", daemon=True)
    thread.start()
    return thread
