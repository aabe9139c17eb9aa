"""Per-class history of a window (pt-query-digest's ``--history`` idea, kept in the search engine) and the run
document that records what a DAG run did for one instance-window.

The stage step folds every staged entry into a :class:`WindowHistory` (a few additions per entry, no
per-attribute work), writes it beside its chunks as ``history.json``, and the summary turns it into one
document per (instance, query class, hour) with a deterministic ``_id``: a rerun of the window overwrites the
same documents, so a dashboard of a class's hourly count and Query_time never double counts.

Index names: ``<prefix>-history-<engine>-YYYY.MM`` (monthly; one document per class and hour is small) and
``<prefix>-runs-YYYY.MM``; both match the ``<prefix>-*`` index template.
"""
from __future__ import annotations

import hashlib
import math
import time
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from rds_slowlog.documents import iso_time
from rds_slowlog.entry import Entry
from rds_slowlog.fingerprint.classify import QueryClass

#: Classes kept in one window's history (the rest are added up in one ``other`` line: memory stays bounded).
MAX_CLASSES = 20000


class ClassHistory:
    """One query class in one window: count, Query_time sum/min/max/p95, rows, first and last write time."""

    __slots__ = ("query_id", "fingerprint", "statement_type", "tables", "count", "qt_sum", "qt_min", "qt_max",
                 "times", "rows_examined", "rows_sent", "first_seen", "last_seen")

    def __init__(self, qc: QueryClass) -> None:
        self.query_id = qc.query_id
        self.fingerprint = qc.fingerprint
        self.statement_type = qc.statement_type
        self.tables: set[str] = set(qc.tables)
        self.count = 0
        self.qt_sum = 0.0
        self.qt_min = math.inf
        self.qt_max = 0.0
        self.times = array("d")         # every Query_time, for an exact p95 (8 bytes per entry)
        self.rows_examined = 0
        self.rows_sent = 0
        self.first_seen = math.inf
        self.last_seen = -math.inf

    def add(self, e: Entry) -> None:
        self.count += 1
        d = e.duration
        if d is not None:
            self.qt_sum += d
            if d < self.qt_min:
                self.qt_min = d
            if d > self.qt_max:
                self.qt_max = d
            self.times.append(d)
        a = e.attrs
        v = a.get("Rows_examined")
        if v.__class__ is int:
            self.rows_examined += v  # type: ignore[operator]
        v = a.get("Rows_sent")
        if v.__class__ is int:
            self.rows_sent += v  # type: ignore[operator]
        t = e.end_time
        if t is not None:
            if t < self.first_seen:
                self.first_seen = t
            if t > self.last_seen:
                self.last_seen = t

    def p95(self) -> float | None:
        if not self.times:
            return None
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "query_id": self.query_id, "fingerprint": self.fingerprint, "statement_type": self.statement_type,
            "tables": sorted(self.tables), "count": self.count, "query_time_sum": round(self.qt_sum, 6),
            "query_time_min": self.qt_min if self.times else None,
            "query_time_max": self.qt_max if self.times else None, "query_time_p95": self.p95(),
            "rows_examined": self.rows_examined, "rows_sent": self.rows_sent,
            "first_seen": self.first_seen if self.count and self.first_seen != math.inf else None,
            "last_seen": self.last_seen if self.count and self.last_seen != -math.inf else None,
        }


class WindowHistory:
    """The classes of one instance-window, fed entry by entry by the stage step."""

    def __init__(self) -> None:
        self.classes: dict[str, ClassHistory] = {}
        self._last: tuple[QueryClass, ClassHistory] | None = None

    def add(self, e: Entry, qc: QueryClass) -> None:
        last = self._last
        if last is not None and last[0] is qc:
            h = last[1]
        else:
            h = self.classes.get(qc.query_id)
            if h is None:
                if len(self.classes) >= MAX_CLASSES:
                    h = self.classes.get("other")
                    if h is None:
                        h = self.classes["other"] = ClassHistory(QueryClass("other", "other", "other", "OTHER", ()))
                else:
                    h = self.classes[qc.query_id] = ClassHistory(qc)
            elif qc.tables:
                h.tables.update(qc.tables)
            self._last = (qc, h)
        h.add(e)

    def as_json(self) -> list[dict[str, Any]]:
        """Classes by total Query_time, highest first (what pt-query-digest ranks by)."""
        rows = [h.as_dict() for h in self.classes.values()]
        rows.sort(key=lambda r: (-r["query_time_sum"], -r["count"], r["query_id"]))
        return rows


def _id(*parts: object) -> str:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def _month(t: float) -> str:
    return time.strftime("%Y.%m", time.gmtime(t))


def history_documents(classes: Iterable[Mapping[str, Any]], *, instance: str, engine: str, window_start: float,
                      window_end: float, index_prefix: str) -> list[dict[str, Any]]:
    """Bulk-ready documents (``_id``, ``_index``) of one instance-window's classes, one per class."""
    index = f"{index_prefix}-history-{engine}-{_month(window_start)}"
    docs = []
    for c in classes:
        docs.append({
            "@timestamp": iso_time(window_start),
            "event": {"kind": "metric", "dataset": "rds_slowlog.history", "start": iso_time(window_start),
                      "end": iso_time(window_end)},
            "rds": {"instance": instance, "engine": engine},
            "slowlog": {"query_id": c["query_id"], "fingerprint": c["fingerprint"],
                        "statement_type": c["statement_type"], "tables": list(c["tables"])},
            "history": {
                "count": c["count"],
                "query_time": {"sum": float(c["query_time_sum"]), "min": c["query_time_min"],
                               "max": c["query_time_max"], "p95": c["query_time_p95"]},
                "rows_examined": c["rows_examined"], "rows_sent": c["rows_sent"],
                "first_seen": iso_time(c["first_seen"]) if c["first_seen"] is not None else None,
                "last_seen": iso_time(c["last_seen"]) if c["last_seen"] is not None else None,
            },
            "_id": _id("history", instance, engine, c["query_id"], window_start),
            "_index": index,
        })
    return docs


def run_document(*, instance: str, window_start: float, window_end: float, index_prefix: str,
                 stats: Mapping[str, Any], dag_id: str, run_id: str, files: list[str],
                 sources: list[str], classes: int, state: str = "success") -> dict[str, Any]:
    """What one DAG run did for one instance-window (overwritten by a rerun of the same window)."""
    return {
        "@timestamp": iso_time(window_start),
        "event": {"kind": "event", "dataset": "rds_slowlog.run", "start": iso_time(window_start),
                  "end": iso_time(window_end), "outcome": state},
        "rds": {"instance": instance},
        "run": {"dag_id": dag_id, "run_id": run_id, "files": files, "sources": sources, "classes": classes,
                "stats": dict(stats), "finished": iso_time(time.time())},
        "_id": _id("run", dag_id, instance, window_start),
        "_index": f"{index_prefix}-runs-{_month(window_start)}",
    }


__all__ = ["ClassHistory", "WindowHistory", "history_documents", "run_document"]
