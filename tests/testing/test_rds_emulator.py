"""The RDS log API emulator, driven by real boto3/botocore over HTTP.

The point of these tests is that a downloader tested against the emulator meets the same wire protocol
and failure modes as against RDS: botocore must parse every response and map every error onto its
modelled exception classes, and the bytes served must be exactly the bytes on disk.
"""
from __future__ import annotations

import gzip
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from rds_slowlog.parsers.base import RDS_TRUNCATION_MARKER
from rds_slowlog.testing import Faults, InstanceSpec, RdsEmulator, layout_hourly
from rds_slowlog.testing.rds_emulator import BINARY_FILE_MESSAGE, MYSQL_CURRENT, rotated_name

UTC = timezone.utc
START = datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
NO_RETRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}  # no retry at all


def mysql_source(entries: int = 300, step: int = 37) -> bytes:
    """An RDS MySQL 5.7 slow log spanning a few hours, with CRLF, XML specials and multibyte text."""
    parts = [
        b"/rdsdbbin/mysql/bin/mysqld, Version: 5.7.28-log (Source distribution). started with:\n"
        b"Tcp port: 3306  Unix socket: /tmp/mysql.sock\nTime                 Id Command    Argument\n"
    ]
    for i in range(entries):
        t = START + timedelta(seconds=i * step)
        parts.append(
            f"# Time: {t:%Y-%m-%dT%H:%M:%S}.{i:06d}Z\n"
            f"# User@Host: app[app] @  [10.0.0.{i % 250}]  Id: {i}\n"
            f"# Query_time: 0.{i:04d}  Lock_time: 0.000010 Rows_sent: 1  Rows_examined: {i}\n"
            f"SET timestamp={int(t.timestamp())};\n"
            f"SELECT * FROM t WHERE a = {i} AND b = '<&> é';\r\n".encode()
        )
    return b"".join(parts)


def pg_source(lines: int = 200, step: int = 61) -> bytes:
    out = [b"2024-03-01 10:29:59 UTC::@:[100]:LOG:  database system is ready to accept connections\n"]
    for i in range(lines):
        t = START + timedelta(seconds=i * step)
        out.append(
            f"{t:%Y-%m-%d %H:%M:%S} UTC:10.0.0.1(5432):app@db:[{1000 + i}]:LOG:  duration: {i}.5 ms  "
            f"statement: SELECT {i}\n\tFROM t\n".encode()
        )
    return b"".join(out)


def write(path: Path, data: bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def walk(client, instance: str, name: str, lines: int | None = None) -> tuple[bytes, list[dict]]:
    """Marker walk from "0" until AdditionalDataPending is false; return the bytes and the responses."""
    marker, out, responses = "0", [], []
    while True:
        kwargs = {"DBInstanceIdentifier": instance, "LogFileName": name, "Marker": marker}
        if lines is not None:
            kwargs["NumberOfLines"] = lines
        r = client.download_db_log_file_portion(**kwargs)
        responses.append(r)
        out.append(r["LogFileData"].encode())
        marker = r["Marker"]
        if not r["AdditionalDataPending"]:
            return b"".join(out), responses


@pytest.fixture()
def mysql_logs(tmp_path: Path) -> tuple[Path, bytes]:
    data = mysql_source()
    src = write(tmp_path / "source.log", data)
    root = tmp_path / "logs" / "db-1"
    layout_hourly(src, root, "mysql")
    return root, data


# ------------------------------------------------------------------------------------------ layout

def test_layout_mysql_is_byte_preserving_and_splits_on_time_lines(tmp_path: Path) -> None:
    data = mysql_source()
    src = write(tmp_path / "source.log", data)
    pieces = layout_hourly(src, tmp_path / "db", "mysql")
    assert b"".join(p.read_bytes() for p in pieces) == data
    assert pieces[-1] == tmp_path / "db" / MYSQL_CURRENT
    assert [p.name for p in pieces[:-1]] == [
        "mysql-slowquery.log.2024-03-01.10", "mysql-slowquery.log.2024-03-01.11", "mysql-slowquery.log.2024-03-01.12"
    ]
    for hour, piece in enumerate(pieces, start=10):
        text = piece.read_bytes()
        times = [line for line in text.split(b"\n") if line.startswith(b"# Time: ")]
        assert times and all(t.startswith(b"# Time: 2024-03-01T%02d:" % hour) for t in times)
        if hour > 10:
            assert text.startswith(b"# Time: ")  # a piece starts at an entry boundary
        end = datetime(2024, 3, 1, hour + 1, tzinfo=UTC).timestamp()
        assert piece.stat().st_mtime == end  # LastWritten = end of the hour
    assert pieces[0].read_bytes().startswith(b"/rdsdbbin/mysql/bin/mysqld")  # banner stays with the first hour


def test_layout_never_opens_an_earlier_hour_and_reads_old_time_format(tmp_path: Path) -> None:
    data = (
        b"# Time: 240301 10:59:59\nselect 1;\n"
        b"# Time: 240301 11:00:01\nselect 2;\n"
        b"# Time: 240301 10:59:58\nselect 3;\n"  # clock went backwards: stays in hour 11
        b"# Time: 2024-03-01T13:00:00+01:00\nselect 4;\n"  # 12:00 UTC
    )
    src = write(tmp_path / "s.log", data)
    pieces = layout_hourly(src, tmp_path / "db", "mysql", current=False)
    assert [p.name[-5:] for p in pieces] == ["01.10", "01.11", "01.12"]
    assert pieces[1].read_bytes() == b"# Time: 240301 11:00:01\nselect 2;\n# Time: 240301 10:59:58\nselect 3;\n"
    assert b"".join(p.read_bytes() for p in pieces) == data


def test_layout_postgres_from_gzip_keeps_continuation_lines(tmp_path: Path) -> None:
    data = pg_source()
    src = write(tmp_path / "pg.log.gz", gzip.compress(data))
    pieces = layout_hourly(src, tmp_path / "db", "postgres")
    assert b"".join(p.read_bytes() for p in pieces) == data
    assert [p.relative_to(tmp_path / "db").as_posix() for p in pieces] == [
        f"error/postgresql.log.2024-03-01-{h}" for h in ("10", "11", "12", "13")
    ]
    for piece in pieces[1:]:
        assert piece.read_bytes()[:1].isdigit()
        assert not piece.read_bytes().startswith(b"\t")


def test_layout_numbered_style_names_and_refuses_to_overwrite(tmp_path: Path) -> None:
    src = write(tmp_path / "s.log", mysql_source(entries=100))
    pieces = layout_hourly(src, tmp_path / "db", "mysql", current=False, style="numbered")
    assert [p.name for p in pieces] == ["mysql-slowquery.log.10", "mysql-slowquery.log.11"]
    long = b"".join(b"# Time: 2024-03-%02dT%02d:00:00Z\nselect 1;\n" % (1 + h // 24, h % 24) for h in range(26))
    with pytest.raises(ValueError, match="two different hours"):
        layout_hourly(write(tmp_path / "l.log", long), tmp_path / "db2", "mysql", style="numbered")


# ------------------------------------------------------------------------------------------ listing

def test_listing_sorted_by_name_with_filters_and_paging(tmp_path: Path) -> None:
    root = tmp_path / "db-1"
    base = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
    for h in (0, 1, 2, 15, 20):
        write(root / f"slowquery/mysql-slowquery.log.{h}", b"x" * (10 * h + 1), mtime=base + h * 3600 + 0.5)
    write(root / "error/mysql-error.log", b"err\n", mtime=base)
    with RdsEmulator({"db-1": InstanceSpec(root=root)}) as emu:
        c = emu.client(**NO_RETRY)
        pages = list(c.get_paginator("describe_db_log_files").paginate(
            DBInstanceIdentifier="db-1", PaginationConfig={"PageSize": 2}))
        assert len(pages) == 3 and "Marker" in pages[0] and "Marker" not in pages[-1]
        files = [f for p in pages for f in p["DescribeDBLogFiles"]]
        assert [f["LogFileName"] for f in files] == ["error/mysql-error.log"] + [
            f"slowquery/mysql-slowquery.log.{s}" for s in ("0", "1", "15", "2", "20")
        ]
        by_name = {f["LogFileName"]: f for f in files}
        f15 = by_name["slowquery/mysql-slowquery.log.15"]
        assert f15["Size"] == 151 and f15["LastWritten"] == int((base + 15 * 3600) * 1000) + 500

        def names(**kw):
            r = c.describe_db_log_files(DBInstanceIdentifier="db-1", **kw)
            return [f["LogFileName"].rsplit(".", 1)[-1] for f in r["DescribeDBLogFiles"]]

        assert names(FilenameContains="slowquery.log.1") == ["1", "15"]
        assert names(FileLastWritten=f15["LastWritten"]) == ["15", "20"]  # "written since" is inclusive
        assert names(FileSize=151) == ["20"]  # "larger than" is strict
        assert names(FilenameContains="nothing") == []


def test_listing_default_page_is_100_and_directory_layout_detects_engine(tmp_path: Path) -> None:
    for h in range(105):
        write(tmp_path / "pg-1" / rotated_name("postgres", 474_000 + h), b"l\n")
    write(tmp_path / "my-1" / MYSQL_CURRENT, b"")
    with RdsEmulator(logs_dir=tmp_path) as emu:
        assert emu.instances["pg-1"].engine == "postgres" and emu.instances["my-1"].engine == "mysql"
        c = emu.client(**NO_RETRY)
        first = c.describe_db_log_files(DBInstanceIdentifier="pg-1")
        assert len(first["DescribeDBLogFiles"]) == 100
        rest = c.describe_db_log_files(DBInstanceIdentifier="pg-1", Marker=first["Marker"])
        assert len(rest["DescribeDBLogFiles"]) == 5 and "Marker" not in rest


# ------------------------------------------------------------------------------------------ portions

def test_tail_without_marker(tmp_path: Path) -> None:
    lines = [b"line %05d\n" % i for i in range(12_000)]
    write(tmp_path / "db-1" / MYSQL_CURRENT, b"".join(lines))
    with RdsEmulator(logs_dir=tmp_path) as emu:
        c = emu.client(**NO_RETRY)
        r = c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=MYSQL_CURRENT)
        assert r["LogFileData"].encode() == b"".join(lines[-10_000:])
        assert r["AdditionalDataPending"] is False
        r = c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=MYSQL_CURRENT, NumberOfLines=3)
        assert r["LogFileData"].encode() == b"".join(lines[-3:])
        assert r["Marker"].split(":")[1] == str(sum(map(len, lines)))


def test_marker_walk_from_zero_reconstructs_exact_bytes(mysql_logs: tuple[Path, bytes]) -> None:
    root, data = mysql_logs
    with RdsEmulator({"db-1": InstanceSpec(root=root)}) as emu:
        c = emu.client(**NO_RETRY)
        listing = c.describe_db_log_files(DBInstanceIdentifier="db-1")["DescribeDBLogFiles"]
        ordered = sorted(listing, key=lambda f: f["LastWritten"])
        got = []
        for f in ordered:
            body, responses = walk(c, "db-1", f["LogFileName"], lines=37)
            assert len(body) == f["Size"]
            assert len(responses) > 1
            assert all(":" in r["Marker"] for r in responses)
            got.append(body)
        assert b"".join(got) == data  # CRLF, '<&>' and UTF-8 survive the XML round trip
        # botocore's own paginator walks the file only when started at token "0"
        name = ordered[0]["LogFileName"]
        pages = c.get_paginator("download_db_log_file_portion").paginate(
            DBInstanceIdentifier="db-1", LogFileName=name, PaginationConfig={"StartingToken": "0", "PageSize": 50})
        assert "".join(p["LogFileData"] for p in pages).encode() == (root / name).read_bytes()


def test_truncation_loses_bytes_and_halving_lines_avoids_it(mysql_logs: tuple[Path, bytes]) -> None:
    root, _ = mysql_logs
    name = rotated_name("mysql", datetime(2024, 3, 1, 11, tzinfo=UTC))
    full = (root / name).read_bytes()
    with RdsEmulator({"db-1": InstanceSpec(root=root)}, faults={"truncate": 4096}) as emu:
        c = emu.client(**NO_RETRY)
        r = c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=name, Marker="0",
                                           NumberOfLines=200)
        got = r["LogFileData"].encode()
        assert got.endswith(RDS_TRUNCATION_MARKER) and got[:-len(RDS_TRUNCATION_MARKER)] == full[:4096]
        offset = int(r["Marker"].split(":")[1])
        assert offset == len(b"".join(full.splitlines(keepends=True)[:200])) > 4096  # the rest is lost
        assert emu.calls[-1].truncated
        # the robust loop: halve NumberOfLines while the response is truncated
        marker, lines, out = "0", 200, []
        while True:
            r = c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=name, Marker=marker,
                                               NumberOfLines=lines)
            chunk = r["LogFileData"].encode()
            if chunk.endswith(RDS_TRUNCATION_MARKER):
                lines //= 2
                continue
            out.append(chunk)
            marker = r["Marker"]
            if not r["AdditionalDataPending"]:
                break
        assert b"".join(out) == full


def test_default_cap_is_one_megabyte_and_one_huge_line_is_always_cut(tmp_path: Path) -> None:
    body = b"".join(b"%06d " % i + b"q" * 193 + b"\n" for i in range(6000))  # 1.2 MB in 6000 lines
    big_line = b"z" * 1_100_000 + b"\n"
    write(tmp_path / "db-1" / MYSQL_CURRENT, body + big_line)
    with RdsEmulator(logs_dir=tmp_path) as emu:
        c = emu.client(**NO_RETRY)
        r = c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=MYSQL_CURRENT, Marker="0")
        assert r["LogFileData"].encode() == body[:1_000_000] + RDS_TRUNCATION_MARKER
        assert r["Marker"].endswith(f":{len(body) + len(big_line)}") and r["AdditionalDataPending"] is False
        r = c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=MYSQL_CURRENT,
                                           Marker=f"0:{len(body)}", NumberOfLines=1)
        assert r["LogFileData"].encode() == big_line[:1_000_000] + RDS_TRUNCATION_MARKER


def test_early_additional_data_pending_false(mysql_logs: tuple[Path, bytes]) -> None:
    root, _ = mysql_logs
    name = rotated_name("mysql", datetime(2024, 3, 1, 11, tzinfo=UTC))
    full = (root / name).read_bytes()
    with RdsEmulator({"db-1": InstanceSpec(root=root)}, faults={"early_pending_false": 0.4}) as emu:
        c = emu.client(**NO_RETRY)
        naive, responses = walk(c, "db-1", name, lines=20)
        assert 0.4 * len(full) <= len(naive) < len(full)
        assert full.startswith(naive)
        rest = _walk_from(c, "db-1", name, 20, responses[-1]["Marker"])
        assert naive + rest == full


def test_stop_short_claims_the_end_until_used_up(mysql_logs: tuple[Path, bytes]) -> None:
    """``stop_short=N``: past the early fraction, N answers carry no data, pending false and the same marker
    (the end claimed outright, across files); then the walk from that marker gets the rest again."""
    root, _ = mysql_logs
    name = rotated_name("mysql", datetime(2024, 3, 1, 11, tzinfo=UTC))
    full = (root / name).read_bytes()
    with RdsEmulator({"db-1": InstanceSpec(root=root)}, faults={"early_pending_false": 0.4, "stop_short": 2}) as emu:
        c = emu.client(**NO_RETRY)
        naive, responses = walk(c, "db-1", name, lines=20)
        marker = responses[-1]["Marker"]
        assert 0.4 * len(full) <= len(naive) < len(full)
        for _ in range(2):
            r = c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=name, Marker=marker,
                                               NumberOfLines=20)
            assert (r["LogFileData"], r["Marker"], r["AdditionalDataPending"]) == ("", marker, False)
        assert emu.faults.stop_short == 0
        assert naive + _walk_from(c, "db-1", name, 20, marker) == full


def test_stop_short_instance_keeps_the_answers_for_one_instance(mysql_logs: tuple[Path, bytes]) -> None:
    """``stop_short_instance``: another instance's walk past the early fraction gets its data (the N answers
    are not spent on it), the named instance's does not."""
    root, _ = mysql_logs
    name = rotated_name("mysql", datetime(2024, 3, 1, 11, tzinfo=UTC))
    full = (root / name).read_bytes()
    specs = {"db-1": InstanceSpec(root=root), "db-2": InstanceSpec(root=root)}
    faults = {"early_pending_false": 0.4, "stop_short": 1, "stop_short_instance": "db-2"}
    with RdsEmulator(specs, faults=faults) as emu:
        assert emu.faults.stop_short_instance == "db-2"
        c = emu.client(**NO_RETRY)
        naive, responses = walk(c, "db-1", name, lines=20)
        assert naive + _walk_from(c, "db-1", name, 20, responses[-1]["Marker"]) == full
        assert emu.faults.stop_short == 1
        naive, responses = walk(c, "db-2", name, lines=20)
        marker = responses[-1]["Marker"]
        r = c.download_db_log_file_portion(DBInstanceIdentifier="db-2", LogFileName=name, Marker=marker,
                                           NumberOfLines=20)
        assert (r["LogFileData"], r["Marker"], r["AdditionalDataPending"]) == ("", marker, False)
        assert emu.faults.stop_short == 0


def test_complete_file_denied_answers_403_access_denied(mysql_logs: tuple[Path, bytes]) -> None:
    """As with an IAM policy lacking rds:DownloadCompleteDBLogFile; the portion API still answers."""
    root, _ = mysql_logs
    with RdsEmulator({"db-1": InstanceSpec(root=root)}, faults={"complete_file_denied": 1}) as emu:
        req = AWSRequest(method="GET", url=emu.complete_log_url("db-1", MYSQL_CURRENT))
        SigV4Auth(Credentials("test", "test"), "rds", "us-east-1").add_auth(req)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(req.url, headers=dict(req.headers)), timeout=10)
        assert err.value.code == 403 and b"<Code>AccessDenied</Code>" in err.value.read()
        assert emu.count("DownloadCompleteDBLogFile", error="AccessDenied") == 1
        c = emu.client(**NO_RETRY)
        assert c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=MYSQL_CURRENT,
                                              Marker="0", NumberOfLines=1)["LogFileData"]


def _walk_from(client, instance: str, name: str, lines: int, marker: str) -> bytes:
    """Keep reading past a premature AdditionalDataPending=false until the marker stops moving."""
    out = []
    while True:
        r = client.download_db_log_file_portion(DBInstanceIdentifier=instance, LogFileName=name, Marker=marker,
                                                NumberOfLines=lines)
        out.append(r["LogFileData"].encode())
        if r["Marker"] == marker and not r["LogFileData"]:
            return b"".join(out)
        marker = r["Marker"]


# ------------------------------------------------------------------------------------------ faults and errors

def test_throttling_raises_without_retries_and_is_retried_by_standard_mode(mysql_logs: tuple[Path, bytes]) -> None:
    root, _ = mysql_logs
    with RdsEmulator({"db-1": InstanceSpec(root=root)}, faults={"throttle_every": 2}) as emu:
        c = emu.client(**NO_RETRY)
        c.describe_db_log_files(DBInstanceIdentifier="db-1")
        with pytest.raises(ClientError) as err:
            c.describe_db_log_files(DBInstanceIdentifier="db-1")
        e = err.value.response
        assert e["Error"]["Code"] == "Throttling" and e["Error"]["Message"] == "Rate exceeded"
        assert e["ResponseMetadata"]["HTTPStatusCode"] == 400 and e["ResponseMetadata"]["RequestId"]
        retrying = emu.client(retries={"mode": "standard", "max_attempts": 3})
        retrying.describe_db_log_files(DBInstanceIdentifier="db-1")  # call 3
        r = retrying.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=MYSQL_CURRENT,
                                                  Marker="0", NumberOfLines=5)  # call 4 throttled, 5 ok
        assert r["ResponseMetadata"]["RetryAttempts"] == 1
        assert emu.count(error="Throttling") == 2 and emu.count() == 5


def test_errors_map_to_modelled_exceptions(tmp_path: Path) -> None:
    write(tmp_path / "db-1" / MYSQL_CURRENT, b"ok\n")
    write(tmp_path / "db-1" / "slowquery/mysql-slowquery.log.3", b"select 1;\n\x00\x01binary\n")
    with RdsEmulator(logs_dir=tmp_path) as emu:
        c = emu.client(**NO_RETRY)
        with pytest.raises(c.exceptions.DBInstanceNotFoundFault) as err:
            c.describe_db_log_files(DBInstanceIdentifier="db-2")
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        with pytest.raises(c.exceptions.DBInstanceNotFoundFault):
            c.download_db_log_file_portion(DBInstanceIdentifier="db-2", LogFileName=MYSQL_CURRENT)
        for missing in ("slowquery/nope.log", "../db-1/" + MYSQL_CURRENT, "/etc/passwd"):
            with pytest.raises(c.exceptions.DBLogFileNotFoundFault) as err:
                c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=missing, Marker="0")
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        with pytest.raises(ClientError) as err:
            c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName="slowquery/mysql-slowquery.log.3",
                                           Marker="0")
        assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert err.value.response["Error"]["Message"] == BINARY_FILE_MESSAGE
        with pytest.raises(ClientError, match="InvalidParameterValue"):
            c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=MYSQL_CURRENT, Marker="x:y")
        req = urllib.request.Request(emu.endpoint_url + "/", method="POST",
                                     data=b"Action=DescribeDBLogFiles&Version=2014-10-31&DBInstanceIdentifier=db-1")
        with pytest.raises(urllib.error.HTTPError) as http_err:
            urllib.request.urlopen(req, timeout=5)
        assert http_err.value.code == 403 and b"MissingAuthenticationToken" in http_err.value.read()


def test_slow_fault_delays_responses(tmp_path: Path) -> None:
    write(tmp_path / "db-1" / MYSQL_CURRENT, b"ok\n")
    with RdsEmulator(logs_dir=tmp_path, faults=Faults(slow=0.3)) as emu:
        c = emu.client(**NO_RETRY)
        t0 = time.monotonic()
        c.describe_db_log_files(DBInstanceIdentifier="db-1")
        assert time.monotonic() - t0 >= 0.3


def test_fault_parsing() -> None:
    f = Faults.parse(["throttle_every=3", "early-pending-false=0.25", "slow", "truncate=512"])
    assert (f.throttle_every, f.early_pending_false, f.slow, f.cap) == (3, 0.25, 0.5, 512)
    assert Faults.from_mapping({"portion_cap": 100, "truncate": 5000}).cap == 100
    with pytest.raises(ValueError, match="unknown fault"):
        Faults.parse(["explode=1"])


# ------------------------------------------------------------------------------------------ complete file (REST)

def signed_get(url: str) -> urllib.request.Request:
    req = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("test", "test"), "rds", "us-east-1").add_auth(req)
    prepared = req.prepare()
    return urllib.request.Request(prepared.url, headers=dict(prepared.headers), method="GET")


def test_download_complete_log_file_streams_exact_bytes(tmp_path: Path) -> None:
    data = mysql_source(entries=2000) + b"\x00 binary is fine here\n"  # ~0.5 MB, several 64 KB chunks
    write(tmp_path / "db-1" / MYSQL_CURRENT, data)
    with RdsEmulator(logs_dir=tmp_path) as emu:
        for version in ("v13", "v19"):
            with urllib.request.urlopen(signed_get(emu.complete_log_url("db-1", MYSQL_CURRENT, version)),
                                        timeout=10) as resp:
                assert resp.status == 200 and resp.headers["Transfer-Encoding"] == "chunked"
                assert resp.read() == data
        assert emu.count("DownloadCompleteDBLogFile") == 2 and emu.calls[-1].data_bytes == len(data)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(emu.complete_log_url("db-1", MYSQL_CURRENT), timeout=5)
        assert err.value.code == 403
        for url, code in ((emu.complete_log_url("db-1", "slowquery/none.log"), b"DBLogFileNotFoundFault"),
                          (emu.complete_log_url("db-9", MYSQL_CURRENT), b"DBInstanceNotFound")):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(signed_get(url), timeout=5)
            assert err.value.code == 404 and code in err.value.read()


# ------------------------------------------------------------------------------------------ live files

def test_append_is_visible_and_marker_resumes(mysql_logs: tuple[Path, bytes]) -> None:
    root, _ = mysql_logs
    with RdsEmulator({"db-1": InstanceSpec(root=root)}) as emu:
        c = emu.client(**NO_RETRY)
        before, responses = walk(c, "db-1", MYSQL_CURRENT)
        marker = responses[-1]["Marker"]
        extra = b"# Time: 2024-03-01T13:59:00Z\nselect 'new';\n"
        size = emu.append("db-1", None, extra)
        assert size == len(before) + len(extra)
        listed = c.describe_db_log_files(DBInstanceIdentifier="db-1", FilenameContains="log")["DescribeDBLogFiles"]
        current = next(f for f in listed if f["LogFileName"] == MYSQL_CURRENT)
        assert current["Size"] == size and current["LastWritten"] >= int(time.time() * 1000) - 5000
        r = c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=MYSQL_CURRENT, Marker=marker)
        assert r["LogFileData"].encode() == extra and r["AdditionalDataPending"] is False


def test_rotate_mysql_renames_current_and_faults_during_rotation(mysql_logs: tuple[Path, bytes]) -> None:
    root, _ = mysql_logs
    current = (root / MYSQL_CURRENT).read_bytes()
    with RdsEmulator({"db-1": InstanceSpec(root=root)}, faults={"notfound_during_rotation": 2}) as emu:
        c = emu.client(**NO_RETRY)
        rotated = emu.rotate("db-1")
        assert rotated == "slowquery/mysql-slowquery.log.2024-03-01.13"
        assert (root / rotated).read_bytes() == current and (root / MYSQL_CURRENT).read_bytes() == b""
        for _ in range(2):
            with pytest.raises(c.exceptions.DBLogFileNotFoundFault):
                c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=rotated, Marker="0")
        body, _ = walk(c, "db-1", rotated)
        assert body == current
        emu.append("db-1", None, b"after rotation\n")
        r = c.download_db_log_file_portion(DBInstanceIdentifier="db-1", LogFileName=MYSQL_CURRENT, Marker="0")
        assert r["LogFileData"] == "after rotation\n"


def test_rotate_postgres_opens_next_hour(tmp_path: Path) -> None:
    src = write(tmp_path / "pg.log", pg_source())
    root = tmp_path / "logs" / "pg-1"
    layout_hourly(src, root, "postgres")
    with RdsEmulator(logs_dir=tmp_path / "logs") as emu:
        assert emu.current_file("pg-1") == "error/postgresql.log.2024-03-01-13"
        assert emu.rotate("pg-1") == "error/postgresql.log.2024-03-01-14"
        emu.append("pg-1", None, "2024-03-01 14:00:01 UTC::@:[1]:LOG:  checkpoint starting: time\n")
        c = emu.client(**NO_RETRY)
        r = c.download_db_log_file_portion(DBInstanceIdentifier="pg-1",
                                           LogFileName="error/postgresql.log.2024-03-01-14", NumberOfLines=1)
        assert r["LogFileData"].startswith("2024-03-01 14:00:01") and r["Marker"].startswith("14:")


# ------------------------------------------------------------------------------------------ CLI

def test_cli_serves_until_sigterm(mysql_logs: tuple[Path, bytes]) -> None:
    root, _ = mysql_logs
    proc = subprocess.Popen(
        [sys.executable, "-m", "rds_slowlog.testing.rds_emulator", "--logs", str(root), "--instance", "db-7",
         "--fault", "throttle_every=1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "emulator did not print its endpoint"
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("endpoint_url=http://127.0.0.1:")
        emu = RdsEmulator({})
        emu.host, emu.port = "127.0.0.1", int(line.rsplit(":", 1)[1])
        files = emu.client(**NO_RETRY).describe_db_log_files(DBInstanceIdentifier="db-7")["DescribeDBLogFiles"]
        assert MYSQL_CURRENT in [f["LogFileName"] for f in files]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_describe_db_instances_lists_tags_for_discovery(tmp_path) -> None:
    import boto3

    from rds_slowlog.testing.rds_emulator import InstanceSpec, RdsEmulator

    (tmp_path / "a" / "slowquery").mkdir(parents=True)
    (tmp_path / "b" / "error").mkdir(parents=True)
    specs = {"a": InstanceSpec(root=tmp_path / "a", engine="mariadb", tags={"slowlog": "on", "team": "x<y"}),
             "b": InstanceSpec(root=tmp_path / "b", engine="postgres")}
    with RdsEmulator(specs) as emu:
        rds = boto3.client("rds", region_name="us-east-1", endpoint_url=emu.endpoint_url,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        dbs = rds.describe_db_instances()["DBInstances"]
        assert [(d["DBInstanceIdentifier"], d["Engine"], {t["Key"]: t["Value"] for t in d["TagList"]})
                for d in dbs] == [("a", "mariadb", {"slowlog": "on", "team": "x<y"}), ("b", "postgres", {})]
        assert [d["DBInstanceIdentifier"] for d in rds.describe_db_instances(DBInstanceIdentifier="b")
                ["DBInstances"]] == ["b"]
