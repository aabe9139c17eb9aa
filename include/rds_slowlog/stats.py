"""The one small stats shape shared by the CLI, the Airflow tasks and the summary, plus memory probes."""
from __future__ import annotations

import resource
import sys
from typing import Final, TypedDict

STAT_KEYS: Final = ("entries", "bytes", "docs", "indexed", "failed", "dead_lettered", "retries",
                    "truncated", "quarantined", "seconds", "peak_rss_mb")


class Stats(TypedDict, total=False):
    entries: int
    bytes: int
    docs: int
    indexed: int
    failed: int
    dead_lettered: int
    retries: int
    truncated: int
    quarantined: int
    seconds: float
    peak_rss_mb: float


def empty() -> Stats:
    return Stats(**{k: 0 for k in STAT_KEYS})  # type: ignore[typeddict-item]


def add(a: Stats, b: Stats) -> Stats:
    """Sum two stats dicts; ``peak_rss_mb`` is a maximum, not a sum."""
    out = empty()
    for k in STAT_KEYS:
        if k == "peak_rss_mb":
            out[k] = max(a.get(k, 0.0), b.get(k, 0.0))  # type: ignore[literal-required]
        else:
            out[k] = a.get(k, 0) + b.get(k, 0)  # type: ignore[literal-required]
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
