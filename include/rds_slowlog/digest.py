"""Per-class aggregation in bounded memory, reported in pt-query-digest's JSON shape or as text.

Each class keeps, per numeric attribute, count/sum/min/max/sum of squares plus a sample for percentiles:
the exact values while there are at most ``EXACT_VALUES`` of them, then pt-style log-scale buckets
(base 1.05, so a percentile is within 5 % of the true value). Memory is therefore
O(classes × attributes), independent of the number of entries.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Final

from rds_slowlog.entry import Entry
from rds_slowlog.fingerprint.classify import QueryClass

EXACT_VALUES: Final = 512
_LOG_BASE: Final = math.log(1.05)
#: Attributes that describe the entry rather than measure it; never aggregated as metrics.
_NOT_METRICS: Final = frozenset({"Thread_id", "Id", "Last_errno", "Errno", "Killed", "Schema", "QC_hit",
                                 "Start", "End", "explain", "Log_slow_rate_type", "Log_slow_rate_limit",
                                 "client_port", "session_line", "query_step", "query_name", "log_level",
                                 "parameters", "sql_state", "application_name", "InnoDB_trx_id"})
#: Time metrics are printed with 6 decimals, like pt-query-digest.
_TIME_METRICS: Final = frozenset({"Query_time", "Lock_time", "InnoDB_IO_r_wait", "InnoDB_rec_lock_wait",
                                  "InnoDB_queue_wait", "parse_time", "bind_time"})


class Metric:
    """Running statistics of one numeric attribute."""

    __slots__ = ("count", "total", "sumsq", "min", "max", "values", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.sumsq = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.values: list[float] | None = []
        self.buckets: dict[int, int] | None = None

    def add(self, v: float) -> None:
        self.count += 1
        self.total += v
        self.sumsq += v * v
        if v < self.min:
            self.min = v
        if v > self.max:
            self.max = v
        values = self.values
        if values is not None:
            values.append(v)
            if len(values) > EXACT_VALUES:
                self.buckets = {}
                for x in values:
                    self._bucket_add(x)
                self.values = None
        else:
            self._bucket_add(v)

    def _bucket_add(self, v: float) -> None:
        b = -(1 << 30) if v <= 0 else math.floor(math.log(v) / _LOG_BASE)
        buckets = self.buckets
        assert buckets is not None
        buckets[b] = buckets.get(b, 0) + 1

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile (the value below which ``p`` of the entries fall, like pt)."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(p * self.count))
        if self.values is not None:
            return sorted(self.values)[rank - 1]
        assert self.buckets is not None
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                if b == -(1 << 30):
                    return 0.0
                return min(max(math.exp(b * _LOG_BASE), self.min), self.max)
        return self.max

    @property
    def avg(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def stddev(self) -> float:
        if self.count < 2:
            return 0.0
        var = self.sumsq / self.count - self.avg ** 2
        return math.sqrt(var) if var > 0 else 0.0

    def as_dict(self, decimals: int | None) -> dict[str, Any]:
        fmt = (lambda x: f"{x:.{decimals}f}") if decimals is not None else (lambda x: f"{x:.0f}")
        return {
            "sum": fmt(self.total), "min": fmt(self.min), "max": fmt(self.max), "avg": fmt(self.avg),
            "median": fmt(self.percentile(0.5)), "pct_95": fmt(self.percentile(0.95)),
            "stddev": fmt(self.stddev), "cnt": str(self.count),
        }


class ClassDigest:
    """Everything the report says about one query class."""

    __slots__ = ("qc", "count", "metrics", "flags", "first_seen", "last_seen", "example", "example_time",
                 "dbs", "users", "hosts", "truncated")

    def __init__(self, qc: QueryClass) -> None:
        self.qc = qc
        self.count = 0
        self.metrics: dict[str, Metric] = {}
        self.flags: dict[str, int] = {}      # boolean attributes: how many entries said Yes
        self.first_seen: float | None = None
        self.last_seen: float | None = None
        self.example: Entry | None = None    # the slowest entry, as pt-query-digest shows
        self.example_time = -1.0
        self.dbs: dict[str, int] = {}
        self.users: dict[str, int] = {}
        self.hosts: dict[str, int] = {}
        self.truncated = 0

    def add(self, e: Entry) -> None:
        self.count += 1
        duration = e.duration if e.duration is not None else 0.0
        self._metric("Query_time").add(duration)
        for key, value in e.attrs.items():
            if key in _NOT_METRICS or key == "Query_time":
                continue
            if value is True or value is False:
                if value:
                    self.flags[key] = self.flags.get(key, 0) + 1
                else:
                    self.flags.setdefault(key, 0)
            elif isinstance(value, (int, float)):
                self._metric(key).add(value)
        t = e.end_time
        if t is not None:
            if self.first_seen is None or t < self.first_seen:
                self.first_seen = t
            if self.last_seen is None or t > self.last_seen:
                self.last_seen = t
        if duration > self.example_time:
            self.example, self.example_time = e, duration
        if e.db:
            self.dbs[e.db] = self.dbs.get(e.db, 0) + 1
        if e.user:
            self.users[e.user] = self.users.get(e.user, 0) + 1
        if e.host or e.ip:
            h = e.host or e.ip or ""
            self.hosts[h] = self.hosts.get(h, 0) + 1
        if e.truncated:
            self.truncated += 1

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
    return 6 if name in _TIME_METRICS or name.endswith("_time") or name.endswith("_wait") else None


class Digest:
    """Aggregates entries by query class; ``since``/``until`` filter on the entry's write time."""

    def __init__(self, since: float | None = None, until: float | None = None) -> None:
        self.since = since
        self.until = until
        self.classes: dict[str, ClassDigest] = {}
        self.total = ClassDigest(QueryClass("", "", "", "", ()))
        self.files: list[dict[str, Any]] = []
        self.filtered_out = 0

    def add(self, e: Entry, qc: QueryClass) -> None:
        t = e.end_time
        if (self.since is not None and (t is None or t < self.since)) or (
                self.until is not None and (t is None or t >= self.until)):
            self.filtered_out += 1
            return
        cd = self.classes.get(qc.query_id)
        if cd is None:
            cd = self.classes[qc.query_id] = ClassDigest(qc)
        cd.add(e)
        self.total.add(e)

    def add_all(self, pairs: Iterable[tuple[Entry, QueryClass]]) -> None:
        for e, qc in pairs:
            self.add(e, qc)

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
                "distillate": " ".join([cd.qc.statement_type, *cd.qc.tables]),
                "attribute": "fingerprint",
                "query_count": cd.count,
                "ts_min": _ts(cd.first_seen),
                "ts_max": _ts(cd.last_seen),
                "metrics": metrics,
                "example": example,
                "tables": list(cd.qc.tables),
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
            item = " ".join([cd.qc.statement_type, *cd.qc.tables[:3]])
            out.append(f"# {i:>4} 0x{cd.qc.query_id:<32} {qt.total:>12.4f} {pct:5.1f}% {cd.count:>7} "
                       f"{qt.avg:>9.4f}  {item[:60]}")
        for i, cd in enumerate(ranked, 1):
            out.append("")
            out.append(f"# Query {i}: ID 0x{cd.qc.query_id} ({cd.qc.statement_type})")
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
            if cd.qc.tables:
                out.append(f"# Tables           {', '.join(cd.qc.tables)}")
            out.append(f"# Fingerprint      {cd.qc.fingerprint[:300]}")
            if cd.example is not None:
                q = cd.example.query
                out.append(q if len(q) <= 2000 else q[:2000] + " …")
        return "\n".join(out) + "\n"
