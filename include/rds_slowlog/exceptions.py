"""Errors the core raises on purpose: stdlib-derived, picklable (Airflow ships task exceptions between
processes), with structured fields so a caller can act on them without parsing the message."""
from __future__ import annotations

from typing import Any


class IndexingError(RuntimeError):
    """Indexing a chunk did not complete.

    :param message: names the chunk, the state seen and the limit hit.
    :param chunk: the chunk URL (or source name) being indexed.
    :param stats: the chunk's stats up to the failure (a plain dict, see :mod:`rds_slowlog.stats`).
    :param errors: up to a few samples ``{"_id", "status", "reason"}`` of the failures (plain values only).
    """

    def __init__(self, message: str, chunk: str | None = None, stats: dict[str, Any] | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.chunk = chunk
        self.stats = dict(stats or {})
        self.errors = list(errors or [])

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException pickles only ``args``; keep the structured fields too.
        return (type(self), (self.message, self.chunk, self.stats, self.errors))

    def __str__(self) -> str:
        return self.message


class FailureThresholdExceeded(IndexingError):
    """More documents were rejected permanently (dead-lettered) than the configured threshold allows."""


class RetriesExhausted(IndexingError):
    """Retriable failures (429/502/503/504, connection errors, timeouts) outlasted ``es_retry_count``.

    Re-running the chunk is safe: ids are deterministic, so already indexed documents are overwritten.
    """


class BulkRequestRejected(IndexingError):
    """The server refused a whole bulk request for a reason retrying cannot fix (401, 403, 413, …)."""


__all__ = ["IndexingError", "FailureThresholdExceeded", "RetriesExhausted", "BulkRequestRejected"]
