"""``mysql_class_key`` lets texts that differ only in digit runs share one fingerprint computation; it is
only sound while every text with the same key has the same pt fingerprint. Checked on real queries and
on adversarial random input."""
from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rds_slowlog.fingerprint.classify import mysql_class_key
from rds_slowlog.fingerprint.mysql import fingerprint
from rds_slowlog.logfile import open_log
from rds_slowlog.parsers.mysql import MySQLSlowLogParser

SAMPLES = Path(__file__).resolve().parents[2] / "include" / "sample_logs"


def check(q: str) -> None:
    k = mysql_class_key(q)
    if k is None:
        return
    assert fingerprint(k) == fingerprint(q), (q, k)
    for fill in ("9", "12345", "0"):          # any other digit filling of the key, too
        q2 = re.sub(r"0", fill, k)
        assert fingerprint(q2) == fingerprint(q), (q, q2)


def _queries(paths):
    for f in paths:
        if f.is_file():
            with open_log(f) as fh:
                for e in MySQLSlowLogParser().parse(fh):
                    yield e.query


def test_key_is_sound_on_the_corpus_and_samples(percona_corpus: Path) -> None:
    n = 0
    for q in _queries([*sorted(percona_corpus.iterdir()), *SAMPLES.glob("*slowquery*.log")]):
        check(q)
        n += 1
    assert n > 2500


def test_key_skips_what_it_cannot_prove() -> None:
    assert mysql_class_key("SELECT /*!40001 SQL_NO_CACHE */ * FROM `t`") is None
    assert mysql_class_key("CALL p(1)") is None
    assert mysql_class_key("administrator command: Ping") is None
    assert mysql_class_key("SELECT " + "1," * 600 + "2") is None
    assert mysql_class_key("SELECT * FROM t1 WHERE id = 1234") == mysql_class_key("SELECT * FROM t9 WHERE id = 5")


ALPH = st.sampled_from(list("0123456789abcdefxAXB.+-_ ,()'\"\\#\n\t?*/=;`") + [
    "select ", " union ", " union all ", "in (", "values (", "VALUES(", "limit ", " offset ", "order by ", " asc",
    "null", "NULL", "insert into t ", "replace ", "-- ", "/*", "*/", "call ", "use ", "0x", "1e5", "tbl_12",
    "md5col", "  "])


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ALPH, max_size=30))
def test_key_is_sound_on_sql_shaped_input(parts: list[str]) -> None:
    check("".join(parts))


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=60))
def test_key_is_sound_on_any_text(q: str) -> None:
    check(q)
