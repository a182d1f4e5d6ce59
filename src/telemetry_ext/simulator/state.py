"""State that the sandbox keeps per extension and per invocation, and the error its API methods
raise."""

from __future__ import annotations

import queue
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class ExtensionState:
    name: str
    path: Path
    process: subprocess.Popen
    launched_at: float
    identifier: Optional[str] = None
    events: tuple[str, ...] = ()
    registered_at: Optional[float] = None
    first_next_at: Optional[float] = None
    next_calls: list[float] = field(default_factory=list)
    events_queue: "queue.Queue[Optional[dict]]" = field(default_factory=queue.Queue)
    waiting: threading.Event = field(default_factory=threading.Event)
    exited_at: Optional[float] = None
    exit_code: Optional[int] = None
    killed: bool = False
    crashed: bool = False
    subscribed: bool = False
    output: list[str] = field(default_factory=list)


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    trace_header: str
    started_at: float = 0.0
    started_epoch: float = 0.0
    response_at: Optional[float] = None
    response_bytes: int = 0
    error: Optional[dict] = None
    runtime_done_at: Optional[float] = None
    runtime_done_epoch: Optional[float] = None
    status: str = "success"
    error_type: Optional[str] = None
    done: threading.Event = field(default_factory=threading.Event)
    extension_done_ms: dict[str, float] = field(default_factory=dict)
    duration_ms: float = 0.0
    billed_ms: int = 0
    max_memory_mb: int = 0
    cold_start: bool = False
    log_lines: int = 0
    emf_metrics: int = 0
    response: Optional[bytes] = None


class ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
