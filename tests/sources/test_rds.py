"""The RDS log source against the project's RDS emulator, driven by real boto3/botocore over HTTP.

The promise under test: *the downloaded bytes equal the file, or the loss is exactly located and flagged* —
with each failure RDS is known for switched on alone and all together, by both download methods. botocore's
and the source's own waiting is patched out, so throttling costs no wall time.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from rds_slowlog.parsers.base import RDS_TRUNCATION_MARKER
from rds_slowlog.sources import LogFileRef, LogSource, Loss, Pacer, RdsLogSource, Resume, make_rds_client
from rds_slowlog.sources.rds import file_first_written
from rds_slowlog.testing import Faults, InstanceSpec, RdsEmulator, layout_hourly
from rds_slowlog.testing.rds_emulator import MYSQL_CURRENT
from tests.moto_server import NoSleepTime, aws_credentials, fast_botocore  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("aws_credentials")

UTC = timezone.utc
START = datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[2] / "include" / "sample_logs"


def ts(h: int, m: int = 0, day: int = 1) -> float:
    return datetime(2024, 3, day, h, m, tzinfo=UTC).timestamp()


# ------------------------------------------------------------------------------------------ test data

def mysql_log(entries: int = 900, step: int = 13) -> bytes:
    """An RDS MySQL 5.7-style slow log over ~3.5 hours: banner, multi-line queries, CRLF, XML specials, UTF-8."""
    parts = [
        b"/rdsdbbin/mysql/bin/mysqld, Version: 5.7.28-log (Source distribution). started with:\n"
        b"Tcp port: 3306  Unix socket: /tmp/mysql.sock\nTime                 Id Command    Argument\n"
    ]
    for i in range(entries):
        t = START + timedelta(seconds=i * step)
        where = " OR ".join(f"c{j} = {i * j}" for j in range(i % 9))
        query = (f"SELECT id, name FROM orders o\n  WHERE o.a = {i} AND o.note = '<&> Zoë'"
                 + (f" AND ({where})" if where else "") + (";\r\n" if i % 17 == 0 else ";\n"))
        parts.append(
            f"# Time: {t:%Y-%m-%dT%H:%M:%S}.{i:06d}Z\n"
            f"# User@Host: app[app] @  [10.0.0.{i % 250}]  Id: {100 + i % 7}\n"
            f"# Query_time: {i % 5}.{i:06d}  Lock_time: 0.000010 Rows_sent: {i % 3}  Rows_examined: {i * 3}\n"
            + ("use shop;\n" if i % 50 == 0 else "")
            + f"SET timestamp={int(t.timestamp())};\n{query}"
        )
    return "".join(p if isinstance(p, str) else p.decode() for p in parts).encode()


def pg_log(lines: int = 600, step: int = 23) -> bytes:
    """An RDS PostgreSQL log (prefix ``%t:%r:%u@%d:[%p]:``) over ~4 hours with multi-line statements."""
    out = [b"2024-03-01 10:29:59 UTC::@:[100]:LOG:  database system is ready to accept connections\n"]
    for i in range(lines):
        t = START + timedelta(seconds=i * step)
        head = f"{t:%Y-%m-%d %H:%M:%S} UTC:10.0.0.{i % 9}({40000 + i}):app@shop:[{1000 + i % 13}]:"
        if i % 11 == 0:
            out.append(f"{head}ERROR:  relation \"nope_{i}\" does not exist at character 15\n"
                       f"{head}STATEMENT:  SELECT * FROM nope_{i}\n".encode())
        else:
            out.append(f"{head}LOG:  duration: {i % 97}.{i % 1000:03d} ms  statement: SELECT name, '<&>'\n"
                       f"\tFROM customers\n\tWHERE id = {i}\n".encode())
    return b"".join(out)


def sample(name: str) -> bytes | None:
    """A committed sample log (real server output) when present; tests fall back to generated logs."""
    path = SAMPLES / name
    return path.read_bytes() if path.is_file() and path.stat().st_size > 0 else None


# ------------------------------------------------------------------------------------------ fixtures

def layout(tmp_path: Path, data: bytes, engine: str, instance: str = "db-1") -> tuple[Path, list[Path]]:
    src = tmp_path / f"{instance}.source.log"
    src.write_bytes(data)
    root = tmp_path / "logs" / instance
    return root, layout_hourly(src, root, engine)


def source(emu: RdsEmulator, instance: str = "db-1", engine: str | None = None, **kw: Any) -> tuple[RdsLogSource, list]:
    sleeps: list[float] = []
    client = make_rds_client("us-east-1", endpoint_url=emu.endpoint_url, max_attempts=6)
    kw.setdefault("pace", 0)
    return RdsLogSource(client, instance, engine, sleep=sleeps.append, **kw), sleeps


def ref_for(src: RdsLogSource, name: str) -> LogFileRef:
    (ref,) = [r for r in src.list_files(0, 4e9) if r.name == name]
    return ref


def settled(emu: RdsEmulator, action: str, expected: int, timeout: float = 5.0) -> int:
    """The emulator records a complete-file call after the last chunk is sent, a moment after we read it."""
    deadline = time.monotonic() + timeout
    while emu.count(action) < expected and time.monotonic() < deadline:
        time.sleep(0.005)
    return emu.count(action)


def read_all(stream: Any, block: int = 7919) -> bytes:
    """Read in odd-sized blocks, as a parser would, to exercise the buffering."""
    out = []
    with stream:
        while True:
            b = stream.read(block)
            if not b:
                return b"".join(out)
            out.append(b)


@pytest.fixture()
def mysql_emu(tmp_path: Path):
    root, pieces = layout(tmp_path, mysql_log(), "mysql")
    with RdsEmulator({"db-1": InstanceSpec(root=root, engine="mysql")}) as emu:
        yield emu, root, pieces


# ------------------------------------------------------------------------------------------ names and listing

def test_file_first_written_from_names() -> None:
    assert file_first_written("slowquery/mysql-slowquery.log.2024-03-01.10", None) == ("mysql", ts(10))
    assert file_first_written("slowquery/mysql-slowquery.log", ts(14)) == ("mysql", None)
    # the numbered ring only names the hour of day: dated by LastWritten (end of the hour, or just after)
    assert file_first_written("slowquery/mysql-slowquery.log.10", ts(11)) == ("mysql", ts(10))
    assert file_first_written("slowquery/mysql-slowquery.log.10", ts(10, 59)) == ("mysql", ts(10))
    assert file_first_written("slowquery/mysql-slowquery.log.23", ts(0, 0, day=2) + 0.4) == ("mysql", ts(23))
    assert file_first_written("error/postgresql.log.2024-03-01-10", None) == ("postgres", ts(10))
    assert file_first_written("error/postgresql.log.2024-03-01-1030", None) == ("postgres", ts(10, 30))
    for other in ("error/mysql-error.log", "error/postgres.log", "slowquery/mysql-slowquery.log.x",
                  "general/mysql-general.log"):
        assert file_first_written(other, ts(10)) is None


def test_list_files_mysql_window(mysql_emu) -> None:
    emu, root, pieces = mysql_emu
    src, _ = source(emu, engine="mysql")
    assert isinstance(src, LogSource)
    names = [p.relative_to(root).as_posix() for p in pieces]
    assert names == [f"slowquery/mysql-slowquery.log.2024-03-01.{h}" for h in (10, 11, 12)] + [MYSQL_CURRENT]

    def listed(start: float, end: float) -> list[str]:
        return [r.name for r in src.list_files(start, end)]

    # rotated files by their hour; the current file began no earlier than the newest rotated hour (12:00)
    assert listed(ts(10), ts(11)) == names[:1]
    assert listed(ts(11, 30), ts(12)) == names[1:2]
    assert listed(ts(11, 30), ts(12, 30)) == names[1:]
    assert listed(ts(12, 1), ts(14)) == names[2:]
    assert listed(ts(12), ts(14)) == names[1:]  # .11 was last written at 12:00: "written since" is inclusive
    assert listed(ts(13, 15), ts(13, 45)) == names[3:]
    assert listed(ts(15), ts(16)) == []  # nothing written since
    assert listed(ts(9), ts(10)) == []  # before the first hour
    refs = src.list_files(ts(10), ts(20))
    assert [r.name for r in refs] == names  # sorted by LastWritten
    r0 = refs[0]
    assert (r0.kind, r0.instance, r0.engine, r0.size) == ("rds", "db-1", "mysql", pieces[0].stat().st_size)
    assert r0.last_written == ts(11) and r0.extra["first_written"] == ts(10)
    assert refs[-1].extra == {"first_written_inferred": ts(12)}
    assert emu.calls[-1].params["FileLastWritten"] == str(int(ts(10) * 1000))


def test_the_current_file_is_growing_while_it_is_written_to(mysql_emu) -> None:
    """Only the file RDS still appends to, and only while it was written to a moment ago, may end inside an
    entry: the stage leaves that file's cut last entry out (rotated files are complete)."""
    emu, root, pieces = mysql_emu
    last = max(p.stat().st_mtime for p in pieces)
    for now, current_growing in ((ts(13, 50), True), (ts(13, 50) + 3600, False)):
        src, _ = source(emu, engine="mysql", now=lambda now=now: now)
        refs = src.list_files(ts(10), ts(20))
        assert [r.growing for r in refs] == [False, False, False, current_growing], (now, last)
    assert emu.calls[-1].params["FilenameContains"] == "slowquery/mysql-slowquery.log"


def test_list_files_pages_and_skips_other_logs(tmp_path: Path) -> None:
    root, pieces = layout(tmp_path, pg_log(), "postgres", "pg-1")
    (root / "error" / "postgres.log").write_bytes(b"startup\n")
    (root / "slowquery").mkdir()
    (root / "slowquery" / "mysql-slowquery.log").write_bytes(b"")
    with RdsEmulator({"pg-1": InstanceSpec(root=root, engine="postgres")}, default_max_records=2) as emu:
        src, _ = source(emu, "pg-1")  # engine unknown: both kinds of slow log are candidates
        names = [r.name for r in src.list_files(ts(10), ts(12))]
        assert names == [p.relative_to(root).as_posix() for p in pieces[:2]] + ["slowquery/mysql-slowquery.log"]
        assert emu.count("DescribeDBLogFiles") >= 3  # paged with Marker
        pg, _ = source(emu, "pg-1", "postgres")
        refs = pg.list_files(ts(11, 1), ts(13))
        assert [r.name for r in refs] == ["error/postgresql.log.2024-03-01-11", "error/postgresql.log.2024-03-01-12"]
        assert all(r.engine == "postgres" for r in refs)


# ------------------------------------------------------------------------------------------ complete file

@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_complete_file_download_is_byte_exact(tmp_path: Path, engine: str) -> None:
    data = (sample("mysql80-rds-slowquery.log") if engine == "mysql" else sample("postgresql.log")) or (
        mysql_log() if engine == "mysql" else pg_log())
    root, pieces = layout(tmp_path, data, engine)
    with RdsEmulator({"db-1": InstanceSpec(root=root, engine=engine)}) as emu:
        for version in ("v13", "v19"):
            emu.reset_calls()
            src, _ = source(emu, engine=engine, api_version=version)
            refs = src.list_files(0, 4e9)
            got = []
            for ref in refs:
                stream = src.open(ref)
                assert stream.name == ref.name and stream.tell() == 0
                body = read_all(stream)
                assert body == (root / ref.name).read_bytes()
                rep = stream.report
                assert (rep.method, rep.calls, rep.bytes, rep.complete, rep.losses) == (
                    "complete", 1, len(body), True, [])
                got.append(body)
            assert b"".join(got) == data
            assert settled(emu, "DownloadCompleteDBLogFile", len(refs)) == len(refs) == len(pieces)
            assert emu.count("DownloadDBLogFilePortion") == 0
            assert all(c.params["path"].startswith(f"/{version}/downloadCompleteLogFile/db-1/")
                       for c in emu.calls if c.action == "DownloadCompleteDBLogFile")


def test_complete_file_failure_falls_back_to_portions(mysql_emu) -> None:
    emu, root, _ = mysql_emu
    src, _ = source(emu, engine="mysql")
    emu.faults.notfound_during_rotation = 1
    rotated = emu.rotate("db-1")  # the current file is renamed; the next call naming it gets a 404
    ref = ref_for(src, rotated)
    stream = src.open(ref)  # the REST GET gets the 404, the portions succeed
    assert read_all(stream) == (root / rotated).read_bytes() and ref.size and stream.report.complete
    assert stream.report.method == "portions" and "404" in (stream.report.fallback or "")
    assert emu.count("DownloadCompleteDBLogFile", error="DBLogFileNotFoundFault") == 1
    assert emu.count("DownloadDBLogFilePortion") >= 1
    # without fallback the failure is raised
    strict, _ = source(emu, engine="mysql", fallback=False)
    again = emu.rotate("db-1")
    with pytest.raises(Exception, match="404"):
        strict.open(ref_for(strict, again))


def test_broken_complete_stream_continues_with_portions_after_delivered_bytes(mysql_emu) -> None:
    emu, root, _ = mysql_emu
    src, _ = source(emu, engine="mysql")
    name = "slowquery/mysql-slowquery.log.2024-03-01.12"
    ref = ref_for(src, name)
    real_open = src._open_complete

    class Breaking:
        """The real HTTP body, cut by a connection reset after 50,000 bytes."""

        def __init__(self, raw: Any) -> None:
            self.raw, self.left = raw, 50_000

        def readinto(self, b: Any) -> int:
            if self.left <= 0:
                raise ConnectionResetError("connection reset by peer")
            view = memoryview(b)[: self.left]
            n = self.raw.readinto(view)
            self.left -= n
            return n

        def read(self, n: int) -> bytes:
            return self.raw.read(n)

        def release_conn(self) -> None:
            self.raw.release_conn()

    src._open_complete = lambda r: Breaking(real_open(r))  # type: ignore[method-assign]
    stream = src.open(ref)
    assert read_all(stream) == (root / name).read_bytes()
    assert stream.report.method == "portions" and "ConnectionResetError" in stream.report.fallback
    assert stream.report.complete and stream.report.bytes == (root / name).stat().st_size


# ------------------------------------------------------------------------------------------ portions

FAULTS = {
    "none": {},
    "throttle_every": {"throttle_every": 3},
    "early_pending_false": {"early_pending_false": 0.3},
    "notfound_during_rotation": {"notfound_during_rotation": 3},
    "slow": {"slow": 0.002},
    "truncate": {"truncate": 1500},  # cuts multi-line portions, never a single line (all are < 1500 bytes)
    "all": {"throttle_every": 4, "early_pending_false": 0.3, "notfound_during_rotation": 2, "slow": 0.001,
            "truncate": 1500},
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_portion_download_is_byte_exact_under_faults(tmp_path: Path, fast_botocore: NoSleepTime, engine: str,
                                                     fault: str) -> None:
    data = mysql_log(entries=400) if engine == "mysql" else pg_log(lines=300)
    root, _ = layout(tmp_path, data, engine)
    with RdsEmulator({"db-1": InstanceSpec(root=root, engine=engine)}) as emu:
        src, sleeps = source(emu, engine=engine, complete_file=False, number_of_lines=40)
        refs = src.list_files(0, 4e9)
        emu.faults = Faults.from_mapping(FAULTS[fault])
        if emu.faults.notfound_during_rotation:
            rotated = emu.rotate("db-1")  # the file being read is renamed (MySQL) / a new one opened (PG)
            refs = src.list_files(0, 4e9)
        emu.reset_calls()
        got = []
        for ref in refs:
            stream = src.open(ref)
            body = read_all(stream)
            assert body == (root / ref.name).read_bytes(), ref.name
            rep = stream.report
            assert rep.method == "portions" and rep.complete and rep.losses == [] and rep.bytes == len(body)
            got.append(body)
        assert b"".join(got) == data
        portions = [c for c in emu.calls if c.action == "DownloadDBLogFilePortion"]
        assert sum(c.data_bytes for c in portions if c.status == 200 and not c.truncated) == len(data)
        if fault in ("throttle_every", "all"):
            assert emu.count(error="Throttling") > 0 and fast_botocore.slept  # botocore retried them
        if fault in ("early_pending_false", "all"):
            assert any(c.pending is False and int(c.marker.split(":")[1]) < (root / c.log_file).stat().st_size
                       for c in portions if c.status == 200)
        if fault in ("notfound_during_rotation", "all"):
            assert emu.count(error="DBLogFileNotFoundFault") > 0 and sleeps  # own bounded backoff
            assert rotated in [r.name for r in refs]
        if fault in ("truncate", "all"):
            assert any(c.truncated for c in portions)


def test_single_line_above_the_cap_is_flagged_at_the_exact_offset(tmp_path: Path) -> None:
    base = mysql_log(entries=60, step=5)
    big1 = "SELECT '" + "x" * 5000 + "';\n"
    big2 = "SELECT  '" + "é" * 2500 + "';\n"  # multibyte: the cap cuts inside a character
    data = (base + b"# Time: 2024-03-01T10:36:00.000001Z\n# Query_time: 9.5  Lock_time: 0.0 Rows_sent: 0  "
            b"Rows_examined: 0\nSET timestamp=1709289360;\n" + big1.encode()
            + b"# Time: 2024-03-01T10:36:01.000001Z\n# Query_time: 9.6  Lock_time: 0.0 Rows_sent: 0  "
            b"Rows_examined: 0\nSET timestamp=1709289361;\n" + big2.encode() + base[-400:].split(b"\n", 1)[1])
    cap = 1000
    assert sorted(len(line) for line in data.splitlines(keepends=True))[-3] < cap  # only the two big lines
    path = tmp_path / "db-1" / MYSQL_CURRENT
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    off1 = data.index(big1.encode())
    off2 = data.index(big2.encode())
    len1, len2 = len(big1.encode()), len(big2.encode())
    with RdsEmulator({"db-1": InstanceSpec(root=tmp_path / "db-1")}, faults={"truncate": cap}) as emu:
        src, _ = source(emu, engine="mysql", complete_file=False)
        stream = src.open(ref_for(src, MYSQL_CURRENT))
        body = read_all(stream)
        rep = stream.report
    cut1 = data[off1:off1 + cap].decode("utf-8", "replace").encode()
    cut2 = data[off2:off2 + cap].decode("utf-8", "replace").encode()  # a split "é" arrives as U+FFFD
    mark = RDS_TRUNCATION_MARKER + b"\n"
    expected = (data[:off1] + cut1 + mark + data[off1 + len1:off2] + cut2 + mark + data[off2 + len2:])
    assert body == expected
    shift = len(cut1) + len(mark) - len1  # stream offsets after the first loss move by this much
    assert rep.losses == [
        Loss(off1 + cap, len1 - cap, "line longer than the portion cap (RDS truncated it)"),
        Loss(off2 + shift + len(cut2), len2 - len(cut2), "line longer than the portion cap (RDS truncated it)"),
    ]
    assert len(cut2) == cap + 2  # the split "é" (1 byte kept) became U+FFFD (3 bytes): the loss is approximate
    assert body[rep.losses[0].offset:].startswith(RDS_TRUNCATION_MARKER)
    assert body[rep.losses[1].offset:].startswith(RDS_TRUNCATION_MARKER)
    assert not rep.complete and rep.truncations >= 2 and rep.lost_bytes == len1 - cap + len2 - len(cut2)
    assert src.portion_cap == cap  # the real cap was learnt from the truncated responses
    assert all(loss.permanent for loss in rep.losses) and rep.short == []   # asking again cannot help


def test_resume_from_a_saved_marker(mysql_emu) -> None:
    emu, root, _ = mysql_emu
    src, _ = source(emu, engine="mysql", complete_file=False, number_of_lines=25)
    name = "slowquery/mysql-slowquery.log.2024-03-01.11"
    full = (root / name).read_bytes()
    ref = ref_for(src, name)
    stream = src.open(ref)
    head = stream.read(len(full) // 2)
    point = stream.checkpoint()
    stream.close()
    assert point.marker is not None and 0 < point.offset <= len(head)
    assert full[: point.offset] == head[: point.offset]
    emu.reset_calls()
    resumed = src.open(ref, resume=point)
    assert resumed.tell() == point.offset and resumed.start_offset == point.offset
    rest = read_all(resumed)
    assert head[: point.offset] + rest == full
    first = next(c for c in emu.calls if c.action == "DownloadDBLogFilePortion")
    assert first.params["Marker"] == point.marker  # continued from the marker, not from "0"
    assert resumed.report.complete and resumed.report.bytes == len(full) - point.offset
    # a marker-less resume (after a complete-file download) skips bytes instead
    skip = src.open(ref, resume=Resume(None, 1234))
    assert read_all(skip) == full[1234:]


def test_empty_answers_never_rewind_and_are_bounded() -> None:
    """RDS sometimes answers with empty data and marker "" or "0" mid-file; the loop must not restart."""

    class Scripted:
        meta = None

        def __init__(self, answers: list[dict]) -> None:
            self.answers, self.markers = answers, []

        def download_db_log_file_portion(self, **kw: Any) -> dict:
            self.markers.append(kw["Marker"])
            return self.answers.pop(0) if self.answers else {"LogFileData": "", "Marker": "",
                                                             "AdditionalDataPending": True}

    client = Scripted([
        {"LogFileData": "a\nb\n", "Marker": "5:4", "AdditionalDataPending": True},
        {"LogFileData": "", "Marker": "0", "AdditionalDataPending": True},
        {"LogFileData": "c\n", "Marker": "5:6", "AdditionalDataPending": True},
    ])
    sleeps: list[float] = []
    src = RdsLogSource(client, "db-1", "mysql", complete_file=False, pace=0, sleep=sleeps.append, max_tries=3)
    stream = src.open(LogFileRef("rds", "db-1", MYSQL_CURRENT, size=10))
    assert read_all(stream) == b"a\nb\nc\n"
    assert client.markers[:4] == ["0", "5:4", "5:4", "5:6"]
    assert len(client.markers) == 3 + 3  # three answers, then three stalls (max_tries) and it gives up
    assert stream.report.losses == [Loss(6, None, "no progress although RDS reports more data pending")]
    assert not stream.report.complete and len(sleeps) == 3  # one per empty answer


def test_short_file_is_flagged_when_rds_stops_early(tmp_path: Path) -> None:
    """A listed size that the walk never reaches (RDS kept answering 'no more data') is a flagged loss."""
    path = tmp_path / "db-1" / MYSQL_CURRENT
    path.parent.mkdir(parents=True)
    path.write_bytes(b"select 1;\n" * 50)
    with RdsEmulator({"db-1": InstanceSpec(root=tmp_path / "db-1")}) as emu:
        src, sleeps = source(emu, engine="mysql", complete_file=False, max_tries=3)
        ref = ref_for(src, MYSQL_CURRENT)
        path.write_bytes(b"select 1;\n" * 30)  # shrank after listing (e.g. replaced during rotation)
        stream = src.open(ref)
        assert read_all(stream) == b"select 1;\n" * 30
        assert stream.report.losses == [Loss(300, 200, "RDS stopped returning data before the listed size "
                                                       "was reached")]
        assert len(sleeps) == 2  # bounded re-asks before giving up


def test_rds_claiming_the_end_is_a_short_download_and_a_later_read_is_whole(tmp_path: Path) -> None:
    """The emulator's ``stop_short``: past 30 % of the file RDS answers "no data, nothing pending" as many
    times as the source asks (max_tries): the report lists the shortfall as a loss a retry may recover
    (``short``), which the DAG's stage task refuses to stage; the next read, the fault used up, is whole."""
    data = mysql_log(entries=200)
    root, _ = layout(tmp_path, data, "mysql")
    with RdsEmulator({"db-1": InstanceSpec(root=root)}) as emu:
        src, sleeps = source(emu, engine="mysql", complete_file=False, number_of_lines=20, max_tries=3)
        ref = max(src.list_files(0, 4e9), key=lambda r: r.size or 0)
        emu.faults = Faults(early_pending_false=0.3, stop_short=3)
        stream = src.open(ref)
        body = read_all(stream)
        full = (root / ref.name).read_bytes()
        assert 0.3 * len(full) <= len(body) < len(full) and full.startswith(body)
        [loss] = stream.report.short
        assert loss.reason == "RDS stopped returning data before the listed size was reached"
        assert not loss.permanent and loss.approx_bytes == len(full) - len(body) and not stream.report.complete
        assert emu.faults.stop_short == 0 and len(sleeps) == 2
        again = src.open(ref)
        assert read_all(again) == full and again.report.complete and again.report.short == []


# ------------------------------------------------------------------------------------------ throttling and pacing

def test_pacer_keeps_the_interval() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))
        now[0] += s

    pacer = Pacer(0.25, sleep=sleep, clock=lambda: now[0])
    pacer.wait()
    pacer.wait()
    now[0] += 0.1
    pacer.wait()
    now[0] += 1.0
    pacer.wait()
    assert slept == [0.25, 0.15] and pacer.waited == pytest.approx(0.4)


def test_source_paces_calls_and_counts_botocore_retries(mysql_emu, caplog: pytest.LogCaptureFixture) -> None:
    emu, root, _ = mysql_emu
    emu.faults.throttle_every = 2
    sleeps: list[float] = []
    now = [0.0]

    def sleep(s: float) -> None:  # a fake clock that only moves when the source waits
        sleeps.append(s)
        now[0] += s

    client = make_rds_client("us-east-1", endpoint_url=emu.endpoint_url, max_attempts=4)
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    src = RdsLogSource(client, "db-1", "mysql", complete_file=False, number_of_lines=200, pace=0.5,
                       sleep=sleep, clock=lambda: now[0])
    name = "slowquery/mysql-slowquery.log.2024-03-01.10"
    ref = ref_for(src, name)
    emu.reset_calls()
    with caplog.at_level(logging.INFO, logger="rds_slowlog.sources"):
        stream = src.open(ref)
        assert read_all(stream) == (root / name).read_bytes()
    rep = stream.report
    throttled = emu.count(error="Throttling")
    assert throttled > 0 and rep.retries == throttled
    assert rep.calls == emu.count("DownloadDBLogFilePortion") - throttled
    assert sleeps == [0.5] * rep.calls  # every call after the listing waited for the interval
    assert sum("Throttling" in r.getMessage() for r in caplog.records) == throttled  # every retry logged


def test_own_retries_after_botocore_gives_up(mysql_emu) -> None:
    emu, root, _ = mysql_emu
    emu.faults.throttle_every = 2
    client = emu.client(retries={"mode": "standard", "total_max_attempts": 1})  # botocore does not retry
    sleeps: list[float] = []
    src = RdsLogSource(client, "db-1", "mysql", complete_file=False, pace=0, sleep=sleeps.append, backoff=0.5)
    name = "slowquery/mysql-slowquery.log.2024-03-01.10"
    stream = src.open(ref_for(src, name))
    assert read_all(stream) == (root / name).read_bytes()
    assert stream.report.retries == emu.count(error="Throttling", action="DownloadDBLogFilePortion") > 0
    assert sleeps and all(s == 0.5 for s in sleeps)
    emu.faults.throttle_every = 1  # everything fails: bounded, then raised
    src.max_tries = 3
    with pytest.raises(Exception, match="Throttling"):
        read_all(src.open(LogFileRef("rds", "db-1", name, size=10)))


#: botocore attempts (first included) at an endpoint refusing connections, and the connect timeout, that
#: rds_slowlog.sources.aws sets (literals: the tests must fail, not error, against the code before the fix)
CONNECT_ATTEMPTS, CONNECT_TIMEOUT = 3, 5


@pytest.fixture()
def refused_endpoint():
    """``http://127.0.0.1:<port>`` where a socket is bound but never listens: connecting is refused at once."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


def test_refused_endpoint_is_not_retried_like_throttling(refused_endpoint: str, fast_botocore: NoSleepTime) -> None:
    """botocore makes 3 attempts (not max_attempts), the source none of its own (it used to make 5 x 10)."""
    from botocore.exceptions import EndpointConnectionError

    client = make_rds_client("us-east-1", endpoint_url=refused_endpoint, max_attempts=10)
    assert client.meta.config.connect_timeout == CONNECT_TIMEOUT == 5
    sleeps: list[float] = []
    src = RdsLogSource(client, "db-1", "mysql", pace=0, sleep=sleeps.append)
    with pytest.raises(EndpointConnectionError, match=refused_endpoint):
        src.list_files(ts(10), ts(12))
    assert len(fast_botocore.slept) == CONNECT_ATTEMPTS - 1 and sleeps == []
    # reading a file: the complete-file REST call is refused too; no fallback to portions at the same endpoint
    fast_botocore.slept.clear()
    ref = LogFileRef("rds", "db-1", "slowquery/mysql-slowquery.log.2024-03-01.10", size=10)
    with pytest.raises(EndpointConnectionError):
        src.open(ref)
    assert fast_botocore.slept == [] and sleeps == []
    # portions only: botocore's few attempts, no own retries
    src.complete_file = False
    with pytest.raises(EndpointConnectionError):
        read_all(src.open(ref))
    assert len(fast_botocore.slept) == CONNECT_ATTEMPTS - 1 and sleeps == []


def test_refused_cloudwatch_endpoint_fails_fast_too(refused_endpoint: str, fast_botocore: NoSleepTime) -> None:
    from botocore.exceptions import EndpointConnectionError

    from rds_slowlog.sources.cloudwatch import CloudWatchLogSource, make_logs_client

    sleeps: list[float] = []
    src = CloudWatchLogSource(make_logs_client("us-east-1", refused_endpoint, max_attempts=10), "db-1", "mysql",
                              pace=0, sleep=sleeps.append)
    with pytest.raises(EndpointConnectionError):
        src.list_files(ts(10), ts(12))
    assert len(fast_botocore.slept) == CONNECT_ATTEMPTS - 1 and sleeps == []


def test_what_counts_as_unreachable() -> None:
    from botocore.exceptions import (ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError,
                                     ReadTimeoutError)
    from urllib3.exceptions import NewConnectionError, ProtocolError

    from rds_slowlog.sources.aws import describe_unreachable, is_unreachable

    url = "http://127.0.0.1:1/"
    refused = EndpointConnectionError(endpoint_url=url, error=NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"))
    assert is_unreachable(refused)
    from rds_slowlog.sources import aws

    assert (aws.CONNECT_ATTEMPTS, aws.CONNECT_TIMEOUT) == (CONNECT_ATTEMPTS, CONNECT_TIMEOUT)
    assert describe_unreachable(refused, "RDS") == f"cannot connect to RDS {url} (connection refused)"
    assert is_unreachable(ConnectTimeoutError(endpoint_url=url))
    assert "(connect timeout)" in describe_unreachable(ConnectTimeoutError(endpoint_url=url))
    closed_refused = ConnectionClosedError(endpoint_url=url, error=ProtocolError(
        "aborted", ConnectionRefusedError(111, "Connection refused")))
    assert is_unreachable(closed_refused)
    # a connection that was open and broke, a slow answer, throttling: retried as before
    assert not is_unreachable(ConnectionClosedError(endpoint_url=url, error=ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))))
    assert not is_unreachable(ReadTimeoutError(endpoint_url=url, error="read timed out"))
    from botocore.exceptions import ClientError

    assert not is_unreachable(ClientError({"Error": {"Code": "Throttling"}}, "DescribeDBLogFiles"))
    key = "AKIDSECRET"
    with_creds = EndpointConnectionError(endpoint_url=f"http://user:{key}@proxy:1/", error="refused")
    assert key not in describe_unreachable(with_creds)


# ------------------------------------------------------------------------------------------ parsed entries

def _entry_key(e: Any) -> tuple:
    return (e.engine, e.query, e.duration, e.end_time, e.start_time, e.attrs, e.user, e.host, e.ip, e.db,
            e.thread_id, e.offset, e.line, e.length, e.truncated, e.flags)


@pytest.mark.parametrize("engine,sample_name", [("mysql", "mysql80-rds-slowquery.log"),
                                                ("mysql", "mariadb-slowquery.log"),
                                                ("postgres", "postgresql.log")])
def test_parsed_entries_of_the_download_equal_parsing_the_file(tmp_path: Path, engine: str,
                                                               sample_name: str) -> None:
    pipeline = pytest.importorskip("rds_slowlog.pipeline")
    data = sample(sample_name) or (mysql_log() if engine == "mysql" else pg_log())
    root, pieces = layout(tmp_path, data, engine)
    with RdsEmulator({"db-1": InstanceSpec(root=root, engine=engine)}, faults={"truncate": 20_000}) as emu:
        for complete in (True, False):
            src, _ = source(emu, engine=engine, complete_file=complete)
            total = 0
            for ref in src.list_files(0, 4e9):
                stream = src.open(ref)
                run = pipeline.read_stream(stream, ref.name, engine)
                got = list(run.entries)
                stream.close()
                direct, f = pipeline.read_path(root / ref.name, engine)
                with f:
                    want = list(direct.entries)
                assert [_entry_key(e) for e in got] == [_entry_key(e) for e in want]
                assert all(e.source == ref.name for e in got)
                assert run.stats.as_dict() == {**direct.stats.as_dict(), "source": ref.name}
                total += len(got)
            assert total > 10


def test_truncated_line_reaches_the_parser_as_a_truncated_entry(tmp_path: Path) -> None:
    pipeline = pytest.importorskip("rds_slowlog.pipeline")
    data = (b"# Time: 2024-03-01T10:00:00.000001Z\n# User@Host: app[app] @  [10.0.0.1]  Id: 1\n"
            b"# Query_time: 1.0  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 0\nSET timestamp=1709287200;\n"
            b"SELECT '" + b"y" * 3000 + b"';\n"
            b"# Time: 2024-03-01T10:00:01.000001Z\n# User@Host: app[app] @  [10.0.0.1]  Id: 1\n"
            b"# Query_time: 2.0  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 0\nSET timestamp=1709287201;\n"
            b"SELECT 2;\n")
    path = tmp_path / "db-1" / MYSQL_CURRENT
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    with RdsEmulator({"db-1": InstanceSpec(root=tmp_path / "db-1")}, faults={"truncate": 500}) as emu:
        src, _ = source(emu, engine="mysql", complete_file=False)
        stream = src.open(ref_for(src, MYSQL_CURRENT))
        entries = list(pipeline.read_stream(stream, MYSQL_CURRENT, "mysql").entries)
    assert [e.truncated for e in entries] == [True, False]
    assert entries[1].query.rstrip("; \n") == "SELECT 2" and entries[1].duration == 2.0
    assert stream.report.losses and stream.report.losses[0].offset == data.index(b"SELECT 'y") + 500


def test_importing_the_sources_does_not_import_botocore() -> None:
    import subprocess
    import sys

    code = "import sys, rds_slowlog.sources, rds_slowlog.download, rds_slowlog.cli; sys.exit('botocore' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
