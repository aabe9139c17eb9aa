"""Zone-less ``# Time:`` values are the server's local time; ``SET timestamp`` is UTC: the write time that
decides windows and ``_index`` must be UTC, and a start that disagrees with it is flagged."""
from __future__ import annotations

import io

import pytest

from rds_slowlog.documents import DocumentBuilder
from rds_slowlog.fingerprint.classify import classifier_for
from rds_slowlog.parsers.mysql import MySQLSlowLogParser, infer_zone_offset, zone_converter

# 11:04:36 local with SET timestamp=1528898674 (14:04:34Z) and Query_time 2.0: the server runs at UTC-03:00
LOG = (b"# Time: 180613 11:04:36\n# User@Host: root[root] @ localhost []\n# Thread_id: 8  Schema: db1  QC_hit: No\n"
       b"# Query_time: 2.000000  Lock_time: 0.000000  Rows_sent: 1  Rows_examined: 0\n"
       b"SET timestamp=1528898674;\nSELECT SLEEP(2);\n"
       b"# User@Host: root[root] @ localhost []\n# Thread_id: 8  Schema: db1  QC_hit: No\n"
       b"# Query_time: 0.000400  Lock_time: 0.000000  Rows_sent: 1  Rows_examined: 0\n"
       b"SET timestamp=1000000000;\nSELECT 1;\n"
       b"# Time: 180613 11:04:37\n# User@Host: root[root] @ localhost []\n# Thread_id: 8  Schema: db1  QC_hit: No\n"
       b"# Query_time: 0.000400  Lock_time: 0.000000  Rows_sent: 1  Rows_examined: 0\n"
       b"SET timestamp=1528898677;\nSELECT 2;\n")


def _parse(data: bytes, **kw):
    p = MySQLSlowLogParser("tz.log", **kw)
    return list(p.parse(io.BytesIO(data))), p.stats


def test_offset_is_inferred_from_set_timestamp() -> None:
    (a, b, c), st = _parse(LOG)
    assert st.log_time_zone == "UTC-03:00 (inferred)"
    assert a.end_time == 1528898676.0 and a.start_time == 1528898674.0        # end after start, both UTC
    assert c.end_time == 1528898677.0 and "timestamp_mismatch" not in c.flags
    doc = DocumentBuilder("db").action(a, classifier_for("mysql").classify(a.query))
    assert doc["event"]["start"] == "2018-06-13T14:04:34.000000Z" and doc["event"]["end"] == "2018-06-13T14:04:36.000000Z"
    assert doc["_index"] == "rds-slowlog-mysql-2018.06.13"


def test_an_absurd_set_timestamp_is_flagged_and_not_used() -> None:
    (_, b, _), st = _parse(LOG)
    assert "timestamp_mismatch" in b.flags and st.timestamp_mismatch_entries == 1
    assert b.attrs["set_timestamp"] == 1000000000.0
    assert b.start_time == pytest.approx(b.end_time - 0.0004)                  # not 2001
    assert b.end_time == 1528898676.0


@pytest.mark.parametrize(("zone", "end"), [("UTC", 1528887876.0), ("-03:00", 1528898676.0),
                                            ("America/Sao_Paulo", 1528898676.0), ("+05:30", 1528868076.0)])
def test_an_explicit_zone_wins(zone: str, end: float) -> None:
    (a, _, _), st = _parse(LOG, log_time_zone=zone)
    assert a.end_time == end and st.log_time_zone == zone


def test_iana_zones_follow_daylight_saving_time() -> None:
    berlin = zone_converter("Europe/Berlin")
    naive_winter = 1704110400.0   # 2024-01-01 12:00 read as UTC
    naive_summer = 1719835200.0   # 2024-07-01 12:00
    assert naive_winter - berlin(naive_winter) == 3600 and naive_summer - berlin(naive_summer) == 7200


def test_majority_wins_over_clients_own_timestamps() -> None:
    # one client's SET timestamp is 3 h off; the server's entries all say +05:30
    entry = (b"# Time: 180613 {t}\n# User@Host: a[a] @ h []\n# Query_time: 0.100000  Lock_time: 0.0\n"
             b"SET timestamp={ts};\nSELECT 1;\n")
    base = 1528898674
    blocks = [entry.replace(b"{t}", b"19:34:34").replace(b"{ts}", str(base + 3 * 3600).encode())]
    blocks += [entry.replace(b"{t}", f"19:34:{34 + k:02d}".encode()).replace(b"{ts}", str(base + k).encode())
               for k in range(3)]
    assert infer_zone_offset(b"".join(blocks)) == 5.5 * 3600


def test_iso_times_are_untouched_and_no_evidence_means_utc() -> None:
    iso = (b"# Time: 2026-11-27T14:00:00.000001Z\n# User@Host: app[app] @  [10.0.0.1]  Id: 7\n"
           b"# Query_time: 0.5  Lock_time: 0.0\nSET timestamp=1795788000;\nSELECT 1;\n")
    [e], st = _parse(iso)
    assert st.log_time_zone is None and e.end_time == 1795788000.000001
    [e], st = _parse(b"# Time: 180613 11:04:36\n# User@Host: a[a] @ h []\n# Query_time: 0.1\nSELECT 1;\n")
    assert st.log_time_zone == "UTC (no evidence)" and e.end_time == 1528887876.0


def test_bad_zone_names_are_refused() -> None:
    with pytest.raises(ValueError, match="Mars/Base"):
        MySQLSlowLogParser("x", log_time_zone="Mars/Base")
    with pytest.raises(ValueError, match="14:00"):
        zone_converter("+15:00")


def test_entries_with_explain_lines_are_evidence() -> None:
    # log_slow_verbosity=explain brackets MariaDB's explain lines with bare "#" lines; a log whose entries with
    # their own # Time: all carry them (a CI run's live MariaDB log) was read as UTC, 5 h 30 off
    entry = (b"# Time: 261202 15:58:{s}\n# User@Host: root[root] @ localhost []\n"
             b"# Thread_id: 12  Schema: sbtest  QC_hit: No\n"
             b"# Query_time: 0.000021  Lock_time: 0.000007  Rows_sent: 1  Rows_examined: 1\n"
             b"# Rows_affected: 0  Bytes_sent: 0\n#\n"
             b"# explain: id\tselect_type\ttable\ttype\tpossible_keys\tkey\tkey_len\tref\trows\tr_rows\tfiltered\n"
             b"# explain: 1\tSIMPLE\tsbtest2\tconst\tPRIMARY\tPRIMARY\t4\tconst\t1\tNULL\t100.00\n#\n"
             b"SET timestamp={ts};\nSELECT c FROM sbtest2 WHERE id=505;\n")
    log = b"".join(entry.replace(b"{s}", f"{30 + k}".encode()).replace(b"{ts}", f"{1796207310 + k}".encode())
                   for k in range(3))
    assert infer_zone_offset(log) == 5.5 * 3600
    entries, st = _parse(log)
    assert st.log_time_zone == "UTC+05:30 (inferred)"
    assert [e.end_time for e in entries] == [1796207310.0, 1796207311.0, 1796207312.0]
