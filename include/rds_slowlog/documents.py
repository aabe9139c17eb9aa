"""Entry → Elasticsearch document (ECS names shared with Elastic's MySQL/PostgreSQL integrations).

Field names follow Filebeat's ``mysql.slowlog`` / ``postgresql.log`` so existing dashboards work; ours live
under ``slowlog.*`` (fingerprint, query id, statement type, tables, provenance, flags) and ``rds.*``.

Document ids are derived from content, never from file names: RDS renames ``mysql-slowquery.log`` on
rotation and CloudWatch carries no file at all, so (file, offset) is not a stable identity. The id is a
BLAKE2b-128 of (instance, engine, write time, thread/pid, duration, raw query bytes, occurrence), where the
occurrence counts identical tuples seen since the write time last changed — two identical pings from one
thread within the same second still get two documents, and any re-read of the same window yields the same
ids (reruns and backfills overwrite instead of duplicating).
"""
from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from typing import Any, Final

from rds_slowlog.entry import Entry
from rds_slowlog.fingerprint.classify import QueryClass

DEFAULT_MAX_QUERY_CHARS: Final = 65536
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
    "Schema": "schema", "Thread_id": "", "Id": "", "Query_time": "",
}
_PG_FIELDS: Final[dict[str, str]] = {
    "query_step": "query_step", "query_name": "query_name", "client_port": "client_port",
    "session_line": "session_line_number", "application_name": "application_name",
    "sql_state": "sql_state_code", "log_level": "", "parameters": "parameters", "detail": "detail",
    "context": "context", "session_id": "session_id", "pg_queryid": "query_id", "parse_ms": "parse_ms",
    "bind_ms": "bind_ms",
}
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
        self._occ_time: float | None = None
        self._occ: dict[bytes, int] = {}
        self._index_cache: dict[tuple[str, int], str] = {}

    def doc_id(self, e: Entry) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{self.instance}\x1f{e.engine}\x1f{e.end_time!r}\x1f{e.thread_id}\x1f{e.duration!r}\x1f".encode())
        h.update(e.query_bytes())
        key = h.digest()
        if e.end_time != self._occ_time:
            self._occ_time = e.end_time
            self._occ.clear()
        n = self._occ.get(key, 0)
        self._occ[key] = n + 1
        if n:
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
        src: dict[str, Any] = {}
        if e.ip:
            src["ip"] = e.ip
        if e.host:
            src["domain"] = e.host
        if src:
            doc["source"] = src

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
            overflow: list[str] | None = None
            for k, v in e.attrs.items():
                name = _MYSQL_FIELDS.get(k)
                if name is None:
                    if k == "explain":
                        sl["explain"] = v
                    else:
                        extra[_SAFE_KEY.sub("_", k.lower())] = v
                elif name:
                    if v.__class__ is int and (v > _LONG_MAX or v < _LONG_MIN):
                        if overflow is None:
                            overflow = []
                        overflow.append(f"mysql.slowlog.{name}={v}")
                        continue
                    if "." in name:
                        _set(sl, name, v)
                    else:
                        sl[name] = v
            if extra:
                sl["extra"] = extra
            if overflow:
                slowlog["overflow"] = overflow
                slowlog["flags"] = [*slowlog.get("flags", ()), "counter_overflow"]
            m: dict[str, Any] = {"slowlog": sl}
            if e.thread_id is not None:
                m["thread_id"] = e.thread_id
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
            for k, v in e.attrs.items():
                name = _PG_FIELDS.get(k)
                if name is None:
                    pl.setdefault("extra", {})[_SAFE_KEY.sub("_", k.lower())] = v
                elif name:
                    if name == "parameters" and not self.store_query:
                        continue
                    if v.__class__ is int and (v > _LONG_MAX or v < _LONG_MIN):
                        slowlog.setdefault("overflow", []).append(f"postgresql.log.{name}={v}")
                        if "counter_overflow" not in slowlog.get("flags", ()):
                            slowlog["flags"] = [*slowlog.get("flags", ()), "counter_overflow"]
                        continue
                    pl[name] = v
                elif k == "log_level":
                    level = v
            doc["postgresql"] = {"log": pl}
            if e.thread_id is not None:
                doc["process"] = {"pid": e.thread_id}
            if level:
                doc["log"]["level"] = level
        return doc

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
