from __future__ import annotations

import math
import random

from rds_slowlog.digest import EXACT_VALUES, Digest, Metric
from rds_slowlog.entry import Entry
from rds_slowlog.fingerprint.classify import QueryClass

QA = QueryClass("select ?", "AAAA", "AA", "SELECT", ("t",))
QB = QueryClass("update t set a=?", "BBBB", "BB", "UPDATE", ("t",))


def _e(d: float, t: float, **attrs) -> Entry:
    return Entry("mysql", "q", duration=d, end_time=t, attrs=attrs, db="db1", user="app")


def test_metric_exact_percentiles_small() -> None:
    m = Metric()
    for v in [5, 1, 4, 2, 3]:
        m.add(v)
    assert (m.min, m.max, m.total, m.avg) == (1, 5, 15, 3)
    assert m.percentile(0.5) == 3 and m.percentile(0.95) == 5


def test_metric_buckets_within_five_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(0, 2) for _ in range(EXACT_VALUES * 20)]
    m = Metric()
    for v in values:
        m.add(v)
    assert m.buckets is not None and len(m.pending) < EXACT_VALUES   # switched to bounded buckets
    true = sorted(values)
    for p in (0.5, 0.95):
        exact = true[math.ceil(p * len(values)) - 1]
        assert abs(m.percentile(p) - exact) / exact <= 0.05
    assert math.isclose(m.total, sum(values))


def test_digest_ranks_by_total_time_and_filters_window() -> None:
    d = Digest(since=100, until=200)
    d.add(_e(1.0, 150, Lock_time=0.1, Rows_sent=3, Full_scan=True), QA)
    d.add(_e(1.0, 160, Lock_time=0.2, Rows_sent=5, Full_scan=False), QA)
    d.add(_e(5.0, 170), QB)
    d.add(_e(9.0, 250), QB)          # outside the window
    assert d.filtered_out == 1
    assert [c.qc.query_id for c in d.ranked()] == ["BBBB", "AAAA"]
    js = d.as_pt_json()
    assert js["global"]["query_count"] == 3 and js["global"]["unique_query_count"] == 2
    a = js["classes"][1]
    assert a["checksum"] == "AAAA" and a["query_count"] == 2
    assert a["metrics"]["Query_time"]["sum"] == "2.000000"
    assert a["metrics"]["Rows_sent"]["sum"] == "8"
    assert a["metrics"]["Full_scan"] == {"yes": "1"}
    assert a["metrics"]["db"] == {"value": "db1"}
    assert a["ts_min"] == "1970-01-01 00:02:30" and a["ts_max"] == "1970-01-01 00:02:40"
    text = d.as_text()
    assert "0xBBBB" in text and "0xAAAA" in text and text.index("0xBBBB") < text.index("0xAAAA")


def test_global_line_is_the_merge_of_all_classes() -> None:
    rng = random.Random(3)
    d = Digest()
    values = []
    for i in range(EXACT_VALUES * 3):
        v = rng.choice([0.0, rng.expovariate(10)])
        values.append(v)
        d.add(_e(v, 100 + i, Rows_sent=i % 7), QA if i % 3 else QB)
    d.add(_e(0.5, 50), QueryClass("x", "CCCC", "CC", "SELECT", ()))  # a small, exact class
    values.append(0.5)
    g = d.total.metrics["Query_time"]
    assert g.count == len(values) and math.isclose(g.total, sum(values))
    assert g.min == min(values) and g.max == max(values)
    exact = sorted(values)[math.ceil(0.95 * len(values)) - 1]
    assert abs(g.percentile(0.95) - exact) <= 0.05 * exact
    assert g.percentile(0.5) == 0.0 or sorted(values)[len(values) // 2] > 0
    assert d.total.metrics["Rows_sent"].total == sum(i % 7 for i in range(EXACT_VALUES * 3))
    assert d.total.first_seen == 50 and d.total.count == len(values)


def test_in_window_is_by_write_time_with_open_ends() -> None:
    from rds_slowlog.entry import in_window

    assert in_window(100, 100, 200) and not in_window(200, 100, 200)   # [since, until)
    assert in_window(5, None, None) and in_window(None, None, None)
    assert not in_window(None, 0, None) and not in_window(None, None, 10)
