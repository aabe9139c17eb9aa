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


@pytest.mark.parametrize("order", [(1, 2), (2, 1)])
def test_tables_are_the_entrys_own_whatever_came_first(order: tuple[int, int]) -> None:
    # digits inside identifiers are folded by the fingerprint: one class, but each text names its own table
    from rds_slowlog.fingerprint.classify import classifier_for

    c = classifier_for("mysql")
    got = {n: c.classify(f"SELECT * FROM orders_2024_0{n} WHERE id = {n * 7}") for n in order}
    assert got[1].query_id == got[2].query_id
    assert got[1].tables == ("orders_2024_01",) and got[2].tables == ("orders_2024_02",)
    # a new text of a known shape: no second sqlparse run, still its own tables
    done = c.templates_computed
    third = c.classify("SELECT * FROM orders_2025_11 WHERE id = 99")
    assert third.tables == ("orders_2025_11",) and c.templates_computed == done


def test_tables_follow_case_strings_joins_and_schemas() -> None:
    from rds_slowlog.fingerprint.classify import classifier_for

    c = classifier_for("mysql")
    assert c.classify("select * from Orders").tables == ("Orders",)
    assert c.classify("select * from orders").tables == ("orders",)
    a = c.classify("SELECT a FROM db1.t1 JOIN t22 ON x WHERE y IN (SELECT z FROM t3) AND n = 'sbtest9'")
    b = c.classify("SELECT a FROM db4.t7 JOIN t22 ON x WHERE y IN (SELECT z FROM t30) AND n = 'zz'")
    assert a.tables == ("db1.t1", "t22", "t3") and b.tables == ("db4.t7", "t22", "t30")
    assert a.query_id == b.query_id
    pg = classifier_for("postgres")
    assert pg.classify("SELECT * FROM part_7 WHERE x = 'it''s 5'").tables == ("part_7",)


def test_tables_of_a_shape_are_read_once_and_rendered_exactly() -> None:
    from rds_slowlog.fingerprint.classify import render_tables, table_key, table_template, _SQ_STRINGS

    shape, runs = table_key("UPDATE sbtest12 SET k=k+1 WHERE id=5043 AND c='a1'", _SQ_STRINGS["mysql"])
    assert shape == "UPDATE sbtest0 SET k=k+0 WHERE id=0 AND c=''" and runs == ["12", "1", "5043"]
    kind, template = table_template(shape)
    assert kind == "UPDATE" and render_tables(template, runs) == ("sbtest12",)


def test_long_inserts_cost_their_head_and_share_a_shape() -> None:
    from rds_slowlog.fingerprint.classify import classifier_for

    c = classifier_for("mysql")
    rows = [",".join(f"({i},'{i:011d}-{i:011d}','x')" for i in range(n)) for n in (40000, 60000)]
    a = c.classify(f"INSERT INTO sbtest3(k,c,pad) VALUES {rows[0]}")
    b = c.classify(f"INSERT INTO sbtest12(k,c,pad) VALUES {rows[1]}")
    assert a.tables == ("sbtest3",) and b.tables == ("sbtest12",) and a.query_id == b.query_id
    assert c.templates_computed == 1          # one shape: the head, cut back to its last whole row


def test_every_shortcut_gives_what_the_full_table_pass_gives() -> None:
    """The cached paths (digit key as shape, key → template, runs before the first string, rendered objects)
    must name exactly the tables that ``table_key`` + ``table_template`` + ``render_tables`` name."""
    import random

    from rds_slowlog.fingerprint.classify import (_SQ_STRINGS, classifier_for, render_tables, table_key,
                                                  table_template)

    rng = random.Random(2)
    for engine in ("mysql", "postgres"):
        c = classifier_for(engine)
        for _ in range(3000):
            n = rng.randint(1, 12)
            q = rng.choice([
                f"INSERT INTO sbtest{n}(k,c) VALUES ({rng.randint(1, 9999)},'{rng.randint(1, 10**9)}-x')",
                f"SELECT c FROM sbtest{n} WHERE c='{rng.randint(1, 99)}' AND id={rng.randint(1, 99)}",
                f"SELECT '{n}' FROM t{n} JOIN u{rng.randint(1, 3)} ON a=1",
                f"UPDATE db{n}.t{rng.randint(1, 4)} SET v='{n}a' WHERE id={n}",
                f"select * from orders_2024_{n:02d} where id in ({', '.join(str(rng.randint(1, 99)) for _ in range(n))})",
            ])
            shape, runs = table_key(q, _SQ_STRINGS[engine])
            assert c.classify(q).tables == render_tables(table_template(shape)[1], runs), q
