"""Entry → Elasticsearch document (ECS names shared with Elastic's MySQL/PostgreSQL integrations).

Field names follow Filebeat's ``mysql.slowlog`` / ``postgresql.log`` so existing dashboards work; ours live
under ``slowlog.*`` (fingerprint, query id, statement type, tables, provenance, flags) and ``rds.*``.

Document ids are derived from content, never from file names: RDS renames ``mysql-slowquery.log`` on
rotation and CloudWatch carries no file at all, so (file, offset) is not a stable identity. The id is a
BLAKE2b-128 of (instance, engine, write time, thread/pid, duration, raw query bytes) plus, for the n-th
repeat of that exact tuple, its occurrence number n. Two identical pings of one thread within one second
are two entries, so they must be two documents; the counter is kept per tuple (the write time is part of
the tuple), not reset when the write time changes, because MariaDB's ``# Time:`` goes back and forth
between adjacent seconds under concurrency.

Why this gives the same ids on every read of a window, however its files are grouped: identical tuples
share a write time, hence a window, and the n-th of them gets n whatever else is around it — so one
builder per instance-window (the window's files read in order, see
:func:`rds_slowlog.stage.stage_window`) always numbers them alike, while one builder per file would
not (a second's pings may straddle an hourly rotation). Memory stays bounded: tuples whose write time is
more than :data:`OCCURRENCE_HORIZON` seconds behind the newest one seen are forgotten (identical entries share
a write second; MariaDB's ``# Time:`` only goes back and forth by one); an entry that
arrives that late (a clock that jumped back) is numbered in a separate ``late`` series (and one later still
in another), so it can never take the id of an earlier entry.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import hashlib
import re
import time
import uuid
from collections import deque
from functools import lru_cache
from importlib import resources
from typing import Any, Final

from rds_slowlog.entry import Entry
from rds_slowlog.fingerprint.classify import QueryClass

DEFAULT_MAX_QUERY_CHARS: Final = 65536
#: Seconds of write time over which identical entries are numbered (see the module docstring).
OCCURRENCE_HORIZON: Final = 10.0
DEFAULT_INDEX_PREFIX: Final = "rds-slowlog"

# MySQL attribute → field under ``mysql.slowlog`` (Filebeat names); values in seconds get ``.sec``.
_MYSQL_FIELDS: Final[dict[str, str]] = {
    "Lock_time": "lock_time.sec", "Rows_sent": "rows_sent", "Rows_examined": "rows_examined",
    "Rows_affected": "rows_affected", "Bytes_sent": "bytes_sent", "Bytes_received": "bytes_received",
    "Last_errno": "last_errno", "Errno": "last_errno", "Killed": "killed", "QC_Hit": "query_cache_hit",
    "QC_hit": "query_cache_hit", "Read_first": "read_first", "Read_last": "read_last",
    "Read_key": "read_key", "Read_next": "read_next", "Read_prev": "read_prev", "Read_rnd": "read_rnd",
    "Read_rnd_next": "read_rnd_next", "Sort_merge_passes": "sort_merge_passes",
    "Sort_range_count": "sort_range_count", "Sort_rows": "sort_rows", "Sort_scan_count": "sort_scan_count",
    "Merge_passes": "merge_passes", "Tmp_tables": "tmp_tables", "Tmp_disk_tables": "tmp_disk_tables",
    "Tmp_table_sizes": "tmp_table_sizes", "Tmp_table": "tmp_table", "Tmp_table_on_disk": "tmp_table_on_disk",
    "Filesort": "filesort", "Filesort_on_disk": "filesort_on_disk", "Priority_queue": "priority_queue",
    "Full_scan": "full_scan", "Full_join": "full_join", "Log_slow_rate_type": "log_slow_rate_type",
    "Log_slow_rate_limit": "log_slow_rate_limit", "InnoDB_trx_id": "innodb.trx_id",
    "InnoDB_IO_r_ops": "innodb.io_r_ops", "InnoDB_IO_r_bytes": "innodb.io_r_bytes",
    "InnoDB_IO_r_wait": "innodb.io_r_wait.sec", "InnoDB_rec_lock_wait": "innodb.rec_lock_wait.sec",
    "InnoDB_queue_wait": "innodb.queue_wait.sec", "InnoDB_pages_distinct": "innodb.pages_distinct",
    # Schema is Entry.db (a ``use db;`` line wins over it, as in pt-query-digest); set_timestamp is kept in
    # ``extra`` only when it did not agree with the write time (flag ``timestamp_mismatch``)
    "Schema": "", "Thread_id": "", "Id": "", "Query_time": "",
}
_PG_FIELDS: Final[dict[str, str]] = {
    "query_step": "query_step", "query_name": "query_name", "client_port": "client_port",
    "session_line": "session_line_number", "application_name": "application_name",
    "sql_state": "sql_state_code", "log_level": "", "parameters": "parameters", "detail": "detail",
    "context": "context", "session_id": "session_id", "pg_queryid": "query_id", "parse_ms": "parse_ms",
    "bind_ms": "bind_ms",
}
#: PostgreSQL fields that carry query text or values (bind parameters; DETAIL such as ``prepare: PREPARE …``
#: or ``Key (email)=(…) already exists``; CONTEXT such as ``SQL statement "…"``): dropped in PII-safe mode
_PG_QUERY_FIELDS: Final = frozenset({"parameters", "detail", "context"})
_SAFE_KEY = re.compile(r"[^a-z0-9_]+")
#: Elasticsearch ``long`` range. MariaDB/MySQL counters sometimes wrap (``Bytes_sent: 18446744073709551508``
#: is -108 as an unsigned 64-bit value); such a value would make the whole document fail to index, so it is
#: left out of the numeric field and recorded as ``slowlog.overflow: ["mysql.slowlog.bytes_sent=…"]`` with the
#: flag ``counter_overflow`` instead.
_LONG_MIN: Final = -(1 << 63)
_LONG_MAX: Final = (1 << 63) - 1
_iso_cache: dict[int, str] = {}


def iso_time(t: float) -> str:
    """RFC 3339 UTC with microseconds; the per-second prefix is cached because entries cluster in time."""
    sec = int(t // 1)
    prefix = _iso_cache.get(sec)
    if prefix is None:
        if len(_iso_cache) > 4096:
            _iso_cache.clear()
        prefix = _iso_cache[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    micros = int(round((t - sec) * 1_000_000))
    if micros >= 1_000_000:
        return iso_time(sec + 1)
    return f"{prefix}.{micros:06d}Z"


@lru_cache(maxsize=1)
def _field_kinds() -> dict[str, str]:
    """Typed leaf fields of our mappings (``mysql.slowlog.rows_sent`` → ``long``), read from the templates
    themselves so the check below can never drift from what the server enforces."""
    kinds: dict[str, str] = {}

    def walk(prefix: str, props: dict[str, Any]) -> None:
        for name, spec in props.items():
            if "properties" in spec:
                walk(f"{prefix}{name}.", spec["properties"])
            elif spec.get("type") in ("long", "double", "boolean", "date", "ip"):
                kinds[prefix + name] = spec["type"]

    for name in ("mappings-mysql.json", "mappings-postgresql.json"):
        body = json.loads((resources.files("rds_slowlog") / "templates" / name).read_text(encoding="utf-8"))
        walk("", body["template"]["mappings"]["properties"])
    return kinds


def _fits(kind: str, v: Any) -> bool:
    """Whether the server takes ``v`` for a field of this type (else the whole document would be rejected)."""
    c = v.__class__
    if kind == "long":
        return (c is int and _LONG_MIN <= v <= _LONG_MAX) or (c is float and v == v and abs(v) < 9.2e18)
    if kind == "double":
        return (c is int or c is float) and v == v and v not in (float("inf"), float("-inf"))
    if kind == "boolean":
        return c is bool
    return True


_K_LONG, _K_DOUBLE, _K_BOOL = 1, 2, 3
#: A DNS-style host name (what ECS ``source.domain`` holds).
_HOST_NAME: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}[A-Za-z0-9_])?\.?")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _reject(slowlog: dict[str, Any], path: str, value: Any) -> None:
    """Keep a value its field's type cannot take out of the document, and say so: an integer beyond the
    64-bit range under ``slowlog.overflow`` (flag ``counter_overflow``), anything else of the wrong type
    under ``slowlog.invalid`` (flag ``invalid_value``) — instead of losing the whole document."""
    key, flag = ("overflow", "counter_overflow") if value.__class__ is int else ("invalid", "invalid_value")
    slowlog.setdefault(key, []).append(f"{path}={value}")
    flags = slowlog.get("flags", ())
    if flag not in flags:
        slowlog["flags"] = [*flags, flag]


class _Numbering:
    """How many times each tuple was seen, for tuples written within :data:`OCCURRENCE_HORIZON` of the newest.

    Kept small because a busy instance writes tens of thousands of entries a second: a tuple is an int (the
    hash of its digest — a collision only shifts a number, the id still hashes the whole tuple), and tuples
    are forgotten a whole write-second at a time.
    """

    __slots__ = ("counts", "seconds", "order", "newest", "horizon")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.seconds: dict[int, list[int]] = {}   # write-second → keys first seen in it
        self.order: deque[int] = deque()           # those seconds, in the order they first came
        self.newest = float("-inf")
        self.horizon = float("-inf")

    def next(self, key: int, t: float | None) -> int:
        counts = self.counts
        n = counts.get(key, 0)
        counts[key] = n + 1
        if n or t is None:
            return n
        sec = int(t)
        bucket = self.seconds.get(sec)
        if bucket is None:
            bucket = self.seconds[sec] = []
            self.order.append(sec)
        bucket.append(key)
        if t > self.newest:
            self.newest = t
            horizon = self.horizon = t - OCCURRENCE_HORIZON
            order = self.order
            while order and order[0] + 1 <= horizon:
                for k in self.seconds.pop(order.popleft()):
                    del counts[k]
        return n


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    node = doc
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


class DocumentBuilder:
    """Builds documents for one instance and one ingest run; keeps the occurrence counter for ids."""

    def __init__(
        self,
        instance: str = "local",
        *,
        index_prefix: str = DEFAULT_INDEX_PREFIX,
        index_date_format: str = "%Y.%m.%d",
        max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
        store_query: bool = True,
        ingest_run_id: str | None = None,
        cluster: str | None = None,
    ) -> None:
        self.instance = instance
        self.cluster = cluster
        self.index_prefix = index_prefix
        self.index_date_format = index_date_format
        self.max_query_chars = max_query_chars
        self.store_query = store_query
        self.ingest_run_id = ingest_run_id or uuid.uuid4().hex
        # occurrence numbers (see the module docstring): the main series, then one more per clock jump back
        self._series: list[_Numbering] = [_Numbering()]
        self._index_cache: dict[tuple[str, int], str] = {}
        self._sources: dict[tuple[str | None, str | None], dict[str, str]] = {}
        kinds = _field_kinds()
        codes = {"long": _K_LONG, "double": _K_DOUBLE, "boolean": _K_BOOL}
        self._mysql_specs = {k: (name, codes.get(kinds.get(f"mysql.slowlog.{name}", ""), 0))
                             for k, name in _MYSQL_FIELDS.items()}
        self._pg_kinds = {name: kinds[f"postgresql.log.{name}"] for name in _PG_FIELDS.values()
                          if f"postgresql.log.{name}" in kinds}

    def doc_id(self, e: Entry) -> str:
        """The entry's deterministic ``_id`` (call once per entry, in log order: it numbers repeats)."""
        h = hashlib.blake2b(digest_size=16)
        t = e.end_time
        h.update(f"{self.instance}\x1f{e.engine}\x1f{t!r}\x1f{e.thread_id}\x1f{e.duration!r}\x1f".encode())
        h.update(e.query_bytes())
        series = self._series
        k = 0
        if t is not None:
            while k < len(series) and t < series[k].horizon:
                k += 1   # too late for this series' memory: numbered in the next one
            if k == len(series):
                series.append(_Numbering())
        n = series[k].next(hash(h.digest()), t)
        if k == 1:
            h.update(b"\x1flate%d" % n)
        elif k:
            h.update(b"\x1flate%d.%d" % (k, n))
        elif n:
            h.update(b"\x1f%d" % n)
        return h.hexdigest()

    def index_name(self, e: Entry) -> str:
        t = e.end_time if e.end_time is not None else e.start_time
        day = int(t // 86400) if t is not None else -1
        key = (e.engine, day)
        name = self._index_cache.get(key)
        if name is None:
            date = time.strftime(self.index_date_format, time.gmtime(day * 86400)) if day >= 0 else "undated"
            name = self._index_cache[key] = f"{self.index_prefix}-{e.engine}-{date}"
        return name

    def build(self, e: Entry, qc: QueryClass) -> dict[str, Any]:
        """The document body (without ``_id``/``_index``; see :meth:`action`)."""
        is_mysql = e.engine == "mysql"
        start = e.start_time if e.start_time is not None else e.end_time
        event: dict[str, Any] = {
            "kind": "event", "category": ["database"], "type": ["info"],
            "dataset": "mysql.slowlog" if is_mysql else "postgresql.log",
            "module": "mysql" if is_mysql else "postgresql",
        }
        if e.duration is not None:
            event["duration"] = int(round(e.duration * 1e9))
        if start is not None:
            event["start"] = iso_time(start)
        if e.end_time is not None:
            event["end"] = iso_time(e.end_time)
        doc: dict[str, Any] = {"event": event}
        if start is not None:
            doc["@timestamp"] = event["start"]
        if e.user:
            doc["user"] = {"name": e.user}
        if e.ip or e.host:
            src = self._source(e.host, e.ip)
            if src:
                doc["source"] = dict(src)

        query = e.query
        text, query_cut, raw_b64 = self._query_text(query)
        slowlog: dict[str, Any] = {
            "fingerprint": qc.fingerprint, "query_id": qc.query_id, "query_id_short": qc.short_id,
            "statement_type": qc.statement_type, "tables": list(qc.tables),
            "truncated": e.truncated, "ingest_run_id": self.ingest_run_id,
        }
        if query_cut:
            slowlog["query_truncated"] = True
        if e.flags:
            slowlog["flags"] = list(e.flags)
        if raw_b64 is not None:
            slowlog["query_b64"] = raw_b64
        doc["slowlog"] = slowlog
        rds: dict[str, Any] = {"instance": self.instance, "engine": e.engine}
        if self.cluster:
            rds["cluster"] = self.cluster
        doc["rds"] = rds
        doc["log"] = {"file": {"path": e.source}, "offset": e.offset}

        if is_mysql:
            sl: dict[str, Any] = {}
            if text is not None:
                sl["query"] = text
            if e.db:
                sl["schema"] = e.db
            extra: dict[str, Any] = {}
            specs = self._mysql_specs
            for k, v in e.attrs.items():
                spec = specs.get(k)
                if spec is None:
                    if k == "explain":
                        sl["explain"] = v
                    else:
                        extra[_SAFE_KEY.sub("_", k.lower())] = v
                    continue
                name, kind = spec
                if not name:
                    continue
                # what the field's type takes (else the server rejects the whole document); inline: per attribute
                c = v.__class__
                if kind == _K_LONG:
                    if c is not int or v > _LONG_MAX or v < _LONG_MIN:
                        if not (c is float and abs(v) < 9.2e18):
                            _reject(slowlog, f"mysql.slowlog.{name}", v)
                            continue
                elif kind == _K_DOUBLE:
                    if c is not float and c is not int:
                        _reject(slowlog, f"mysql.slowlog.{name}", v)
                        continue
                elif kind == _K_BOOL and c is not bool:
                    _reject(slowlog, f"mysql.slowlog.{name}", v)
                    continue
                if "." in name:
                    _set(sl, name, v)
                else:
                    sl[name] = v
            if extra:
                sl["extra"] = extra
            m: dict[str, Any] = {"slowlog": sl}
            if e.thread_id is not None:
                if _LONG_MIN <= e.thread_id <= _LONG_MAX:
                    m["thread_id"] = e.thread_id
                else:
                    _reject(slowlog, "mysql.thread_id", e.thread_id)
            doc["mysql"] = m
        else:
            pl: dict[str, Any] = {}
            if text is not None:
                pl["query"] = text
            if e.db:
                pl["database"] = e.db
            if e.ip or e.host:
                pl["client_addr"] = e.ip or e.host
            level = None
            pg_kinds = self._pg_kinds
            for k, v in e.attrs.items():
                name = _PG_FIELDS.get(k)
                if name is None:
                    pl.setdefault("extra", {})[_SAFE_KEY.sub("_", k.lower())] = v
                elif name:
                    if name in _PG_QUERY_FIELDS and not self.store_query:
                        continue
                    kind = pg_kinds.get(name)
                    if kind is not None and not _fits(kind, v):
                        _reject(slowlog, f"postgresql.log.{name}", v)
                        continue
                    pl[name] = v
                elif k == "log_level":
                    level = v
            doc["postgresql"] = {"log": pl}
            if e.thread_id is not None:
                if _LONG_MIN <= e.thread_id <= _LONG_MAX:
                    doc["process"] = {"pid": e.thread_id}
                else:
                    _reject(slowlog, "process.pid", e.thread_id)
            if level:
                doc["log"]["level"] = level
        return doc

    def _source(self, host: str | None, ip: str | None) -> dict[str, str]:
        """ECS ``source``: ``ip`` only for an address, ``domain`` only for a host name; PostgreSQL's
        ``[local]`` (a unix socket) and anything else that is neither go to ``address`` (cached per pair)."""
        key = (host, ip)
        got = self._sources.get(key)
        if got is not None:
            return got
        src: dict[str, str] = {}
        for value in (ip, host):
            if not value:
                continue
            if _is_ip(value):
                src.setdefault("ip", value)
            elif value == "[local]" or value != host or not _HOST_NAME.fullmatch(value):
                src.setdefault("address", value)
            else:
                src.setdefault("domain", value)
        if len(self._sources) > 4096:
            self._sources.clear()
        self._sources[key] = src
        return src

    def _query_text(self, query: str) -> tuple[str | None, bool, str | None]:
        """(text to store or None in PII-safe mode, whether it was cut, base64 of raw bytes if not UTF-8)."""
        if not self.store_query:
            return None, False, None
        cut = len(query) > self.max_query_chars
        q = query[: self.max_query_chars] if cut else query
        try:
            q.encode("utf-8")
            return q, cut, None
        except UnicodeEncodeError:
            raw = q.encode("utf-8", "surrogateescape")
            return raw.decode("utf-8", "replace"), cut, base64.b64encode(raw).decode("ascii")

    def action(self, e: Entry, qc: QueryClass) -> dict[str, Any]:
        """A bulk-ready action: the document plus ``_id`` and ``_index``."""
        doc = self.build(e, qc)
        doc["_id"] = self.doc_id(e)
        doc["_index"] = self.index_name(e)
        return doc
