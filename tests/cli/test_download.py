"""``rds-slowlog download`` against the RDS emulator: files land under --out with their RDS names, and the
report (table or JSON) says per file how it was read and what was lost."""
from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from rds_slowlog import download as core
from rds_slowlog.cli import download
from rds_slowlog.parsers.base import RDS_TRUNCATION_MARKER
from rds_slowlog.testing import InstanceSpec, RdsEmulator, layout_hourly
from rds_slowlog.testing.rds_emulator import MYSQL_CURRENT
from tests.moto_server import SECRET, aws_credentials, fast_botocore  # noqa: F401 - fixtures

#: standard-chain credentials from the environment; botocore's retry backoff not slept
pytestmark = pytest.mark.usefixtures("aws_credentials")

UTC = timezone.utc
T0 = datetime(2024, 3, 1, 10, 20, tzinfo=UTC)


def slowlog(entries: int = 240, step: int = 40, big_at: int | None = None) -> bytes:
    """A MySQL slow log over ~2.7 hours; entry ``big_at`` has a 4 KB query line."""
    out = []
    for i in range(entries):
        t = T0 + timedelta(seconds=i * step)
        q = f"SELECT '{'z' * 4000}';" if i == big_at else f"SELECT * FROM t WHERE id = {i} /* é <&> */;"
        out.append(f"# Time: {t:%Y-%m-%dT%H:%M:%S}.000{i:03d}Z\n# User@Host: app[app] @  [10.1.0.1]  Id: 7\n"
                   f"# Query_time: 0.{i:03d}  Lock_time: 0.0 Rows_sent: 1  Rows_examined: {i}\n"
                   f"SET timestamp={int(t.timestamp())};\n{q}\n")
    return "".join(out).encode()


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rds-slowlog download")
    download.add_arguments(p)
    return p.parse_args(argv)


def run(emu: RdsEmulator, out: Path, *extra: str, since: str = "2024-03-01T10:00:00Z",
        until: str = "2024-03-01T14:00:00Z") -> tuple[int, str]:
    buf = io.StringIO()
    args = parse(["--instance", "db-1", "--since", since, "--until", until, "--endpoint-url", emu.endpoint_url,
                  "--region", "us-east-1", "--out", str(out), "--pace", "0", *extra])
    return download.run(args, out=buf), buf.getvalue()


@pytest.fixture()
def emu(tmp_path: Path):
    src = tmp_path / "src.log"
    src.write_bytes(slowlog(big_at=100))
    layout_hourly(src, tmp_path / "rds" / "db-1", "mysql")
    with RdsEmulator({"db-1": InstanceSpec(root=tmp_path / "rds" / "db-1")}) as e:
        yield e


def test_download_writes_every_file_of_the_window_byte_exact(emu: RdsEmulator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc, text = run(emu, out, "--json")
    assert rc == 0
    report = json.loads(text)
    names = [f["name"] for f in report["files"]]
    assert names == [f"slowquery/mysql-slowquery.log.2024-03-01.{h}" for h in (10, 11)] + [MYSQL_CURRENT]
    for f in report["files"]:
        assert (out / f["name"]).read_bytes() == emu.path("db-1", f["name"]).read_bytes()
        assert f["method"] == "complete" and f["complete"] and f["losses"] == [] and f["error"] is None
        assert f["bytes"] == f["listed_size"] == (out / f["name"]).stat().st_size
    assert not list(out.rglob("*.part"))
    assert report["since"] == datetime(2024, 3, 1, 10, tzinfo=UTC).timestamp()


def test_window_selects_files_and_epoch_times_work(emu: RdsEmulator, tmp_path: Path) -> None:
    since = datetime(2024, 3, 1, 10, 30, tzinfo=UTC).timestamp()
    rc, text = run(emu, tmp_path / "o", "--json", since=str(since), until=str(since + 1800))
    assert rc == 0
    assert [f["name"] for f in json.loads(text)["files"]] == ["slowquery/mysql-slowquery.log.2024-03-01.10"]
    assert [p.name for p in (tmp_path / "o").rglob("*") if p.is_file()] == ["mysql-slowquery.log.2024-03-01.10"]


def test_portions_with_truncation_report_the_loss_in_the_table(emu: RdsEmulator, tmp_path: Path) -> None:
    emu.faults.truncate = 2000  # only the 4 KB query line is longer than the cap
    out = tmp_path / "out"
    rc, table = run(emu, out, "--method", "portions", "--lines", "50")
    assert rc == 0  # a flagged loss is not an error…
    name = "slowquery/mysql-slowquery.log.2024-03-01.11"
    original = emu.path("db-1", name).read_bytes()
    line = b"SELECT '" + b"z" * 4000 + b"';\n"
    at = original.index(line)
    assert (out / name).read_bytes() == original[:at + 2000] + RDS_TRUNCATION_MARKER + b"\n" + original[
        at + len(line):]
    rows = {ln.split()[0]: ln.split() for ln in table.splitlines() if ln.startswith("slowquery/")}
    assert rows[name][2] == "portions" and rows[name][-2:] == ["LOSS", "x1"]
    assert all(r[-1] == "ok" for n, r in rows.items() if n != name)
    assert f"! {name}: lost ~{len(line) - 2000} bytes at offset {at + 2000}" in table
    rc, _ = run(emu, tmp_path / "strict", "--method", "portions", "--strict")
    assert rc == 1  # …unless --strict


def test_throttling_is_retried_and_counted(emu: RdsEmulator, tmp_path: Path) -> None:
    emu.faults.throttle_every = 3
    rc, text = run(emu, tmp_path / "out", "--method", "portions", "--lines", "30", "--json")
    assert rc == 0
    files = json.loads(text)["files"]
    assert sum(f["retries"] for f in files) == emu.count("DownloadDBLogFilePortion", error="Throttling") > 0
    for f in files:
        assert (tmp_path / "out" / f["name"]).read_bytes() == emu.path("db-1", f["name"]).read_bytes()


def test_complete_only_method_fails_per_file_without_fallback(emu: RdsEmulator, tmp_path: Path) -> None:
    emu.faults.notfound_during_rotation = 1
    rotated = emu.rotate("db-1")  # the next call naming the rotated file gets a 404
    rc, text = run(emu, tmp_path / "out", "--method", "complete", "--json", until="2024-03-02T00:00:00Z")
    assert rc == 1
    files = {f["name"]: f for f in json.loads(text)["files"]}
    assert "DBLogFileNotFoundFault" in files[rotated]["error"] or "404" in files[rotated]["error"]
    assert not (tmp_path / "out" / rotated).exists() and not list((tmp_path / "out").rglob("*.part"))
    ok = [f for n, f in files.items() if n != rotated]
    assert ok and all(f.get("error") is None and f["method"] == "complete" for f in ok)


def test_errors_are_one_line_and_exit_codes(emu: RdsEmulator, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = parse(["--instance", "db-404", "--since", "2024-03-01T10:00:00", "--endpoint-url", emu.endpoint_url,
                  "--region", "us-east-1", "--out", str(tmp_path / "o"), "--max-attempts", "1"])
    assert download.run(args, out=io.StringIO()) == 1
    assert "DBInstanceNotFound" in capsys.readouterr().err
    rc, _ = run(emu, tmp_path / "o", since="2024-03-01T12:00:00Z", until="2024-03-01T11:00:00Z")
    assert rc == 2
    with pytest.raises(SystemExit):
        parse(["--instance", "db-1", "--since", "yesterday-ish", "--out", "x"])
    rc, table = run(emu, tmp_path / "o", since="2030-01-01T00:00:00Z", until="2030-01-01T01:00:00Z")
    assert rc == 0 and "(no slow-log files in the window)" in table


def test_unsafe_names_stay_inside_out(tmp_path: Path) -> None:
    assert core._target(tmp_path, "slowquery/a.log") == tmp_path / "slowquery" / "a.log"
    for bad in ("../etc/passwd", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(ValueError):
            core._target(tmp_path, bad)


def test_refused_endpoint_fails_within_seconds_with_one_line(tmp_path: Path) -> None:
    """Connection refused is not throttling: the real CLI (real botocore backoff, default --max-attempts)
    gives up within seconds — it took 288-322 s when botocore's 10 attempts were retried 5 times on top."""
    nobody = socket.socket()
    nobody.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
    port = nobody.getsockname()[1]
    try:
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "rds_slowlog.cli", "download", "--instance", "db-1", "--since",
             "2024-03-01T10:00:00Z", "--out", str(tmp_path / "o"), "--endpoint-url", f"http://127.0.0.1:{port}",
             "--region", "us-east-1"], capture_output=True, text=True, env=dict(os.environ), timeout=120)
        elapsed = time.monotonic() - t0
    finally:
        nobody.close()
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 15, f"took {elapsed:.1f}s: {proc.stderr}"
    assert (f"rds-slowlog download: listing db-1 failed: cannot connect to the RDS endpoint "
            f"http://127.0.0.1:{port}/ (connection refused)") in proc.stderr
    assert "Traceback" not in proc.stderr and SECRET not in proc.stdout + proc.stderr
    assert not (tmp_path / "o").exists()
