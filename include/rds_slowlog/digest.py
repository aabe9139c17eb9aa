"""Per-class aggregation in bounded memory, reported in pt-query-digest's JSON shape or as text.

Each class keeps, per numeric attribute, count/sum/min/max/sum of squares plus a sample for percentiles:
the exact values while there are fewer than ``EXACT_VALUES`` of them, then pt-style log-scale buckets
(base 1.05, so a percentile is within 5 % of the true value). Memory is therefore
O(classes × attributes), independent of the number of entries.
"""
from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable
from operator import mul
from datetime import datetime, timezone
from typing import Any, Final

from rds_slowlog.entry import Entry, in_window
from rds_slowlog.fingerprint.classify import QueryClass

EXACT_VALUES: Final = 4096
_LOG_BASE: Final = math.log(1.05)
_INV_LOG_BASE: Final = 1.0 / _LOG_BASE
_NONE: Final = type(None)
_NUMERIC: Final = frozenset({int, float})
_NUMERIC_OR_NONE: Final = frozenset({int, float, _NONE})
#: Entries buffered across classes before they are folded in class by class (bounds memory, not results).
BATCH: Final = 4096
#: Attributes that describe the entry rather than measure it; never aggregated as metrics.
_NOT_METRICS: Final = frozenset({"Query_time", "Thread_id", "Id", "Last_errno", "Errno", "Killed", "Schema", "QC_hit",
                                 "Start", "End", "explain", "Log_slow_rate_type", "Log_slow_rate_limit",
                                 "client_port", "session_line", "query_step", "query_name", "log_level",
                                 "parameters", "sql_state", "application_name", "InnoDB_trx_id",
                                 "session_id", "pg_queryid", "detail", "context", "insert_id",
                                 "last_insert_id", "timestamp"})
#: Time metrics are printed with 6 decimals, like pt-query-digest.
_TIME_METRICS: Final = frozenset({"Query_time", "Lock_time", "InnoDB_IO_r_wait", "InnoDB_rec_lock_wait",
                                  "InnoDB_queue_wait"})


class Metric:
    """Running statistics of one numeric attribute.

    Values are appended to a C ``array`` (one cheap call per entry); every ``EXACT_VALUES`` values the batch is
    folded into count/sum/min/max/sum-of-squares and log-scale bucket counts with C-level builtins
    (``sum``, ``min``, ``map(math.log, …)``, ``Counter``), so the per-entry Python work stays one append.
    Percentiles are exact while no batch has been folded yet (fewer than ``EXACT_VALUES`` values).
    """

    __slots__ = ("_count", "_total", "_sumsq", "_min", "_max", "pending", "buckets", "zeros")

    def __init__(self) -> None:
        self._count = 0
        self._total = 0.0
        self._sumsq = 0.0
        self._min = math.inf
        self._max = -math.inf
        self.pending = array("d")
        self.buckets: Counter[int] | None = None
        self.zeros = 0

    def add(self, v: float) -> None:
        self.pending.append(v)
        if len(self.pending) >= EXACT_VALUES:
            self.fold()

    def extend(self, values: list[float]) -> None:
        self.pending.extend(values)
        if len(self.pending) >= EXACT_VALUES:
            self.fold()

    def fold(self) -> None:
        """Fold pending values into the running figures and the buckets."""
        p = self.pending
        if not p:
            return
        self._count += len(p)
        self._total += sum(p)
        self._sumsq += sum(map(mul, p, p))
        lo, hi = min(p), max(p)
        if lo < self._min:
            self._min = lo
        if hi > self._max:
            self._max = hi
        if self.buckets is None:
            self.buckets = Counter()
        positive = [v for v in p if v > 0] if lo <= 0 else p
        self.zeros += len(p) - len(positive)
        self.buckets.update(map(math.floor, map(_INV_LOG_BASE.__mul__, map(math.log, positive))))
        self.pending = array("d")

    def merge(self, other: Metric) -> None:
        """Add another metric's values (used to build the global line from the classes)."""
        if other.buckets is None and self.buckets is None and len(self.pending) + len(other.pending) < EXACT_VALUES:
            self.pending.extend(other.pending)
            return
        other_pending = other.pending
        self.pending.extend(other_pending)
        self.fold()
        if other.buckets is not None:
            if self.buckets is None:
                self.buckets = Counter()
            self._count += other._count
            self._total += other._total
            self._sumsq += other._sumsq
            self._min = min(self._min, other._min)
            self._max = max(self._max, other._max)
            self.zeros += other.zeros
            self.buckets.update(other.buckets)

    def _snapshot(self) -> tuple[int, float, float, float, float]:
        p = self.pending
        count = self._count + len(p)
        if not p:
            return count, self._total, self._sumsq, self._min, self._max
        return (count, self._total + sum(p), self._sumsq + sum(map(mul, p, p)),
                min(self._min, min(p)), max(self._max, max(p)))

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile (the value below which ``p`` of the entries fall, like pt)."""
        if self.buckets is None:
            if not self.pending:
                return 0.0
            values = sorted(self.pending)
            return values[max(1, math.ceil(p * len(values))) - 1]
        self.fold()
        rank = max(1, math.ceil(p * self._count))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return min(max(math.exp(b * _LOG_BASE), self._min), self._max)
        return self._max

    @property
    def count(self) -> int:
        return self._count + len(self.pending)

    @property
    def total(self) -> float:
        return self._snapshot()[1]

    @property
    def min(self) -> float:
        return self._snapshot()[3]

    @property
    def max(self) -> float:
        return self._snapshot()[4]

    @property
    def avg(self) -> float:
        count, total = self._snapshot()[:2]
        return total / count if count else 0.0

    @property
    def stddev(self) -> float:
        count, total, sumsq = self._snapshot()[:3]
        if count < 2:
            return 0.0
        var = sumsq / count - (total / count) ** 2
        return math.sqrt(var) if var > 0 else 0.0

    def as_dict(self, decimals: int | None) -> dict[str, Any]:
        fmt = (lambda x: f"{x:.{decimals}f}") if decimals is not None else (lambda x: f"{x:.0f}")
        count, total, _, lo, hi = self._snapshot()
        return {
            "sum": fmt(total), "min": fmt(lo), "max": fmt(hi), "avg": fmt(self.avg),
            "median": fmt(self.percentile(0.5)), "pct_95": fmt(self.percentile(0.95)),
            "stddev": fmt(self.stddev), "cnt": str(count),
        }


class ClassDigest:
    """Everything the report says about one query class."""

    __slots__ = ("qc", "count", "metrics", "flags", "first_seen", "last_seen", "example", "example_time",
                 "dbs", "users", "hosts", "truncated", "table_sets", "_last_qc")

    def __init__(self, qc: QueryClass) -> None:
        self.qc = qc
        self.count = 0
        self.metrics: dict[str, Metric] = {}
        self.flags: dict[str, int] = {}      # boolean attributes: how many entries said Yes
        self.first_seen: float | None = None
        self.last_seen: float | None = None
        self.example: Entry | None = None    # the slowest entry, as pt-query-digest shows
        self.example_time = -1.0
        self.dbs: Counter[str] = Counter()
        self.users: Counter[str] = Counter()
        self.hosts: Counter[str] = Counter()
        self.truncated = 0
        # the tables of every text of the class (texts of one class may name different tables: sbtest1,
        # sbtest2 …); reported sorted, so the report does not depend on which text came first
        self.table_sets: set[tuple[str, ...]] = {qc.tables}
        self._last_qc = qc

    def note(self, qc: QueryClass) -> None:
        """Remember the tables of one more text's class object (cheap when it is the same object)."""
        if qc is not self._last_qc:
            self._last_qc = qc
            self.table_sets.add(qc.tables)

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table the class's texts name, sorted (at most 20)."""
        return tuple(sorted({t for ts in self.table_sets for t in ts}))[:20]

    def add(self, e: Entry) -> None:
        self.add_batch([e])

    def add_batch(self, entries: list[Entry]) -> None:
        """Fold a batch of this class's entries in, column by column.

        The hot path of ``digest``: per attribute one list comprehension over the batch and one C-array
        extend, instead of Python-level work per entry and attribute.
        """
        self.count += len(entries)
        metrics = self.metrics
        durations = [e.duration or 0.0 for e in entries]
        qt = metrics.get("Query_time")
        if qt is None:
            qt = metrics["Query_time"] = Metric()
        qt.extend(durations)
        slowest = max(durations)
        if slowest > self.example_time:
            self.example, self.example_time = entries[durations.index(slowest)], slowest
        times = [t for t in [e.end_time for e in entries] if t is not None]
        if times:
            lo, hi = min(times), max(times)
            if self.first_seen is None or lo < self.first_seen:
                self.first_seen = lo
            if self.last_seen is None or hi > self.last_seen:
                self.last_seen = hi
        attrs = [e.attrs for e in entries]
        for key in set().union(*attrs):
            column = [a.get(key) for a in attrs]
            kinds = set(map(type, column))
            if bool in kinds:
                self.flags[key] = self.flags.get(key, 0) + sum(1 for v in column if v is True)
            if key in _NOT_METRICS:
                continue
            if kinds <= _NUMERIC_OR_NONE:
                values = column if _NONE not in kinds else [v for v in column if v is not None]
            elif kinds & _NUMERIC:
                values = [v for v in column if type(v) is int or type(v) is float]
            else:
                continue
            m = metrics.get(key)
            if m is None:
                m = metrics[key] = Metric()
            m.extend(values)
        self.dbs.update([e.db for e in entries if e.db])
        self.users.update([e.user for e in entries if e.user])
        self.hosts.update([h for h in [e.host or e.ip for e in entries] if h])
        self.truncated += sum(1 for e in entries if e.truncated)

    def merge_into(self, total: ClassDigest) -> None:
        """Add this class's figures to ``total`` (the global line is a merge, not a second pass)."""
        total.count += self.count
        for name, m in self.metrics.items():
            t = total.metrics.get(name)
            if t is None:
                t = total.metrics[name] = Metric()
            t.merge(m)
        for name, yes in self.flags.items():
            total.flags[name] = total.flags.get(name, 0) + yes
        for t in (self.first_seen, self.last_seen):
            if t is not None:
                if total.first_seen is None or t < total.first_seen:
                    total.first_seen = t
                if total.last_seen is None or t > total.last_seen:
                    total.last_seen = t
        if self.example_time > total.example_time:
            total.example, total.example_time = self.example, self.example_time
        for mine, theirs in ((self.dbs, total.dbs), (self.users, total.users), (self.hosts, total.hosts)):
            for k, v in mine.items():
                theirs[k] = theirs.get(k, 0) + v
        total.truncated += self.truncated

    def _metric(self, name: str) -> Metric:
        m = self.metrics.get(name)
        if m is None:
            m = self.metrics[name] = Metric()
        return m

    @property
    def query_time(self) -> Metric:
        return self._metric("Query_time")


def _ts(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _decimals(name: str) -> int | None:
    if name.endswith("_ms"):        # PostgreSQL parse/bind phases, in milliseconds
        return 3
    return 6 if name in _TIME_METRICS or name.endswith("_time") or name.endswith("_wait") else None


class Digest:
    """Aggregates entries by query class; ``since``/``until`` filter on the entry's write time."""

    def __init__(self, since: float | None = None, until: float | None = None) -> None:
        self.since = since
        self.until = until
        self.classes: dict[str, ClassDigest] = {}
        self._total: ClassDigest | None = None
        self.files: list[dict[str, Any]] = []
        self.filtered_out = 0

    def add(self, e: Entry, qc: QueryClass) -> None:
        self.add_all(((e, qc),))

    def add_all(self, pairs: Iterable[tuple[Entry, QueryClass]]) -> None:
        """Buffer entries by class and fold them in batches (at most ``BATCH`` entries held at once)."""
        since, until = self.since, self.until
        windowed = since is not None or until is not None
        classes = self.classes
        buffered: dict[str, list[Entry]] = {}
        held = 0
        self._total = None
        for e, qc in pairs:
            if windowed and not in_window(e.end_time, since, until):
                self.filtered_out += 1
                continue
            qid = qc.query_id
            batch = buffered.get(qid)
            if batch is None:
                cd = classes.get(qid)
                if cd is None:
                    cd = classes[qid] = ClassDigest(qc)
                else:
                    cd.note(qc)
                batch = buffered[qid] = []
            elif qc.tables is not classes[qid].qc.tables:
                classes[qid].note(qc)
            batch.append(e)
            held += 1
            if held >= BATCH:
                for key, entries in buffered.items():
                    classes[key].add_batch(entries)
                buffered.clear()
                held = 0
        for key, entries in buffered.items():
            classes[key].add_batch(entries)

    @property
    def total(self) -> ClassDigest:
        """The global line: all classes merged (computed on demand, cached until the next ``add``)."""
        if self._total is None:
            total = ClassDigest(QueryClass("", "", "", "", ()))
            for cd in self.classes.values():
                cd.merge_into(total)
            self._total = total
        return self._total

    def ranked(self, limit: int | None = None) -> list[ClassDigest]:
        """Classes by total Query_time, highest first (pt-query-digest's default ``--order-by``)."""
        ranked = sorted(self.classes.values(), key=lambda c: (-c.query_time.total, -c.count, c.qc.query_id))
        return ranked if limit is None else ranked[:limit]

    def as_pt_json(self, limit: int | None = None) -> dict[str, Any]:
        """pt-query-digest's ``--output json`` shape (numbers as strings, as pt prints them)."""
        grand = self.total.query_time.total or 0.0
        classes = []
        for cd in self.ranked(limit):
            metrics: dict[str, Any] = {}
            for name, m in sorted(cd.metrics.items()):
                d = m.as_dict(_decimals(name))
                del d["cnt"]
                if name == "Query_time":
                    d["pct"] = f"{(m.total / grand if grand else 0.0):.6f}"
                metrics[name] = d
            for name, yes in sorted(cd.flags.items()):
                metrics[name] = {"yes": str(yes)}
            for name, values in (("db", cd.dbs), ("user", cd.users), ("host", cd.hosts)):
                if values:
                    metrics[name] = {"value": max(values, key=values.__getitem__)}
            ex = cd.example
            example: dict[str, Any] = {}
            if ex is not None:
                example = {"query": ex.query, "Query_time": f"{ex.duration or 0.0:.6f}", "ts": _ts(ex.end_time)}
            classes.append({
                "checksum": cd.qc.query_id,
                "fingerprint": cd.qc.fingerprint,
                "distillate": " ".join([cd.qc.statement_type, *cd.tables]),
                "attribute": "fingerprint",
                "query_count": cd.count,
                "ts_min": _ts(cd.first_seen),
                "ts_max": _ts(cd.last_seen),
                "metrics": metrics,
                "example": example,
                "tables": list(cd.tables),
                "truncated_count": cd.truncated,
            })
        gmetrics: dict[str, Any] = {}
        for name, m in sorted(self.total.metrics.items()):
            gmetrics[name] = m.as_dict(_decimals(name))
        for name, yes in sorted(self.total.flags.items()):
            gmetrics[name] = {"cnt": str(yes)}
        return {
            "global": {
                "query_count": self.total.count,
                "unique_query_count": len(self.classes),
                "metrics": gmetrics,
                "files": self.files,
                "ts_min": _ts(self.total.first_seen),
                "ts_max": _ts(self.total.last_seen),
            },
            "classes": classes,
        }

    def as_text(self, limit: int | None = 20) -> str:
        """A human report: a profile table, then one block per class (like pt-query-digest's)."""
        out: list[str] = []
        g = self.total
        grand = g.query_time.total
        out.append(f"# {g.count} queries, {len(self.classes)} unique, "
                   f"total time {grand:.6f}s, from {_ts(g.first_seen)} to {_ts(g.last_seen)}")
        if self.filtered_out:
            out.append(f"# {self.filtered_out} entries outside --since/--until were skipped")
        out.append("")
        out.append("# Profile")
        out.append(f"# {'Rank':>4} {'Query ID':<34} {'Response time':>20} {'Calls':>7} {'R/Call':>9}  Item")
        ranked = self.ranked(limit)
        for i, cd in enumerate(ranked, 1):
            qt = cd.query_time
            pct = 100.0 * qt.total / grand if grand else 0.0
            item = " ".join([cd.qc.statement_type, *cd.tables[:3]])
            out.append(f"# {i:>4} 0x{cd.qc.query_id:<32} {qt.total:>12.4f} {pct:5.1f}% {cd.count:>7} "
                       f"{qt.avg:>9.4f}  {item[:60]}")
        for i, cd in enumerate(ranked, 1):
            out.append("")
            engine = f", {cd.example.engine}" if cd.example is not None else ""
            out.append(f"# Query {i}: ID 0x{cd.qc.query_id} ({cd.qc.statement_type}{engine})")
            out.append(f"# Count: {cd.count}   first seen {_ts(cd.first_seen)}   last seen {_ts(cd.last_seen)}"
                       + (f"   truncated {cd.truncated}" if cd.truncated else ""))
            out.append(f"# {'Attribute':<16} {'total':>14} {'min':>12} {'max':>12} {'avg':>12} {'median':>12} {'95%':>12}")
            for name in ("Query_time", "Lock_time", "Rows_sent", "Rows_examined", "Rows_affected"):
                m = cd.metrics.get(name)
                if m is None or m.count == 0:
                    continue
                fmt = "{:>14.6f} {:>12.6f} {:>12.6f} {:>12.6f} {:>12.6f} {:>12.6f}" if _decimals(name) \
                    else "{:>14.0f} {:>12.0f} {:>12.0f} {:>12.1f} {:>12.0f} {:>12.0f}"
                out.append(f"# {name:<16} " + fmt.format(m.total, m.min, m.max, m.avg,
                                                          m.percentile(0.5), m.percentile(0.95)))
            for label, values in (("Databases", cd.dbs), ("Users", cd.users), ("Hosts", cd.hosts)):
                if values:
                    top = sorted(values.items(), key=lambda kv: -kv[1])[:3]
                    out.append(f"# {label:<16} " + ", ".join(f"{k} ({v})" for k, v in top))
            if cd.tables:
                out.append(f"# Tables           {', '.join(cd.tables)}")
            out.append(f"# Fingerprint      {cd.qc.fingerprint[:300]}")
            if cd.example is not None:
                q = cd.example.query
                out.append(q if len(q) <= 2000 else q[:2000] + " …")
        return "\n".join(out) + "\n"
