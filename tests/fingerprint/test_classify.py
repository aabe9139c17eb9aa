from __future__ import annotations

import pytest

from rds_slowlog.fingerprint.classify import Classifier, statement_type_and_tables


@pytest.mark.parametrize(
    ("query", "kind", "tables"),
    [
        ("SELECT a FROM db1.t1 JOIN t2 ON x WHERE y IN (SELECT z FROM t3)", "SELECT", ("db1.t1", "t2", "t3")),
        ("update db2.tuning_21 n inner join db1.gonzo a using(gonzo) set n.c = a.c", "UPDATE",
         ("db2.tuning_21", "db1.gonzo")),
        ("INSERT INTO `shop`.`orders` (a) VALUES (1),(2)", "INSERT", ("shop.orders",)),
        ("DELETE FROM x WHERE id=1", "DELETE", ("x",)),
        ("SELECT * FROM a, b, c", "SELECT", ("a", "b", "c")),
        ("administrator command: Quit", "ADMIN", ()),
        ("create table foo (a int)", "CREATE", ("foo",)),
        ("BEGIN", "BEGIN", ()),
        ("select abalance from pgbench_accounts where aid = $1", "SELECT", ("pgbench_accounts",)),
        ("", "UNKNOWN", ()),
    ],
)
def test_statement_type_and_tables(query: str, kind: str, tables: tuple[str, ...]) -> None:
    assert statement_type_and_tables(query) == (kind, tables)


def test_classifier_runs_sqlparse_once_per_fingerprint() -> None:
    calls: list[str] = []

    def fp(q: str) -> str:
        calls.append(q)
        return q.split("=")[0].strip().lower() + " = ?"

    c = Classifier(fp, lambda f: f.upper(), lambda f: f[:4])
    a = c.classify("SELECT * FROM t WHERE id = 1")
    b = c.classify("SELECT * FROM t WHERE id = 2")
    again = c.classify("SELECT * FROM t WHERE id = 1")
    assert a is b is again                      # one class object for all texts of the class
    assert c.classes_computed == 1              # sqlparse ran once
    assert len(calls) == 2                      # the repeated exact text hit the text cache
    assert a.statement_type == "SELECT" and a.tables == ("t",)


def test_classifier_cache_is_bounded() -> None:
    c = Classifier(lambda q: q, lambda f: f, lambda f: f, cache_size=8)
    for i in range(100):
        c.classify(f"SELECT {i}")
    assert len(c._by_text) <= 8 and len(c._by_fingerprint) <= 8
