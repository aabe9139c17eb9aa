"""``postgres.class_key`` lets texts that differ only in their numbers share one normalisation; it is only
sound while every text with the same key has the same :func:`normalize` result. Checked on real queries
(pgBadger's fixtures, the sample logs) and on adversarial random input, including other digit fillings of
each key."""
from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rds_slowlog.fingerprint.classify import classifier_for
from rds_slowlog.fingerprint.postgres import _normalize, class_key
from rds_slowlog.logfile import open_log
from rds_slowlog.parsers.postgres import PostgresLogParser

SAMPLES = Path(__file__).resolve().parents[2] / "include" / "sample_logs"
_RUN = re.compile(r"(?<!\w)\d+")  # the runs the key may rewrite


def check(q: str) -> None:
    k = class_key(q)
    if k is None:
        return
    want = _normalize(q)  # uncached: the cache must not hide a difference
    assert _normalize(k) == want, (q, k)
    for fill in ("9", "12345", "0", "00", "07"):  # other digit fillings of the key's rewritten runs
        q2 = _RUN.sub(lambda m, f=fill: m.group() if m.group() == "0" else f, k)
        if class_key(q2) == k:
            assert _normalize(q2) == want, (q, q2)


def _queries(paths, prefix_of):
    for f in paths:
        if f.is_file():
            with open_log(f) as fh:
                for e in PostgresLogParser(str(f), log_line_prefix=prefix_of(f.name)).parse(fh):
                    yield e.query


def test_key_is_sound_on_pgbadger_fixtures_and_samples(pgbadger_corpus: Path) -> None:
    from tests.parsers.test_postgres_fastpath import FIXTURES  # the prefix of each fixture

    n = keyed = 0
    files = [*sorted(pgbadger_corpus.iterdir()), *SAMPLES.glob("*postgres*.log*")]
    for q in _queries(files, lambda name: FIXTURES.get(name, "%t:%r:%u@%d:[%p]:")):
        check(q)
        n += 1
        keyed += class_key(q) is not None
    assert n > 100000 and keyed > 1000


def test_key_skips_what_it_cannot_prove() -> None:
    assert class_key('SELECT "Col1" FROM t WHERE a = 1') is None      # quoted identifier keeps digits
    assert class_key("SELECT a::numeric(10,2) FROM t") is None       # cast keeps type modifiers
    assert class_key("SELECT $1") is None
    assert class_key("SELECT 1 -- note 5") is None
    assert class_key("SELECT 'é', 1") is None                        # non-ASCII: full tokenizer
    assert class_key("SELECT " + "1," * 600 + "2") is None            # too long
    # digits inside identifiers and after 0x are kept; numbers share a key
    assert class_key("SELECT * FROM t1 WHERE id = 1234") == class_key("SELECT * FROM t1 WHERE id = 5")
    assert class_key("SELECT * FROM t1") != class_key("SELECT * FROM t2")
    assert class_key("SELECT 0x1F") != class_key("SELECT 5x1F")      # ? vs ?x1f
    assert _normalize("SELECT 0x1F") != _normalize("SELECT 5x1F")


def test_classifier_uses_the_key() -> None:
    c = classifier_for("postgres")
    a = c.classify("UPDATE t SET v = v + -3193 WHERE aid = 247871;")
    b = c.classify("UPDATE t SET v = v + -12 WHERE aid = 5;")
    assert a is b and c.fingerprints_computed == 1
    assert c.classify("UPDATE t2 SET v = 1").fingerprint == "update t2 set v = ?"


ALPH = st.sampled_from(list("0123456789abcdefxoAXBOE.+-_ ,()'\\n\t?*/=;:&|") + [
    "select ", " union ", "in (", " IN (", "values (", "VALUES(", "limit ", "null", "NULL", "insert into t ",
    "e'", "E'", "b'", "x'", "u&'", "U&'", "n'", "''", "0x", "0o", "0b", "1e5", "1e+5", "1_000", ".5", "tbl_12",
    "t1.c2", "  ", "--", "/*", "::", "$", '"', "\\"])


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ALPH, max_size=30))
def test_key_is_sound_on_sql_shaped_input(parts: list[str]) -> None:
    check("".join(parts))


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=60))
def test_key_is_sound_on_any_text(q: str) -> None:
    check(q)


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ALPH, max_size=25), st.lists(st.from_regex(r"\A[0-9]{1,6}\Z"), min_size=1, max_size=8))
def test_any_refilling_of_the_numbers_normalises_alike(parts: list[str], fills: list[str]) -> None:
    # every rewritable run gets its own random digits; texts that keep the key must keep the result
    q1 = "".join(parts)
    it = iter(fills * 10)
    q2 = _RUN.sub(lambda m: next(it), q1)
    k1 = class_key(q1)
    if k1 is not None and class_key(q2) == k1:
        assert _normalize(q1) == _normalize(q2), (q1, q2)
