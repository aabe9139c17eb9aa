"""The object-store / local source: fsspec over local directories and over S3 (moto in server mode, s3fs).

Logs are laid out as RDS writes them (``layout_hourly``) and archived as people do: some pieces compressed
(gzip, bzip2, xz) under their RDS names plus a suffix, uploaded later (object times are upload times). The
promise: the window picks the right files by the hour in their names, and each stream is the original
(decompressed) bytes of its file.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from rds_slowlog.pipeline import read_stream
from rds_slowlog.sources import LogSource, Resume
from rds_slowlog.sources.objectstore import ObjectStoreLogSource, name_first_written, open_decompressed
from rds_slowlog.testing import layout_hourly
from rds_slowlog.testing.rds_emulator import MYSQL_CURRENT
from tests.moto_server import KEY_ID, REGION, SECRET, aws_credentials, moto_endpoint  # noqa: F401 - fixtures
from tests.sources.test_rds import mysql_log, pg_log, ts

COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


def read_all(stream: Any, block: int = 6007) -> bytes:
    out = []
    with stream:
        while chunk := stream.read(block):
            out.append(chunk)
    return b"".join(out)


def archive(tmp_path: Path, data: bytes, engine: str,
            compress: dict[int, str] | None = None) -> tuple[Path, list[str]]:
    """Hourly RDS files under ``<root>/<slowquery|error>/``; piece i compressed with ``compress[i]``'s suffix."""
    src = tmp_path / "source.log"
    src.write_bytes(data)
    root = tmp_path / "archive" / "db-1"
    pieces = layout_hourly(src, root, engine)
    names = []
    for i, p in enumerate(pieces):
        suffix = (compress or {}).get(i)
        if suffix:
            target = p.with_name(p.name + suffix)
            target.write_bytes(COMPRESS[suffix](p.read_bytes()))
            os.utime(target, (p.stat().st_mtime,) * 2)
            p.unlink()
            p = target
        names.append(p.relative_to(root).as_posix())
    return root, names


# ------------------------------------------------------------------------------------------ names

def test_name_first_written() -> None:
    assert name_first_written("x/y/mysql-slowquery.log.2024-03-01.10.gz") == ("mysql", ts(10), True)
    assert name_first_written("postgresql.log.2024-03-01-1030.bz2") == ("postgres", ts(10, 30), True)
    assert name_first_written("mysql-slowquery.log.10", ts(11)) == ("mysql", ts(10), True)
    assert name_first_written("slowquery/mysql-slowquery.log") == ("mysql", None, False)
    for other in ("slow.log", "postgres.log", "mysql-error.log", "mysql-slowquery.log.x", "postgresql.log"):
        assert name_first_written(other, ts(10)) is None


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2", ".xz"])
def test_open_decompressed_detects_by_magic(suffix: str) -> None:
    data = b"# Time: 2024-03-01T10:00:00Z\nSELECT 1;\n" * 50
    blob = COMPRESS[suffix](data) if suffix else data
    for f in (io.BytesIO(blob), io.BufferedReader(io.BytesIO(blob))):  # without and with peek
        stream, codec = open_decompressed(f)
        assert stream.read() == data
        assert codec == ({"": None, ".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}[suffix])


# ------------------------------------------------------------------------------------------ local

def test_local_directory_window_and_bytes(tmp_path: Path) -> None:
    data = mysql_log()
    root, names = archive(tmp_path, data, "mysql", {0: ".gz", 1: ".bz2"})
    assert names == ["slowquery/mysql-slowquery.log.2024-03-01.10.gz",
                     "slowquery/mysql-slowquery.log.2024-03-01.11.bz2",
                     "slowquery/mysql-slowquery.log.2024-03-01.12", MYSQL_CURRENT]
    (root / "slowquery" / ".partial").write_bytes(b"junk")  # hidden: never listed
    (root / "error").mkdir()
    (root / "error" / "postgresql.log.2024-03-01-11").write_bytes(b"")  # other engine: filtered by name
    src = ObjectStoreLogSource(root, "mysql")
    assert isinstance(src, LogSource) and src.kind == "local" and src.instance == "db-1"

    def listed(start: float, end: float) -> list[str]:
        return [Path(r.name).relative_to(root).as_posix() for r in src.list_files(start, end)]

    assert listed(ts(10), ts(11)) == names[:1]
    assert listed(ts(10, 59), ts(11, 1)) == names[:2]
    assert listed(ts(11, 30), ts(12, 30)) == names[1:]  # current file: began no earlier than 12:00
    assert listed(ts(12, 1), ts(14)) == names[2:]
    assert listed(ts(13, 15), ts(13, 45)) == names[3:]
    assert listed(ts(9), ts(10)) == []
    assert listed(ts(15), ts(16)) == []  # the current file was last written at 14:00
    refs = src.list_files(0, 4e9)
    got = []
    for ref, name in zip(refs, names, strict=True):
        assert (ref.kind, ref.engine, ref.instance) == ("local", "mysql", "db-1")
        assert ref.name == str(root / name) and ref.uri == f"file://{root / name}"
        assert ref.size == (root / name).stat().st_size
        stream = src.open(ref)
        body = read_all(stream)
        rep = stream.report
        assert rep.complete and rep.bytes == len(body) and rep.error is None
        assert rep.method == {".gz": "read+gzip", ".bz2": "read+bz2"}.get(Path(name).suffix, "read")
        got.append(body)
    assert b"".join(got) == data
    both = ObjectStoreLogSource(root)  # no engine: the PostgreSQL file is listed too
    assert [r.engine for r in both.list_files(ts(11), ts(11, 30))] == ["mysql", "postgres"]


def test_postgres_names_and_locations_of_every_kind(tmp_path: Path) -> None:
    data = pg_log()
    root, names = archive(tmp_path, data, "postgres", {2: ".xz"})
    assert names[0] == "error/postgresql.log.2024-03-01-10" and names[2].endswith(".xz")
    urls: list[Any] = [root, str(root), f"file://{root}", root / "error"]
    for loc in urls:
        src = ObjectStoreLogSource(loc, "postgres", instance="pg-1")
        refs = src.list_files(ts(11, 30), ts(12, 30))
        assert [Path(r.name).name for r in refs] == [Path(n).name for n in names[1:3]], loc
        assert refs[0].instance == "pg-1"
    # the last hour file covers an hour (or up to its mtime)
    src = ObjectStoreLogSource(root)
    last = names[-1]
    assert [Path(r.name).name for r in src.list_files(ts(14, 10), ts(14, 20))] == [Path(last).name]
    # a single file as the location
    one = ObjectStoreLogSource(root / names[2])
    (ref,) = one.list_files(0, 4e9)
    assert read_all(one.open(ref)) == lzma.decompress((root / names[2]).read_bytes())


def test_files_without_an_hour_are_chosen_by_mtime(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    for name, mtime in (("old-slow.log", ts(9)), ("slow.log.gz", ts(12)), ("notes.txt", ts(12))):
        (d / name).write_bytes(gzip.compress(b"x\n") if name.endswith(".gz") else b"x\n")
        os.utime(d / name, (mtime, mtime))
    src = ObjectStoreLogSource(d)
    assert [Path(r.name).name for r in src.list_files(ts(10), ts(11))] == ["notes.txt", "slow.log.gz"]
    assert [Path(r.name).name for r in src.list_files(ts(8), ts(9))] == ["old-slow.log", "notes.txt",
                                                                         "slow.log.gz"]
    only = ObjectStoreLogSource(d, pattern="*.log*")
    assert [r.engine for r in only.list_files(ts(10), ts(11))] == [None]  # the pipeline sniffs the engine
    assert ObjectStoreLogSource(d, recursive=False).list_files(ts(12), ts(13))


@pytest.mark.parametrize("compressed", [False, True])
def test_resume_skips_decompressed_bytes(tmp_path: Path, compressed: bool) -> None:
    data = mysql_log(entries=120)
    path = tmp_path / ("mysql-slowquery.log" + (".gz" if compressed else ""))
    path.write_bytes(gzip.compress(data) if compressed else data)
    src = ObjectStoreLogSource(path)
    (ref,) = src.list_files(0, 4e9)
    stream = src.open(ref)
    head = stream.read(10_001)
    cp = stream.checkpoint()
    stream.close()
    assert cp == Resume(None, 10_001)
    resumed = src.open(ref, resume=cp)
    assert resumed.tell() == 10_001
    assert head + read_all(resumed) == data


# ------------------------------------------------------------------------------------------ S3 (moto)

@pytest.fixture()
def bucket(moto_endpoint: str, aws_credentials: None) -> tuple[Any, str]:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    name = f"logs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return s3, name


def upload(s3: Any, bucket: str, prefix: str, root: Path, names: list[str]) -> None:
    for n in names:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{n}", Body=(root / n).read_bytes())


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_s3_prefix_through_s3fs(tmp_path: Path, moto_endpoint: str, bucket: tuple[Any, str], engine: str) -> None:
    s3, name = bucket
    data = mysql_log() if engine == "mysql" else pg_log()
    root, names = archive(tmp_path, data, engine, {1: ".gz"})
    upload(s3, name, "rds/db-1", root, names)
    s3.put_object(Bucket=name, Key="rds/db-1/README", Body=b"not a log")  # uploaded now: kept by mtime…
    opts = {"endpoint_url": moto_endpoint, "key": KEY_ID, "secret": SECRET}
    src = ObjectStoreLogSource(f"s3://{name}/rds/db-1", engine, storage_options=opts, pattern="*log*")
    assert src.kind == "objectstore" and src.instance == "db-1"
    refs = src.list_files(ts(11), ts(12))
    assert [r.name for r in refs] == [f"s3://{name}/rds/db-1/{names[1]}"]  # …but the pattern drops it
    unfiltered = ObjectStoreLogSource(f"s3://{name}/rds/db-1", engine, storage_options=opts)
    assert [r.name.rsplit("/", 1)[1] for r in unfiltered.list_files(ts(11), ts(12))] == [
        names[1].rsplit("/", 1)[1], "README"]
    assert refs[0].engine == engine and refs[0].size == (root / names[1]).stat().st_size
    all_refs = src.list_files(0, 4e9)
    assert [r.uri for r in all_refs] == [f"s3://{name}/rds/db-1/{n}" for n in names]
    got = [read_all(src.open(r)) for r in all_refs]
    assert b"".join(got) == data
    # parsing through S3 gives the direct parse's entries; only the provenance names differ
    direct = list(read_stream(io.BytesIO(data), "orig", engine).entries)
    via = [e for r in all_refs for e in read_stream(src.open(r), r.name, engine).entries]
    assert [(e.query, e.duration, e.end_time, e.user, e.db, e.thread_id) for e in via] == [
        (e.query, e.duration, e.end_time, e.user, e.db, e.thread_id) for e in direct]


def test_s3_path_object_with_its_own_filesystem(moto_endpoint: str, bucket: tuple[Any, str]) -> None:
    upath = pytest.importorskip("upath")
    s3, name = bucket
    body = b"# Time: 2024-03-01T10:00:00Z\nSELECT 1;\n"
    s3.put_object(Bucket=name, Key="x/mysql-slowquery.log.2024-03-01.10.gz", Body=gzip.compress(body))
    path = upath.UPath(f"s3://{name}/x", endpoint_url=moto_endpoint, key=KEY_ID, secret=SECRET)
    src = ObjectStoreLogSource(path)
    (ref,) = src.list_files(ts(10), ts(11))
    stream = src.open(ref)
    assert read_all(stream) == body and stream.report.method == "read+gzip"
    missing = ObjectStoreLogSource(f"s3://{name}/x/nothing-here", storage_options={
        "endpoint_url": moto_endpoint, "key": KEY_ID, "secret": SECRET})
    assert missing.list_files(0, 4e9) == []
