"""Issue 4's acceptance test: every source yields byte streams that parse into the entries of the original file.

Each log — the committed real MariaDB, MySQL 8 (RDS) and PostgreSQL 15 samples, plus generated multi-hour
MySQL and PostgreSQL logs that span several hourly files — is served

* by the RDS API emulator (hourly RDS files, ``DownloadDBLogFilePortion`` with throttling, early
  ``AdditionalDataPending=false``, slow responses and response truncation all switched on),
* by CloudWatch Logs in moto (published once as one event per entry/record and once as one event per line),
* by S3 in moto through s3fs (the same hourly files, some of them gzip/bzip2-compressed),

and each source's streams are parsed with the same parser as the original file. The entries must agree on
everything a document is made of (query, duration, end_time, start_time, user, host, ip, db, thread_id,
attrs, flags, truncated). What legitimately differs is provenance: ``source`` names the file/stream of each
source, and ``offset``/``line`` count from the start of each hourly file (RDS, S3) — so they are checked to be
the original offsets minus the bytes of the earlier files — while CloudWatch's one stream per instance keeps
the original offsets.
"""
from __future__ import annotations

import bz2
import gzip
import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from rds_slowlog.entry import Entry
from rds_slowlog.pipeline import read_stream
from rds_slowlog.sources import LogSource, RdsLogSource, make_rds_client
from rds_slowlog.sources.cloudwatch import CloudWatchLogSource, log_group_names, make_logs_client
from rds_slowlog.sources.objectstore import ObjectStoreLogSource
from rds_slowlog.testing import Faults, InstanceSpec, RdsEmulator, layout_hourly
from tests.moto_server import (  # noqa: F401 - fixtures
    KEY_ID,
    REGION,
    SECRET,
    NoSleepTime,
    aws_credentials,
    cloudwatch_events,
    fast_botocore,
    moto_endpoint,
    put_events,
    recent_shift,
)
from tests.sources.test_rds import mysql_log, pg_log, sample

pytestmark = pytest.mark.usefixtures("aws_credentials")

#: name → (engine, bytes or a generator). Samples are real server output (include/sample_logs/).
LOGS: dict[str, tuple[str, Callable[[], bytes | None]]] = {
    "mariadb-sample": ("mysql", lambda: sample("mariadb-slowquery.log")),
    "mysql80-rds-sample": ("mysql", lambda: sample("mysql80-rds-slowquery.log")),
    "postgresql-sample": ("postgres", lambda: sample("postgresql.log")),
    "mysql-generated-4h": ("mysql", lambda: mysql_log(entries=500)),
    "postgres-generated-4h": ("postgres", lambda: pg_log(lines=400)),
}
CONTENT = ("engine", "query", "duration", "end_time", "start_time", "user", "host", "ip", "db", "thread_id",
           "attrs", "flags", "truncated")


def content(e: Entry) -> tuple[Any, ...]:
    return tuple(getattr(e, name) for name in CONTENT)


def parse_all(source: LogSource, engine: str, refs: list[Any]) -> tuple[list[Entry], list[Any]]:
    entries: list[Entry] = []
    reports = []
    for ref in refs:
        stream = source.open(ref)
        with stream:
            entries.extend(read_stream(stream, ref.name, engine).entries)
        reports.append(stream.report)
    return entries, reports


def check_file_offsets(direct: list[Entry], got: list[Entry], refs: list[Any], sizes: dict[str, int]) -> None:
    """Offsets restart in each file: original offset == offset in file + bytes of the files before it."""
    base, before = {}, 0
    for ref in refs:
        base[ref.name] = before
        before += sizes[ref.name]
    assert [e.offset + base[e.source] for e in got] == [e.offset for e in direct]
    assert {e.source for e in got} <= set(base)


@pytest.fixture(params=list(LOGS))
def log(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, bytes, Path, list[Path], list[Entry]]:
    engine, make = LOGS[request.param]
    data = make()
    if data is None:
        pytest.skip(f"{request.param}: include/sample_logs is not in this checkout")
    path = tmp_path / "original.log"
    path.write_bytes(data)
    root = tmp_path / "rds" / "db-1"
    pieces = layout_hourly(path, root, engine)
    direct = list(read_stream(io.BytesIO(data), str(path), engine).entries)
    assert len(direct) >= 10
    return engine, data, root, pieces, direct


def test_rds_api_with_faults(log: tuple[str, bytes, Path, list[Path], list[Entry]],
                             fast_botocore: NoSleepTime) -> None:
    engine, data, root, pieces, direct = log
    longest = max(len(line) for line in data.splitlines(keepends=True))
    faults = Faults(throttle_every=4, early_pending_false=0.3, slow=0.001, truncate=max(1500, longest + 1))
    with RdsEmulator({"db-1": InstanceSpec(root=root, engine=engine)}, faults=faults) as emu:
        client = make_rds_client(REGION, endpoint_url=emu.endpoint_url, max_attempts=6)
        src = RdsLogSource(client, "db-1", engine, complete_file=False, number_of_lines=60, pace=0,
                           sleep=lambda s: None)
        refs = src.list_files(0, 4e9)
        assert [r.name for r in refs] == [p.relative_to(root).as_posix() for p in pieces]
        got, reports = parse_all(src, engine, refs)
        assert emu.count(error="Throttling") > 0
        assert any(c.truncated for c in emu.calls if c.action == "DownloadDBLogFilePortion")
    assert all(r.complete and not r.losses and r.method == "portions" for r in reports)
    assert [content(e) for e in got] == [content(e) for e in direct]
    check_file_offsets(direct, got, refs, {r.name: (root / r.name).stat().st_size for r in refs})


@pytest.mark.parametrize("mode", ["record", "line"])
def test_cloudwatch_logs(log: tuple[str, bytes, Path, list[Path], list[Entry]], moto_endpoint: str,
                         mode: str) -> None:
    engine, data, _root, _pieces, direct = log
    first = min(e.end_time for e in direct if e.end_time is not None)
    shift = recent_shift(first)
    events = cloudwatch_events(data, engine, mode, shift)
    logs = make_logs_client(REGION, moto_endpoint, max_attempts=3)
    inst = f"db-{uuid.uuid4().hex[:10]}"
    put_events(logs, log_group_names(inst, engine=engine)[0], inst, events)
    src = CloudWatchLogSource(logs, inst, page_limit=500, pace=0)  # engine from the group that exists
    refs = src.list_files(first + shift - 3600, first + shift + 6 * 3600)
    assert len(refs) == 1 and refs[0].engine == engine
    got, reports = parse_all(src, engine, refs)
    assert reports[0].complete and reports[0].bytes == len(data)
    assert [content(e) for e in got] == [content(e) for e in direct]
    assert [e.offset for e in got] == [e.offset for e in direct]  # one stream: the original offsets
    assert {e.source for e in got} == {refs[0].name}


def test_s3_archive(log: tuple[str, bytes, Path, list[Path], list[Entry]], moto_endpoint: str) -> None:
    engine, _data, root, pieces, direct = log
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    bucket = f"archive-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    sizes = {}
    for i, p in enumerate(pieces):  # archived as people do: older hours compressed, under their RDS names
        rel = p.relative_to(root).as_posix()
        body, suffix = p.read_bytes(), ""
        if i < len(pieces) - 1 or len(pieces) == 1:
            body, suffix = (gzip.compress(body), ".gz") if i % 2 == 0 else (bz2.compress(body), ".bz2")
        key = f"rds-logs/db-1/{rel}{suffix}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        sizes[f"s3://{bucket}/{key}"] = p.stat().st_size
    src = ObjectStoreLogSource(f"s3://{bucket}/rds-logs/db-1", engine,
                               storage_options={"endpoint_url": moto_endpoint, "key": KEY_ID, "secret": SECRET})
    refs = src.list_files(0, 4e9)
    assert [r.name for r in refs] == list(sizes)
    got, reports = parse_all(src, engine, refs)
    assert all(r.complete for r in reports) and any(r.method != "read" for r in reports)
    assert [content(e) for e in got] == [content(e) for e in direct]
    check_file_offsets(direct, got, refs, sizes)
