"""The CloudWatch Logs source against moto in server mode, through a real boto3 ``logs`` client over HTTP.

Logs are published the two ways RDS could send them — one event per slow-log entry (multi-line messages) and
one event per line — within PutLogEvents' rules (chronological batches, size and count caps, recent timestamps:
the test logs' times are shifted by whole hours into the last days). The promise: the stream of a log stream's
events over a window is the original text of exactly the events in that window.
"""
from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rds_slowlog.pipeline import read_stream
from rds_slowlog.sources import LogSource, Resume
from rds_slowlog.sources.cloudwatch import CloudWatchLogSource, log_group_names, make_logs_client
from tests.moto_server import (  # noqa: F401 - fixtures
    REGION,
    aws_credentials,
    cloudwatch_events,
    moto_endpoint,
    put_events,
    recent_shift,
    split_events,
)
from tests.sources.test_rds import START, mysql_log, pg_log

pytestmark = pytest.mark.usefixtures("aws_credentials")


def rebuild(events: list[tuple[int, str]]) -> bytes:
    return b"".join(m.encode() + (b"" if m.endswith("\n") else b"\n") for _, m in events)


def read_all(stream: Any, block: int = 5003) -> bytes:
    out = []
    with stream:
        while chunk := stream.read(block):
            out.append(chunk)
    return b"".join(out)


@pytest.fixture()
def logs(moto_endpoint: str) -> Any:
    return make_logs_client(REGION, moto_endpoint, max_attempts=3)


def uid() -> str:
    return uuid.uuid4().hex[:10]


# ------------------------------------------------------------------------------------------ names

def test_log_group_names() -> None:
    assert log_group_names("db-1", engine="mysql") == ["/aws/rds/instance/db-1/slowquery"]
    assert log_group_names("db-1", engine="aurora-postgresql") == ["/aws/rds/instance/db-1/postgresql"]
    assert log_group_names(cluster="c-1", engine="mariadb") == ["/aws/rds/cluster/c-1/slowquery"]
    assert log_group_names("db-1") == ["/aws/rds/instance/db-1/slowquery", "/aws/rds/instance/db-1/postgresql"]
    with pytest.raises(ValueError):
        log_group_names("db-1", cluster="c-1")
    with pytest.raises(ValueError):
        log_group_names()


def test_split_events_rebuilds_the_bytes() -> None:
    data = b"head\r\n\n\nA1\nA2\n\n# B\nB1 \xc3\xa9\r\n\n"
    records = [0, 8, 15]  # "head", "A1 A2 <blank>", "# B …" (records start at line starts)
    for mode in ("record", "line"):
        ev = split_events(data, records, [(0, 1.0), (15, 2.5), (16, 2.0)], mode)
        assert rebuild(ev) == data
        assert all(m for _, m in ev)  # CloudWatch refuses empty messages
        assert [t for t, _ in ev] == sorted(t for t, _ in ev)  # and unordered batches
    assert split_events(data, records, [(0, 1.0), (15, 2.5)], "record") == [
        (1000, "head\r\n\n\n"), (1000, "A1\nA2\n\n"), (2500, "# B\nB1 é\r\n\n")]


# ------------------------------------------------------------------------------------------ reading

@pytest.mark.parametrize("mode", ["record", "line"])
@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_stream_is_the_original_text(logs: Any, engine: str, mode: str) -> None:
    data = mysql_log(entries=300) if engine == "mysql" else pg_log(lines=250)
    shift = recent_shift(START.timestamp())
    events = cloudwatch_events(data, engine, mode, shift)
    assert rebuild(events) == data  # the upload itself loses nothing
    inst = f"db-{uid()}"
    group = log_group_names(inst, engine=engine)[0]
    assert put_events(logs, group, inst, events) == len(events)

    src = CloudWatchLogSource(logs, inst, engine, page_limit=97, pace=0)
    assert isinstance(src, LogSource)
    (ref,) = src.list_files(0, 4e9)
    assert (ref.kind, ref.instance, ref.engine, ref.name) == ("cloudwatch", inst, engine, f"{group}/{inst}")
    assert ref.extra["first_event_ms"] == events[0][0]
    stream = src.open(ref)
    body = read_all(stream)
    assert body == data
    rep = stream.report
    assert (rep.method, rep.complete, rep.bytes, rep.losses, rep.error) == (
        "filter_log_events", True, len(data), [], None)
    assert rep.calls == -(-len(events) // 97)  # pages of 97 events, nextToken followed to the end

    # parsing the stream gives the entries of the original, only the provenance differs
    direct = list(read_stream(io.BytesIO(data), "orig", engine).entries)
    via = list(read_stream(src.open(ref), ref.name, engine).entries)
    assert [(e.query, e.duration, e.end_time, e.offset) for e in via] == [
        (e.query, e.duration, e.end_time, e.offset) for e in direct]
    assert {e.source for e in via} == {ref.name}


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_window_reads_exactly_its_events(logs: Any, engine: str) -> None:
    data = mysql_log(entries=400) if engine == "mysql" else pg_log(lines=300)
    shift = recent_shift(START.timestamp())
    events = cloudwatch_events(data, engine, "record", shift)
    inst = f"db-{uid()}"
    put_events(logs, log_group_names(inst, engine=engine)[0], inst, events)
    src = CloudWatchLogSource(logs, inst, pace=0)  # engine unknown: both groups tried, the missing one skipped
    h = (START.timestamp() + shift) // 3600 * 3600
    for start, end in ((h + 3600, h + 7200), (h + 1800.5, h + 5400.25), (h + 1800, h + 1860)):
        (ref,) = src.list_files(start, end)
        assert ref.engine == engine
        expected = rebuild([(t, m) for t, m in events if start * 1000 <= t < end * 1000])
        assert expected and read_all(src.open(ref)) == expected
    assert src.list_files(h - 7200, h) == []
    assert src.list_files(h + 86400, h + 90000) == []


def test_listing_streams_of_a_cluster_and_probe(logs: Any) -> None:
    cluster = f"c-{uid()}"
    group = log_group_names(cluster=cluster, engine="mysql")[0]
    t0 = int(recent_shift(0) * 1000) // 3_600_000 * 3_600_000  # an hour two days ago
    hour = 3_600_000
    put_events(logs, group, "inst-a", [(t0 + 10, "# Time: a1"), (t0 + 2 * hour + 5, "# Time: a2")])
    put_events(logs, group, "inst-b", [(t0 + hour + 7, "# Time: b1")])
    logs.create_log_stream(logGroupName=group, logStreamName="inst-empty")
    src = CloudWatchLogSource(logs, cluster=cluster, engine="mysql", pace=0)
    s = t0 / 1000

    def names(start: float, end: float, source: CloudWatchLogSource = src) -> list[str]:
        return [r.extra["log_stream"] for r in source.list_files(start, end)]

    assert names(s, s + 3 * 3600) == ["inst-a", "inst-b"]  # by first event, never the empty stream
    # inst-a has events before and after [s+1h, s+2h) but none inside: metadata alone cannot tell
    assert names(s + 3600, s + 7200) == ["inst-b"]
    assert names(s + 3600, s + 7200, CloudWatchLogSource(logs, cluster=cluster, engine="mysql", pace=0,
                                                         probe=False)) == ["inst-a", "inst-b"]
    assert names(s + 2 * 3600, s + 3 * 3600) == ["inst-a"]
    assert names(s + 0.011, s + 3600) == []  # startTime is inclusive from the next millisecond on
    assert names(s + 0.010, s + 0.0105) == ["inst-a"]  # [10 ms, 10.5 ms) holds the event at 10 ms
    (ref,) = src.list_files(s + 2 * 3600, s + 3 * 3600)
    assert read_all(src.open(ref)) == b"# Time: a2\n"


def test_resume_from_checkpoint(logs: Any) -> None:
    data = mysql_log(entries=200)
    events = cloudwatch_events(data, "mysql", "line", recent_shift(START.timestamp()))
    inst = f"db-{uid()}"
    put_events(logs, log_group_names(inst, engine="mysql")[0], inst, events)
    src = CloudWatchLogSource(logs, inst, "mysql", page_limit=50, pace=0)
    (ref,) = src.list_files(0, 4e9)
    stream = src.open(ref)
    head = stream.read(len(data) // 2)
    cp = stream.checkpoint()
    stream.close()
    assert cp.marker is not None and cp.offset <= len(head)  # a page start: resumable with its token
    resumed = src.open(ref, resume=cp)
    assert resumed.tell() == cp.offset
    assert head[:cp.offset] + read_all(resumed) == data
    # without a token: skip bytes from the start
    again = src.open(ref, resume=Resume(None, 12345))
    assert read_all(again) == data[12345:]


# ------------------------------------------------------------------------------------------ failures

class _FlakyLogs:
    """A logs client double: the first calls are throttled after botocore gave up, then real answers."""

    def __init__(self, real: Any, fail: int) -> None:
        self.real = real
        self.fail = fail
        self.calls = 0

    def filter_log_events(self, **kw: Any) -> Any:
        self.calls += 1
        if self.calls <= self.fail:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                               "ResponseMetadata": {"RetryAttempts": 2}}, "FilterLogEvents")
        return self.real.filter_log_events(**kw)

    def describe_log_streams(self, **kw: Any) -> Any:
        return self.real.describe_log_streams(**kw)


def test_throttling_is_retried_a_bounded_number_of_times(logs: Any) -> None:
    inst = f"db-{uid()}"
    t = int(recent_shift(0) * 1000)
    put_events(logs, log_group_names(inst, engine="mysql")[0], inst, [(t, "# Time: x\nSELECT 1;")])
    sleeps: list[float] = []
    flaky = _FlakyLogs(logs, fail=2)
    src = CloudWatchLogSource(flaky, inst, "mysql", pace=0, probe=False, sleep=sleeps.append, backoff=0.5)
    (ref,) = src.list_files(0, 4e9)
    stream = src.open(ref)
    assert read_all(stream) == b"# Time: x\nSELECT 1;\n"
    assert stream.report.retries == 2 * 2 + 2 and stream.report.calls == 3 and sleeps == [0.5, 1.0]
    flaky.calls, flaky.fail = 0, 99
    stream = CloudWatchLogSource(flaky, inst, "mysql", pace=0, probe=False, sleep=sleeps.append,
                                 max_tries=3).open(ref)
    with pytest.raises(ClientError):
        stream.read()
    assert flaky.calls == 3 and "ThrottlingException" in (stream.report.error or "")


def test_missing_group_lists_nothing_and_other_errors_raise(logs: Any, moto_endpoint: str) -> None:
    assert CloudWatchLogSource(logs, f"db-{uid()}", pace=0).list_files(0, 4e9) == []
    bad = make_logs_client(REGION, moto_endpoint + "/nope", max_attempts=1)
    with pytest.raises(ClientError):
        CloudWatchLogSource(bad, "db-1", "mysql", pace=0).list_files(0, 4e9)
