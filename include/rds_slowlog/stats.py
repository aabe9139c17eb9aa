"""The one small stats shape shared by the CLI, the Airflow tasks and the summary, plus memory probes."""
from __future__ import annotations

import resource
import sys
from typing import Final, TypedDict

STAT_KEYS: Final = ("entries", "bytes", "docs", "indexed", "created", "updated", "failed", "dead_lettered",
                    "not_attempted", "retries", "truncated", "incomplete", "quarantined", "seconds", "peak_rss_mb")


class Stats(TypedDict, total=False):
    """Every document is accounted for: ``docs == indexed + failed + dead_lettered + not_attempted`` and
    ``indexed == created + updated``; at staging, ``entries == docs + incomplete``.

    ``entries``: entries of the window read; ``incomplete``: of them, left out because the file was still
    being written (the next run picks them up whole); ``docs``: documents staged; ``indexed``: accepted by
    the server (``created`` new, ``updated`` overwrote one with the same ``_id``: a rerun, or a collision);
    ``failed``: retriable failures left after the last retry; ``dead_lettered``: permanently rejected;
    ``not_attempted``: never sent because the run stopped first; ``retries``: documents resent;
    ``truncated``/``quarantined``: entries cut short, input lines that belong to no entry.
    """

    entries: int
    bytes: int
    docs: int
    indexed: int
    created: int
    updated: int
    failed: int
    dead_lettered: int
    not_attempted: int
    retries: int
    truncated: int
    incomplete: int
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


def unaccounted(s: Stats) -> int:
    """Documents the counters do not explain (0 when the books balance)."""
    return s.get("docs", 0) - s.get("indexed", 0) - s.get("failed", 0) - s.get("dead_lettered", 0) - s.get(
        "not_attempted", 0)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def rss_mb() -> float:
    """Resident set size of this process now, in MiB. At a task's start it is mostly pages shared with the
    process it was forked from (an Airflow worker): what ``peak_rss_mb`` includes before the task does anything."""
    import psutil

    return psutil.Process().memory_info().rss / (1024 * 1024)
