"""Run a child process and measure its wall time and its own peak RSS.

``ru_maxrss`` of a child on Linux includes the parent's resident size at ``fork`` (the high-water mark
survives ``exec``), so a big parent such as pytest would inflate the child's figure. ``VmHWM`` in
``/proc/<pid>/status`` belongs to the new address space only; it is sampled until the child exits (the
mark only grows, so the last sample misses at most the final ``interval``).
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any


@dataclass
class Measured:
    returncode: int
    seconds: float
    peak_rss_mb: float
    stderr: bytes = b""


def _hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def measure(cmd: Sequence[str], *, stdout: IO[Any] | int | None = subprocess.DEVNULL,
            capture_stderr: bool = False, cwd: str | None = None, interval: float = 0.02,
            timeout: float | None = None) -> Measured:
    """Run ``cmd``; return its exit code, wall seconds (``time.monotonic``) and peak RSS in MiB."""
    t0 = time.monotonic()
    proc = subprocess.Popen(list(cmd), stdout=stdout, cwd=cwd,
                            stderr=subprocess.PIPE if capture_stderr else subprocess.DEVNULL)
    peak = 0
    err_chunks: list[bytes] = []
    if capture_stderr:
        import threading

        assert proc.stderr is not None
        reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
        reader.start()
    while True:
        hwm = _hwm_kib(proc.pid)
        if hwm is not None and hwm > peak:
            peak = hwm
        try:
            proc.wait(timeout=interval)
            break
        except subprocess.TimeoutExpired:
            if timeout is not None and time.monotonic() - t0 > timeout:
                proc.kill()
                proc.wait()
                break
    seconds = time.monotonic() - t0
    if capture_stderr:
        reader.join()
    return Measured(proc.returncode, seconds, peak / 1024, b"".join(err_chunks))
