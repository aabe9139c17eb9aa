from __future__ import annotations

import base64

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
