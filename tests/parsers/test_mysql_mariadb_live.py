"""A real MariaDB writes a slow log (long_query_time=0, log_slow_verbosity=query_plan,explain); we parse it.

Starts a throwaway ``mariadbd`` on a unix socket in a temporary directory, runs a few dozen varied
statements through the ``mariadb`` client, stops the server and checks that every statement we ran is
exactly one entry with its text, a Query_time and the database it ran in. Skips only when MariaDB is not
installed.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from rds_slowlog.parsers.mysql import MySQLSlowLogParser

pytestmark = pytest.mark.slow

# (database the client is connected to, statement); each statement carries a unique marker so that the
# client's own bookkeeping queries cannot be mistaken for ours.
SETUP = [
    (None, "CREATE DATABASE live1 /*m0*/"),
    (None, "CREATE DATABASE live2 /*m1*/"),
]
D1 = [
    "CREATE TABLE t (a INT PRIMARY KEY, b VARCHAR(20), c DATETIME) /*m2*/",
    "INSERT INTO t VALUES (1,'x',NOW()),(2,'y',NOW()),(3,'z',NOW()) /*m3*/",
    "SELECT * FROM t WHERE a = 1 /*m4*/",
    "SELECT b\nFROM t\nWHERE a > 0\nORDER BY b /*m5*/",
    "UPDATE t SET b = 'w' WHERE a = 2 /*m6*/",
    "SELECT COUNT(*) FROM t /*m7*/",
    "SELECT SLEEP(0.05) /*m8*/",
    "SELECT t1.a FROM t t1 JOIN t t2 ON t1.a = t2.a /*m9*/",
    "SELECT 'caf\u00e9', '\u65e5\u672c' /*m10*/",
    "SELECT a FROM t WHERE b LIKE '%x%' GROUP BY a /*m11*/",
    "DELETE FROM t WHERE a = 3 /*m12*/",
    "SELECT 1 /* # Time: not a header */ /*m13*/",
    "SELECT '#', ';' /*m14*/",
    "SELECT * FROM information_schema.ENGINES WHERE ENGINE = 'InnoDB' /*m15*/",
    "BEGIN /*m16*/",
    "INSERT INTO t VALUES (4, 'q', NULL) /*m17*/",
    "COMMIT /*m18*/",
]
D2 = [
    "CREATE TABLE u (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT) /*m19*/",
    "INSERT INTO u (v) VALUES ('one'),('two') /*m20*/",
    "SELECT v FROM u ORDER BY id DESC LIMIT 1 /*m21*/",
    "SELECT * FROM live1.t /*m22*/",
    "SHOW TABLES /*m23*/",
    "SELECT SUM(id) FROM u /*m24*/",
    "UPDATE u SET v = CONCAT(v, '!') /*m25*/",
    "SELECT id,\n       v\n  FROM u\n WHERE id IN (1,\n\n 2) /*m26*/",
]
DONE = [("live1", "SELECT 'back in live1' /*m27*/"), ("live1", "DROP TABLE t /*m28*/")]


def _client(sock: Path, db: str | None, statements: list[str]) -> None:
    cmd = ["mariadb", "--no-defaults", f"--socket={sock}", "-uroot", "--batch", "--silent", "--comments"]
    if db:
        cmd.append(f"--database={db}")
    script = "".join(s + ";\n" for s in statements)
    subprocess.run(cmd, input=script.encode(), check=True, capture_output=True, timeout=20)


@pytest.fixture(scope="module")
def slow_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    server = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else None)
    if server is None or shutil.which("mariadb-install-db") is None or shutil.which("mariadb") is None:
        pytest.skip("MariaDB server (mariadbd, mariadb-install-db, mariadb) is not installed")
    tmp = tmp_path_factory.mktemp("mariadb")
    data, sock, log = tmp / "data", tmp / "sock", tmp / "slow.log"
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        check=True, capture_output=True, timeout=60,
    )
    proc = subprocess.Popen(
        [server, "--no-defaults", f"--datadir={data}", f"--socket={sock}", "--skip-networking",
         "--slow-query-log", f"--slow-query-log-file={log}", "--long-query-time=0",
         "--log-slow-verbosity=query_plan,explain", "--user=root", f"--pid-file={tmp / 'pid'}",
         f"--log-error={tmp / 'err.log'}", "--innodb-buffer-pool-size=16M", "--skip-log-bin"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mariadbd did not start: {(tmp / 'err.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        _client(sock, None, [s for _, s in SETUP])
        _client(sock, "live1", D1)
        _client(sock, "live2", D2)
        _client(sock, "live1", [s for _, s in DONE])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return log


def test_every_statement_is_one_entry_with_text_time_and_db(slow_log: Path) -> None:
    expected = SETUP + [("live1", s) for s in D1] + [("live2", s) for s in D2] + DONE
    parser = MySQLSlowLogParser(str(slow_log))
    with open(slow_log, "rb") as fh:
        entries = list(parser.parse(fh))
    ours = [e for e in entries if "/*m" in e.query]
    by_text = Counter(e.query for e in ours)
    assert [q for q, n in by_text.items() if n != 1] == []
    assert sorted(by_text) == sorted(s for _, s in expected)
    order = {s: i for i, (_, s) in enumerate(expected)}
    assert [order[e.query] for e in ours] == sorted(order[e.query] for e in ours)  # log order = run order
    dbs = {s: db for db, s in expected}
    for e in ours:
        assert e.db == dbs[e.query], e.query
        assert isinstance(e.duration, float) and e.duration >= 0
        assert e.end_time is not None and e.start_time is not None and e.start_time <= e.end_time + 1
        assert e.user == "root" and e.host == "localhost" and isinstance(e.thread_id, int)
        assert isinstance(e.attrs["Rows_examined"], int) and isinstance(e.attrs["QC_hit"], bool)
        assert not e.truncated and "invalid_utf8" not in e.flags
    sleep = next(e for e in ours if "SLEEP" in e.query)
    assert sleep.duration is not None and sleep.duration >= 0.05
    # log_slow_verbosity=explain: the plan is kept as text, with its tab-separated columns
    plan = next(e for e in ours if e.query.startswith("SELECT * FROM t WHERE a = 1"))
    assert plan.attrs["explain"].startswith("id\tselect_type\ttable\t")
    # nothing lost: the server banner is noise, every other line belongs to an entry
    s = parser.stats
    assert s.quarantined_lines == 0 and s.noise_lines >= 3
    assert s.lines == s.entry_lines + s.noise_lines
