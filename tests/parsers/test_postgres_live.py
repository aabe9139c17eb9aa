"""The parser on a log written by a real PostgreSQL 15 server, configured like RDS.

A throwaway cluster (initdb in a temp dir, unprivileged user, TCP on 127.0.0.1 and a private socket dir)
runs with ``log_min_duration_statement=0`` and RDS's ``log_line_prefix``, stderr to a file. psql sends
simple-protocol queries (one of them multi-line, one failing) and pgbench sends extended-protocol ones
(``-M prepared``: named statements; ``-M extended``: unnamed). After a clean stop the log is parsed and
the entries are checked against what was sent. Skips only when PostgreSQL is not installed.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rds_slowlog.parsers.postgres import RDS_LOG_LINE_PREFIX, PostgresLogParser

pytestmark = pytest.mark.slow

PG_BIN_CANDIDATES = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin")]


def _pg_bin() -> Path:
    for d in PG_BIN_CANDIDATES:
        if (d / "postgres").exists() and (d / "initdb").exists():
            return d
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql-15)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data, self.log, self.sock = root / "data", root / "postgres.log", root / "sock"
        self.port = _free_port()
        # the server refuses to run as root: use nobody, which then needs to own the directory
        self.as_user: dict[str, str] = {}
        if os.geteuid() == 0:
            self.as_user = {"user": "nobody", "group": "nogroup"}
            for p in (root,):
                os.chown(p, 65534, 65534)

    def server(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, timeout=60, check=True, **self.as_user)

    def client(self, exe: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / exe), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=check,
                              env={**os.environ, "PGCONNECT_TIMEOUT": "10"})

    def start(self) -> None:
        self.sock.mkdir()
        if self.as_user:
            os.chown(self.sock, 65534, 65534)
        self.server(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                    "--no-sync", "-E", "UTF8", "--locale=C")
        opts = " ".join([
            f"-c port={self.port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.sock}",
            "-c log_min_duration_statement=0", f"-c log_line_prefix='{RDS_LOG_LINE_PREFIX}'",
            "-c logging_collector=off", "-c log_timezone=UTC", "-c fsync=off", "-c shared_buffers=16MB",
            "-c log_checkpoints=on", "-c log_connections=on",
        ])
        self.server(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
                    "-w", "-t", "30", "start")

    def stop(self) -> None:
        subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60, check=False, **self.as_user)


@pytest.fixture(scope="module")
def server_log() -> Iterator[Path]:
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="rds-slowlog-pg-"))
    os.chmod(root, 0o755)
    cluster = Cluster(bindir, root)
    try:
        cluster.start()
        cluster.client("psql", "-d", "postgres", "-c", "SELECT 41 + 1 AS answer")
        cluster.client("psql", "-d", "postgres", "-c", "SELECT 'multi',\n       'line' AS two_lines")
        failed = cluster.client("psql", "-d", "postgres", "-c", "SELECT * FROM no_such_table", check=False)
        assert failed.returncode != 0
        cluster.client("pgbench", "-i", "-s", "1", "-q", "postgres")
        cluster.client("pgbench", "-M", "prepared", "-t", "5", "-c", "1", "-n", "postgres")
        cluster.client("pgbench", "-M", "extended", "-t", "3", "-c", "1", "-n", "postgres")
    finally:
        cluster.stop()
    yield cluster.log
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def parsed(server_log: Path) -> tuple[list, PostgresLogParser]:
    parser = PostgresLogParser(str(server_log))
    with open(server_log, "rb") as fh:
        entries = list(parser.parse(fh))
    return entries, parser


def test_every_line_is_accounted_for(parsed: tuple[list, PostgresLogParser], server_log: Path) -> None:
    entries, parser = parsed
    st = parser.stats
    assert st.quarantined_lines == 0, st.samples
    assert st.bytes == server_log.stat().st_size and st.lines == server_log.read_bytes().count(b"\n")
    assert st.errors >= 1  # the failing psql query
    assert st.noise_lines > 0  # connections, checkpoints, parse/bind lines


def test_simple_protocol_statements(parsed: tuple[list, PostgresLogParser]) -> None:
    entries, _ = parsed
    by_query = {e.query: e for e in entries}
    e = by_query["SELECT 41 + 1 AS answer"]
    assert e.attrs["query_step"] == "statement" and e.user == "postgres" and e.db == "postgres"
    assert e.ip == "127.0.0.1" and isinstance(e.attrs["client_port"], int) and e.thread_id
    assert 0 <= e.duration < 5 and e.start_time == pytest.approx(e.end_time - e.duration)
    assert "SELECT 'multi',\n       'line' AS two_lines" in by_query  # the tab-continued line rejoined
    assert not any("no_such_table" in q for q in by_query)  # an ERROR + STATEMENT pair is not a query


def test_extended_protocol_named_and_unnamed(parsed: tuple[list, PostgresLogParser]) -> None:
    entries, _ = parsed
    executes = [e for e in entries if e.attrs["query_step"] == "execute"]
    named = [e for e in executes if str(e.attrs["query_name"]).startswith("P_")]
    unnamed = [e for e in executes if e.attrs["query_name"] == "<unnamed>"]
    # pgbench's TPC-B-like script: 7 statements per transaction
    assert len(named) == 5 * 7
    assert len(unnamed) >= 3 * 7  # plus pgbench's own setup queries sent through the extended protocol
    upd = [e for e in named if e.query.startswith("UPDATE pgbench_accounts SET abalance = abalance + $1")]
    assert len(upd) == 5
    for e in upd:
        params = str(e.attrs["parameters"])
        assert params.startswith("$1 = '") and "$2 = '" in params
        assert "bind_ms" in e.attrs  # the bind phase of the same pid was attached
    # each prepared statement is parsed once per connection: its first execute carries parse_ms
    assert sum(1 for e in named if "parse_ms" in e.attrs) == 7
    assert all("parse_ms" in e.attrs and "bind_ms" in e.attrs for e in unnamed[-7:])
    # parse/bind lines are phases, not entries
    assert not any(e.attrs["query_step"] in ("parse", "bind") for e in entries)


def test_entries_point_at_their_bytes(parsed: tuple[list, PostgresLogParser], server_log: Path) -> None:
    entries, _ = parsed
    data = server_log.read_bytes()
    for e in entries[:200]:
        chunk = data[e.offset:e.offset + e.length]
        assert b"duration: " in chunk.split(b"\n", 1)[0]
        assert e.query.split("\n", 1)[0].encode() in chunk
        assert data.count(b"\n", 0, e.offset) + 1 == e.line
