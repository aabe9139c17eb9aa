from __future__ import annotations

import base64

import pytest

import orjson

from rds_slowlog.documents import DocumentBuilder, iso_time
from rds_slowlog.entry import Entry
from rds_slowlog.fingerprint.classify import QueryClass

QC = QueryClass("select * from t where id = ?", "0" * 32, "0" * 16, "SELECT", ("t",))


def _mysql(query: str = "SELECT * FROM t WHERE id = 1", t: float = 1_800_000_000.25, thread: int = 7) -> Entry:
    return Entry("mysql", query, duration=1.5, end_time=t, start_time=t - 1.5,
                 attrs={"Lock_time": 0.001, "Rows_sent": 1, "Rows_examined": 10, "Full_scan": True,
                        "InnoDB_IO_r_wait": 0.5, "Weird key": 3},
                 user="app", host="web1", ip="10.0.0.1", db="shop", thread_id=thread, source="slow.log", offset=42)


def test_iso_time() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000000Z"
    assert iso_time(1_800_000_000.25) == "2027-01-15T08:00:00.250000Z"
    assert iso_time(1.9999999) == "1970-01-01T00:00:02.000000Z"


def test_mysql_document_uses_filebeat_names() -> None:
    doc = DocumentBuilder("db-1", ingest_run_id="run1").action(_mysql(), QC)
    assert doc["event"]["duration"] == 1_500_000_000
    assert doc["@timestamp"] == doc["event"]["start"] == "2027-01-15T07:59:58.750000Z"
    assert doc["event"]["end"] == "2027-01-15T08:00:00.250000Z"
    sl = doc["mysql"]["slowlog"]
    assert sl["lock_time"] == {"sec": 0.001} and sl["rows_examined"] == 10 and sl["full_scan"] is True
    assert sl["innodb"]["io_r_wait"] == {"sec": 0.5}
    assert sl["extra"] == {"weird_key": 3}
    assert sl["schema"] == "shop" and doc["mysql"]["thread_id"] == 7
    assert doc["user"] == {"name": "app"} and doc["source"] == {"ip": "10.0.0.1", "domain": "web1"}
    assert doc["slowlog"]["query_id"] == QC.query_id and doc["slowlog"]["tables"] == ["t"]
    assert doc["rds"] == {"instance": "db-1", "engine": "mysql"}
    assert doc["_index"] == "rds-slowlog-mysql-2027.01.15"
    orjson.dumps(doc)


def test_ids_are_deterministic_and_count_occurrences() -> None:
    a, b = DocumentBuilder("db-1"), DocumentBuilder("db-1")
    same = [_mysql(), _mysql(), _mysql(t=1_800_000_001.0)]
    ids_a = [a.doc_id(e) for e in same]
    ids_b = [b.doc_id(e) for e in same]
    assert ids_a == ids_b                       # a rerun gives the same ids
    assert len(set(ids_a)) == 3                 # identical twins in one second are two documents
    assert DocumentBuilder("db-2").doc_id(_mysql()) != ids_a[0]


def test_pii_safe_mode_and_query_cap_and_invalid_utf8() -> None:
    e = _mysql("SELECT '\udcff' FROM t WHERE secret = 'x'")
    doc = DocumentBuilder("db-1", store_query=False).action(e, QC)
    assert "query" not in doc["mysql"]["slowlog"] and "query_b64" not in doc["slowlog"]
    doc = DocumentBuilder("db-1", max_query_chars=10).action(e, QC)
    assert doc["slowlog"]["query_truncated"] is True and len(doc["mysql"]["slowlog"]["query"]) == 10
    doc = DocumentBuilder("db-1").action(e, QC)
    assert base64.b64decode(doc["slowlog"]["query_b64"]) == e.query_bytes()
    assert "\ufffd" in doc["mysql"]["slowlog"]["query"]
    orjson.dumps(doc)


def test_postgres_document() -> None:
    e = Entry("postgres", "SELECT 1", duration=0.002, end_time=1_800_000_000.0, user="u", db="d", ip="1.2.3.4",
              thread_id=99, attrs={"query_step": "execute", "query_name": "P0_1", "log_level": "LOG",
                                   "parameters": "$1 = '5'", "client_port": 5432})
    doc = DocumentBuilder("pg-1").action(e, QC)
    pl = doc["postgresql"]["log"]
    assert pl == {"query": "SELECT 1", "database": "d", "client_addr": "1.2.3.4", "query_step": "execute",
                  "query_name": "P0_1", "parameters": "$1 = '5'", "client_port": 5432}
    assert doc["process"] == {"pid": 99} and doc["log"]["level"] == "LOG"
    assert doc["event"]["duration"] == 2_000_000 and doc["_index"] == "rds-slowlog-postgres-2027.01.15"
    safe = DocumentBuilder("pg-1", store_query=False).action(e, QC)
    assert "parameters" not in safe["postgresql"]["log"] and "query" not in safe["postgresql"]["log"]


def _doc_of(log: bytes) -> list[dict]:
    import io

    from rds_slowlog.fingerprint.classify import classifier_for
    from rds_slowlog.parsers.mysql import MySQLSlowLogParser

    b, c = DocumentBuilder("db-1"), classifier_for("mysql")
    return [b.action(e, c.classify(e.query)) for e in MySQLSlowLogParser("x").parse(io.BytesIO(log))]


def test_a_use_line_sets_the_schema_over_the_schema_header() -> None:
    head = (b"# Time: 2026-11-27T14:00:00.000001Z\n# User@Host: app[app] @  [10.0.0.1]  Id: 7\n"
            b"# Schema: db1  Last_errno: 0  Killed: 0\n# Query_time: 0.5  Lock_time: 0.0 Rows_sent: 1\n")
    a, b = _doc_of(head + b"use db2;\nSET timestamp=1795788000;\nSELECT 1;\n"
                   + head + b"SET timestamp=1795788000;\nuse `db3`;\nSELECT 2;\n")
    assert a["mysql"]["slowlog"]["schema"] == "db2" and b["mysql"]["slowlog"]["schema"] == "db3"


def test_a_value_its_field_cannot_take_is_kept_out_and_flagged() -> None:
    e = _mysql()
    e.attrs.update({"Rows_sent": "x1", "Full_scan": "maybe", "Lock_time": "soon", "Bytes_sent": 18446744073709551508})
    doc = DocumentBuilder("db-1").action(e, QC)
    sl = doc["mysql"]["slowlog"]
    assert "rows_sent" not in sl and "full_scan" not in sl and "lock_time" not in sl and "bytes_sent" not in sl
    assert sorted(doc["slowlog"]["invalid"]) == ["mysql.slowlog.full_scan=maybe", "mysql.slowlog.lock_time.sec=soon",
                                                 "mysql.slowlog.rows_sent=x1"]
    assert doc["slowlog"]["overflow"] == ["mysql.slowlog.bytes_sent=18446744073709551508"]
    assert {"invalid_value", "counter_overflow"} <= set(doc["slowlog"]["flags"])
    assert sl["rows_examined"] == 10     # the rest of the entry is intact


@pytest.mark.parametrize(("host", "ip", "source"), [
    ("[local]", None, {"address": "[local]"}),
    ("10.1.2.3", "10.1.2.3", {"ip": "10.1.2.3"}),
    ("fe80::1", "fe80::1", {"ip": "fe80::1"}),
    ("app-7.internal", "10.1.2.3", {"ip": "10.1.2.3", "domain": "app-7.internal"}),
    ("localhost", None, {"domain": "localhost"}),
])
def test_source_holds_a_domain_only_for_host_names(host: str, ip: str | None, source: dict) -> None:
    e = Entry("postgres", "SELECT 1", 0.001, 1_800_000_000.0, host=host, ip=ip, thread_id=42)
    doc = DocumentBuilder("db-1").action(e, QC)
    assert doc["source"] == source
    assert doc["postgresql"]["log"]["client_addr"] == (ip or host)


def test_pii_safe_mode_drops_postgres_detail_and_context() -> None:
    """DETAIL and CONTEXT lines carry query text and values (``prepare: PREPARE …``, ``Key (email)=(…)``)."""
    e = Entry("postgres", "EXECUTE p(1)", duration=0.002, end_time=1_800_000_000.0,
              attrs={"detail": "prepare: PREPARE p AS SELECT 'secret'", "context": "SQL statement \"SELECT 'x'\"",
                     "sql_state": "23505"})
    assert {"detail", "context"} <= DocumentBuilder("pg-1").action(e, QC)["postgresql"]["log"].keys()
    safe = DocumentBuilder("pg-1", store_query=False).action(e, QC)["postgresql"]["log"]
    assert safe == {"sql_state_code": "23505"}
