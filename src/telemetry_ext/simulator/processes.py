"""Child processes of the sandbox: launching, output capture, freezing and memory readings."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Callable, Optional

LineHandler = Callable[[str], None]

# awslambdaric frame header: 4-byte type, 4-byte big-endian length, 8-byte timestamp (µs).
_FRAME_HEADER_BYTES = 16
_MAX_LINE_BYTES = 1024 * 1024


def capture_lines(stream, on_line: LineHandler, name: str) -> threading.Thread:  # type: ignore[no-untyped-def]
    """Read ``stream`` line by line on a thread and pass each decoded line to ``on_line``."""

    def run() -> None:
        try:
            for raw in iter(lambda: stream.readline(_MAX_LINE_BYTES), b""):
                on_line(raw.decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def capture_frames(read_fd: int, on_record: Callable[[object], None], name: str) -> threading.Thread:
    """Read awslambdaric's framed log records from ``read_fd``; JSON frames become objects."""
    import json

    def run() -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while True:
                header = _read_exact(pipe, _FRAME_HEADER_BYTES)
                if header is None:
                    return
                frame_type = int.from_bytes(header[0:4], "big")
                length = int.from_bytes(header[4:8], "big")
                payload = _read_exact(pipe, length)
                if payload is None:
                    return
                text = payload.decode("utf-8", "replace")
                # The low bit tells text (1) from JSON (0); the bits above it carry the level.
                if frame_type >> 16 == 0xA55A and frame_type & 1 == 0:
                    try:
                        on_record(json.loads(text))
                        continue
                    except ValueError:
                        pass
                on_record(text)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def _read_exact(pipe, count: int) -> Optional[bytes]:  # type: ignore[no-untyped-def]
    chunks = []
    remaining = count
    while remaining:
        chunk = pipe.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def unread_bytes(fds: list[int]) -> int:
    """Return how many bytes wait unread in the pipes ``fds`` (FIONREAD); closed ones count 0."""
    import array
    import fcntl
    import termios

    total = 0
    for fd in fds:
        count = array.array("i", [0])
        try:
            fcntl.ioctl(fd, termios.FIONREAD, count, True)
        except OSError:
            continue
        total += count[0]
    return total


def signal_process(process: subprocess.Popen, signal_number: int) -> None:
    if process.poll() is None:
        try:
            process.send_signal(signal_number)
        except ProcessLookupError:
            pass


def freeze(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        signal_process(process, signal.SIGSTOP)


def thaw(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        signal_process(process, signal.SIGCONT)


def peak_memory_mb(pids: list[int]) -> int:
    """Sum of the peak resident set (VmHWM) of ``pids``, in MB, as Lambda reports the sandbox's."""
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        total_kb += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return max(1, round(total_kb / 1024))


def resident_memory_kb(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def wait_for_exit(process: subprocess.Popen, deadline: float) -> bool:
    """Wait until ``process`` exits or ``deadline`` (``time.monotonic()``) passes."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return process.poll() is not None
    try:
        process.wait(timeout=remaining)
        return True
    except subprocess.TimeoutExpired:
        return False
