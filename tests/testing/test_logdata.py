"""``spread_over_hours`` on a log written in fewer seconds than there are hours (a fast server: the benchmark
log of ``make bench-logs`` can hold 700,000 entries in 22 seconds) — it is then cut inside a second too."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path

from rds_slowlog.pipeline import read_stream
from rds_slowlog.testing.logdata import spread_over_hours

SAMPLE = Path(__file__).resolve().parents[2] / "include" / "sample_logs" / "mariadb-slowquery.log"
FIRST = datetime(2026, 11, 30, 0, tzinfo=timezone.utc).timestamp()


def _entries(data: bytes) -> list:
    return list(read_stream(io.BufferedReader(io.BytesIO(data)), "x", "mysql").entries)


def test_a_log_with_fewer_seconds_than_hours_fills_every_hour() -> None:
    data = SAMPLE.read_bytes()
    seconds = len(re.findall(rb"^# Time: ", data, re.M))
    hours = seconds + 7
    spread = spread_over_hours(data, "mysql", FIRST, hours=hours)
    before, after = _entries(data), _entries(spread)
    # every entry kept, in order, with its own text; every hour holds some, each in the hour of its part
    assert [e.query for e in after] == [e.query for e in before]
    got = [int((e.end_time - FIRST) // 3600) for e in after if e.end_time is not None]
    assert got == sorted(got) and set(got) == set(range(hours))
    # the only bytes added are repeated "# Time:" lines (one per part cut inside a second)
    added = len(re.findall(rb"^# Time: ", spread, re.M)) - seconds
    assert 0 < added < hours
    strip = re.compile(rb"^# Time: .*\n|timestamp=\d+", re.M)
    assert strip.sub(b"", spread) == strip.sub(b"", data)


def test_a_log_with_enough_seconds_is_cut_only_at_timed_entries() -> None:
    data = SAMPLE.read_bytes()
    spread = spread_over_hours(data, "mysql", FIRST, hours=3)
    assert len(re.findall(rb"^# Time: ", spread, re.M)) == len(re.findall(rb"^# Time: ", data, re.M))
    assert len(_entries(spread)) == len(_entries(data))
