#!/usr/bin/env python3
"""Generate real slow-query logs from real, throwaway database servers.

Why this exists: parser speed and correctness claims are only worth something on logs that real servers
wrote.  This script starts a private MariaDB (Debian's ``mariadbd``) and a private PostgreSQL 15, drives
them with ``sysbench`` / ``pgbench`` / scripted client sessions, and keeps the logs the servers wrote.

Two modes:

``make_logs.py --mysql-mb 200 --postgres-mb 200 [--out DIR]``
    Large benchmark inputs (default DIR ``~/.cache/rds-slowlog/bench``):

    * ``mysql-slowquery.log``      – the MariaDB slow log exactly as mariadbd wrote it;
    * ``rds-mysql-slowquery.log``  – the same bytes with the banner rewritten the way RDS MariaDB writes it
      (``/rdsdbbin/mysql/bin/mysqld, Version: … (managed by https://aws.amazon.com/rds/). started with:``)
      and the banner repeated every ``--banner-every-mb`` MB before a ``# Time:`` line, like RDS does
      after each hourly flush;
    * ``postgresql.log``           – the PostgreSQL log with the RDS prefix ``%t:%r:%u@%d:[%p]:``;
    * ``provenance-mysql.json`` / ``provenance-postgresql.json`` – versions, commands, how many bytes are
      real and how many (if any) were replayed.

    Files that already exist and are big enough are reused (``--force`` regenerates).  If a server can't
    produce the requested size within ``--max-real-seconds`` the real log is grown by *replaying* it
    (see :func:`replay_grow`); the provenance file and the summary say exactly how many bytes are replayed.

``make_logs.py --samples [--out include/sample_logs]``
    The small, committed samples used by ``make demo`` and the tests (see ``include/sample_logs/README.md``).

Safety: servers run with their data directory in a fresh temp dir, MariaDB on a unix socket only
(``--skip-networking``), PostgreSQL on 127.0.0.1 and a free port; they are always stopped in ``finally``
(also on SIGTERM / Ctrl-C) and the temp dirs removed.  PostgreSQL refuses to run as root, so when run as
root it runs as ``nobody``.  That server lifecycle lives in ``rds_slowlog.testing.dbservers`` (shared with
the tests that need real servers); like this script it uses only the standard library.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
try:  # the package is installed (editable) in the venv; a bare `python3 bench/make_logs.py` finds it here
    import rds_slowlog.testing.dbservers  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "include"))
# the server lifecycle (standard library only) is shared with the tests that need real servers
from rds_slowlog.testing.dbservers import (  # noqa: E402
    MARIADBD,
    PG_BIN,
    RDS_PG_PREFIX,
    MariaDB,
    Postgres,
    ToolMissing,
    require,
    run,
    sysbench_command,
)

MB = 1024 * 1024
DEFAULT_BENCH_DIR = Path("~/.cache/rds-slowlog/bench").expanduser()
DEFAULT_SAMPLES_DIR = ROOT / "include" / "sample_logs"

# MariaDB writes this header itself whenever it (re)opens the slow log (see sql/log.cc); the RDS variant
# keeps MariaDB's own tab layout of the third line and only changes what RDS changes: the binary path,
# the version comment ("managed by …"), the port and the socket.
RDS_MARIADB_BANNER = (
    "/rdsdbbin/mysql/bin/mysqld, Version: {version}-MariaDB-log (managed by https://aws.amazon.com/rds/). "
    "started with:\nTcp port: 3306  Unix socket: /tmp/mysql.sock\nTime\t\t    Id Command\tArgument\n"
)


def log(msg: str) -> None:
    """Progress goes to stderr so stdout stays the summary."""
    print(f"[make_logs {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def _removed_on_error(path: Path) -> Iterator[None]:
    """A half-written log must not survive an interrupted run (it would look like a finished one)."""
    try:
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _sigterm_to_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------- counting/replay
_PG_TS = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC:")
_MY_TIME = re.compile(rb"^# Time: (\d{6}) +(\d{1,2}):(\d\d):(\d\d)")
_MY_SETTS = re.compile(rb"^SET timestamp=(\d+);")
_MY_THREAD = re.compile(rb"^# Thread_id: (\d+)")
_PG_PID = re.compile(rb"\[(\d+)\]:(LOG|DETAIL|ERROR|STATEMENT|HINT|CONTEXT|WARNING|FATAL|PANIC|NOTICE):")
_PG_SQL_START = re.compile(rb"(?:  statement: |  (?:execute|bind|parse) [^:]*: |DETAIL:  parameters: )")
_NUMBER = re.compile(rb"(?<![A-Za-z0-9_$.])\d+")


def _iter_lines(path: Path, limit: int | None = None) -> Iterator[bytes]:
    """Lines of ``path``; with ``limit`` only of its first ``limit`` bytes (the file may be growing)."""
    with open(path, "rb", buffering=4 * MB) as fh:
        if limit is None:
            yield from fh
            return
        left = limit
        for line in fh:
            if left <= 0:
                return
            if len(line) > left:
                line = line[:left]
            left -= len(line)
            yield line


_MY_SETTS_ALL = re.compile(rb"^SET timestamp=(\d+);", re.M)
_PG_TS_ALL = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC:", re.M)


def _iter_chunks(path: Path, size: int = 8 * MB) -> Iterator[bytes]:
    """Whole-line chunks, so per-chunk regex/count work sees every line exactly once (C speed, not per line)."""
    carry = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(size)
            if not block:
                break
            block = carry + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                carry = block
                continue
            carry = block[cut:]
            yield block[:cut]
    if carry:
        yield carry


def scan_log(path: Path, engine: str) -> dict[str, Any]:
    """Rough entry count and first/last epoch seconds (needed to shift replayed copies past the original).

    MariaDB: entries = ``# User@Host:`` lines, times from ``SET timestamp=``.  PostgreSQL: entries =
    ``LOG:  duration:`` lines (a bind/execute pair counts twice, as the log has two lines), times from ``%t``.
    """
    entries = 0
    first = last = None
    for chunk in _iter_chunks(path):
        if engine == "mysql":
            entries += chunk.count(b"\n# User@Host:") + chunk.startswith(b"# User@Host:")
            stamps = [int(x) for x in _MY_SETTS_ALL.findall(chunk)]
            if stamps:
                lo, hi = min(stamps), max(stamps)
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
        else:
            entries += chunk.count(b"]:LOG:  duration: ")
            stamps_b = _PG_TS_ALL.findall(chunk)
            if stamps_b:
                lo_b, hi_b = min(stamps_b), max(stamps_b)  # this format sorts as text
                lo_e, hi_e = (int(datetime.strptime(x.decode(), "%Y-%m-%d %H:%M:%S")
                                  .replace(tzinfo=timezone.utc).timestamp()) for x in (lo_b, hi_b))
                first = lo_e if first is None else min(first, lo_e)
                last = hi_e if last is None else max(last, hi_e)
    return {"entries": entries, "first_epoch": first, "last_epoch": last}


def _rotate_digits(k: int) -> tuple[bytes, bytes]:
    """Per-copy digit maps: same length, first digit never becomes 0, so fingerprints stay identical."""
    digits = b"0123456789"
    rest = bytes(digits[(i + k) % 10] for i in range(10))
    first = b"0" + bytes(digits[1 + (i - 1 + k) % 9] for i in range(1, 10))
    return bytes.maketrans(digits, rest), bytes.maketrans(digits, first)


def _vary_numbers(text: bytes, tables: tuple[bytes, bytes]) -> bytes:
    rest, first = tables

    def sub(m: re.Match[bytes]) -> bytes:
        s = m.group(0)
        return s[:1].translate(first) + s[1:].translate(rest)

    return _NUMBER.sub(sub, text)


def _replay_line_mysql(line: bytes, shift: int, k: int, tables: tuple[bytes, bytes]) -> bytes:
    if line.startswith(b"#"):
        m = _MY_TIME.match(line)
        if m:
            t = datetime.strptime(m.group(1).decode() + " " + f"{int(m.group(2)):02d}:{m.group(3).decode()}:"
                                  + m.group(4).decode(), "%y%m%d %H:%M:%S") + timedelta(seconds=shift)
            return f"# Time: {t:%y%m%d} {t.hour:2d}:{t:%M:%S}".encode() + line[m.end():]
        m = _MY_THREAD.match(line)
        if m:  # a replayed copy is a different set of connections
            return b"# Thread_id: %d" % (int(m.group(1)) + k * 100000) + line[m.end():]
        return line
    if line.startswith(b"SET timestamp="):
        m = _MY_SETTS.match(line)
        if m:
            return b"SET timestamp=%d;" % (int(m.group(1)) + shift) + line[m.end():]
        return line
    if line.startswith(b"use ") or line.startswith(b"/usr/") or line.startswith(b"Tcp port:") or \
            line.startswith(b"Time\t"):
        return line
    return _vary_numbers(line, tables)


def _replay_line_pg(line: bytes, shift: int, k: int, tables: tuple[bytes, bytes]) -> bytes:
    m = _PG_TS.match(line)
    if not m:  # continuation line of a multi-line statement
        return _vary_numbers(line, tables)
    t = datetime.strptime(m.group(1).decode(), "%Y-%m-%d %H:%M:%S") + timedelta(seconds=shift)
    head = f"{t:%Y-%m-%d %H:%M:%S} UTC:".encode()
    rest = line[m.end():]
    p = _PG_PID.search(rest)
    if p:
        pid = (int(p.group(1)) + k * 50000) % 4194304 or 1
        rest = rest[:p.start(1)] + str(pid).encode() + rest[p.end(1):]
    s = _PG_SQL_START.search(rest)
    if s:
        rest = rest[:s.end()] + _vary_numbers(rest[s.end():], tables)
    return head + rest


def replay_grow(path: Path, target: int, engine: str) -> dict[str, Any]:
    """Append replayed copies of the real log until it reaches ``target`` bytes.

    Each copy k: every timestamp (MariaDB ``# Time:`` and ``SET timestamp=``; PostgreSQL's ``%t``) moves
    forward by k × (span of the real log + 1 s), so windows keep filling in time order; thread ids / pids
    are offset so copies look like new sessions; and every number in SQL text (literals, bind
    parameters) has its digits rotated (same length, no leading zero), so fingerprints and entry
    shapes are unchanged but literal values differ.  Query_time, Lock_time, Rows_* and durations are
    replayed as measured.  The MariaDB banner (first 3 lines) and PostgreSQL's session-less lines
    (start-up, checkpoints, shutdown) are not replayed, so a copy never looks like a server restart.
    """
    real_size = path.stat().st_size
    info = scan_log(path, engine)
    if info["first_epoch"] is None:
        raise RuntimeError(f"{path}: no timestamps found, cannot replay")
    span = info["last_epoch"] - info["first_epoch"] + 1
    fn = _replay_line_mysql if engine == "mysql" else _replay_line_pg
    copies = 0
    size = real_size
    with open(path, "ab", buffering=4 * MB) as out:
        while size < target:
            copies += 1
            tables = _rotate_digits(copies)
            shift = copies * span
            prev = b""
            for i, line in enumerate(_iter_lines(path, real_size)):
                if i < 3 and engine == "mysql" and (line.startswith(b"/") or line.startswith(b"Tcp port:")
                                                    or line.startswith(b"Time\t") or line.startswith(b"Time ")):
                    continue  # the server's start-up banner is not part of the workload
                if engine == "postgres" and b" UTC::@:[" in line[:40]:
                    continue  # server start/stop/checkpoint lines: a replay is not a restart
                if size >= target:  # stop at an entry boundary
                    if engine == "mysql":
                        if line.startswith(b"# Time:") or (line.startswith(b"# User@Host:")
                                                           and not prev.startswith(b"# Time:")):
                            break
                    elif _PG_TS.match(line) is not None and b"]:LOG:  " in line:
                        break
                prev = line
                new = fn(line, shift, copies, tables)
                out.write(new)
                size += len(new)
    return {"real_bytes": real_size, "replayed_bytes": size - real_size, "replay_copies": copies,
            "replay_span_seconds": span}


# -------------------------------------------------------------------------------------- RDS banner copy
def write_rds_mysql_variant(src: Path, dest: Path, version: str, every_mb: float) -> int:
    """Copy ``src`` replacing MariaDB's banner with RDS's and repeating it every ``every_mb`` MB.

    RDS flushes the slow log hourly; each reopen writes the banner again, so real RDS files carry the
    banner in the middle too.  New banners go right before a ``# Time:`` line (an entry boundary).
    Returns the number of banners written.
    """
    m = re.match(r"(\d+\.\d+\.\d+)", version)
    banner = RDS_MARIADB_BANNER.format(version=m.group(1) if m else version).encode()
    every = int(every_mb * MB)
    banners = 0
    tmp = dest.with_name("." + dest.name + ".part")
    with open(tmp, "wb", buffering=4 * MB) as out:
        since = 0
        for line in _iter_lines(src):
            if line.startswith(b"/") and b", Version: " in line and line.rstrip().endswith(b"started with:"):
                out.write(banner)  # a server (re)start banner: rewrite it the RDS way
                banners += 1
                since = 0
                continue
            if line.startswith(b"Tcp port: ") or line.startswith(b"Time\t\t    Id Command"):
                continue  # the rest of the banner we just replaced
            if since >= every and line.startswith(b"# Time:"):
                out.write(banner)
                banners += 1
                since = 0
            out.write(line)
            since += len(line)
    os.replace(tmp, dest)
    return banners


# ------------------------------------------------------------------------------------------------ bench
SYSBENCH_PHASES: list[tuple[str, str, list[str]]] = [
    # (lua test, user, extra args) — cycled until the log is big enough
    ("oltp_read_write", "root", []),
    ("oltp_point_select", "bench", []),
    ("oltp_update_index", "root", []),
    ("oltp_read_write", "bench", ["--db-ps-mode=disable"]),
    ("oltp_read_only", "bench", ["--range-size=50"]),
    ("oltp_write_only", "root", ["--delete-inserts=2"]),
]
PGBENCH_PHASES: list[tuple[str, str, list[str]]] = [
    # (protocol mode, user, extra args)
    ("simple", "app", []),
    ("prepared", "app", []),
    ("extended", "postgres", ["-S"]),
    ("simple", "postgres", ["-N"]),
    ("prepared", "app", ["-S"]),
]


def _phase_seconds(remaining: int, rate: float) -> int:
    """Run long enough to reach the target at the measured rate, but in short slices for variety."""
    return max(2, min(6, int(remaining / max(rate, 1.0)) + 1))


def make_mysql_bench(out_dir: Path, target_mb: float, max_real_s: float, banner_every_mb: float,
                     force: bool) -> dict[str, Any]:
    final = out_dir / "mysql-slowquery.log"
    rds = out_dir / "rds-mysql-slowquery.log"
    prov_path = out_dir / "provenance-mysql.json"
    target = int(target_mb * MB)
    t0 = time.monotonic()
    if not force and final.exists() and final.stat().st_size >= target and prov_path.exists():
        prov = json.loads(prov_path.read_text())
        if not rds.exists():
            prov["rds_banners"] = write_rds_mysql_variant(final, rds, prov["server_version"], banner_every_mb)
        log(f"reusing {final} ({final.stat().st_size / MB:.1f} MB)")
        prov["reused"] = True
        prov["seconds_this_run"] = round(time.monotonic() - t0, 1)
        return prov
    require("sysbench")
    part = out_dir / ".mysql-slowquery.log.part"
    part.unlink(missing_ok=True)
    commands: list[str] = []
    tables, rows = 4, 25000
    with _removed_on_error(part), MariaDB(part, "query_plan", log=log) as db:
        db.query("CREATE DATABASE sbtest; CREATE USER 'bench'@'localhost' IDENTIFIED BY 'bench'; "
                 "GRANT ALL ON sbtest.* TO 'bench'@'localhost'")
        common = [f"--tables={tables}", f"--table-size={rows}", "--report-interval=0"]
        prep = sysbench_command("oltp_read_write", db.sysbench_args("root", ""), common, "prepare")
        run(prep)
        commands.append(" ".join(prep))
        phase = 0
        rate = 3.0 * MB
        while part.stat().st_size < target and (phase == 0 or time.monotonic() - t0 < max_real_s):
            test, user, extra = SYSBENCH_PHASES[phase % len(SYSBENCH_PHASES)]
            before, ts = part.stat().st_size, time.monotonic()
            secs = _phase_seconds(target - before, rate)
            secs = max(1, min(secs, int(max_real_s - (ts - t0)) + 1))
            cmd = sysbench_command(test, db.sysbench_args(user, "" if user == "root" else "bench"),
                                   [*common, "--threads=2", f"--time={secs}", *extra])
            run(cmd)
            commands.append(" ".join(cmd))
            rate = (part.stat().st_size - before) / max(time.monotonic() - ts, 0.1)
            log(f"sysbench {test} ({user}) {secs}s: log {part.stat().st_size / MB:.1f} MB, {rate / MB:.1f} MB/s")
            phase += 1
        version = db.version
    real_s = time.monotonic() - t0
    replay = {"real_bytes": part.stat().st_size, "replayed_bytes": 0, "replay_copies": 0}
    if part.stat().st_size < target:
        log(f"real log is {part.stat().st_size / MB:.1f} MB after {real_s:.0f}s; growing by replay")
        replay = replay_grow(part, target, "mysql")
    os.replace(part, final)
    os.chmod(final, 0o644)
    info = scan_log(final, "mysql")
    banners = write_rds_mysql_variant(final, rds, version, banner_every_mb)
    prov = {"engine": "mariadb", "file": final.name, "rds_variant": rds.name, "rds_banners": banners,
            "server_version": version, "server": f"{MARIADBD} --slow-query-log --long-query-time=0 "
            "--log-slow-verbosity=query_plan --log-slow-admin-statements --skip-networking",
            "commands": commands, **replay, "entries": info["entries"], "bytes": final.stat().st_size,
            "real_seconds": round(real_s, 1), "seconds_this_run": round(time.monotonic() - t0, 1), "reused": False}
    prov_path.write_text(json.dumps(prov, indent=2) + "\n")
    return prov


def make_postgres_bench(out_dir: Path, target_mb: float, max_real_s: float, force: bool) -> dict[str, Any]:
    final = out_dir / "postgresql.log"
    prov_path = out_dir / "provenance-postgresql.json"
    target = int(target_mb * MB)
    t0 = time.monotonic()
    if not force and final.exists() and final.stat().st_size >= target and prov_path.exists():
        prov = json.loads(prov_path.read_text())
        log(f"reusing {final} ({final.stat().st_size / MB:.1f} MB)")
        prov["reused"] = True
        prov["seconds_this_run"] = round(time.monotonic() - t0, 1)
        return prov
    part = out_dir / ".postgresql.log.part"
    part.unlink(missing_ok=True)
    commands: list[str] = []
    with _removed_on_error(part), Postgres(log=log) as pg:
        pg.psql("CREATE ROLE app LOGIN; CREATE DATABASE shop OWNER app;", quiet=True)
        init = ["-i", "-s", "5"]
        pg.pgbench(init, "app", "shop")
        commands.append("pgbench -U app -d shop " + " ".join(init))
        phase = 0
        rate = 5.0 * MB
        size = lambda: pg.logfile.stat().st_size  # noqa: E731
        while size() < target and (phase == 0 or time.monotonic() - t0 < max_real_s):
            mode, user, extra = PGBENCH_PHASES[phase % len(PGBENCH_PHASES)]
            before, ts = size(), time.monotonic()
            secs = _phase_seconds(target - before, rate)
            secs = max(1, min(secs, int(max_real_s - (ts - t0)) + 1))
            args = ["-c", "4", "-j", "2", "-T", str(secs), "-M", mode, *extra]
            pg.pgbench(args, user, "shop")
            commands.append(f"pgbench -U {user} -d shop " + " ".join(args))
            rate = (size() - before) / max(time.monotonic() - ts, 0.1)
            log(f"pgbench -M {mode} {' '.join(extra)} ({user}) {secs}s: log {size() / MB:.1f} MB, "
                f"{rate / MB:.1f} MB/s")
            phase += 1
        version = pg.version
        pg.keep = True  # keep the temp dir until we moved the log out
    try:
        pg.take_log(part)
    finally:
        shutil.rmtree(pg.tmp, ignore_errors=True)
    real_s = time.monotonic() - t0
    replay = {"real_bytes": part.stat().st_size, "replayed_bytes": 0, "replay_copies": 0}
    if part.stat().st_size < target:
        log(f"real log is {part.stat().st_size / MB:.1f} MB after {real_s:.0f}s; growing by replay")
        replay = replay_grow(part, target, "postgres")
    os.replace(part, final)
    info = scan_log(final, "postgres")
    prov = {"engine": "postgresql", "file": final.name, "server_version": version,
            "server": f"{PG_BIN}/postgres -c log_min_duration_statement=0 -c log_line_prefix='{RDS_PG_PREFIX}' "
            "-c logging_collector=on -c log_destination=stderr", "commands": commands, **replay,
            "entries": info["entries"], "bytes": final.stat().st_size, "real_seconds": round(real_s, 1),
            "seconds_this_run": round(time.monotonic() - t0, 1), "reused": False}
    prov_path.write_text(json.dumps(prov, indent=2) + "\n")
    return prov


# ---------------------------------------------------------------------------------------------- samples
def _rows(n: int, fmt: Any, seed: int) -> str:
    """Deterministic VALUES lists so a re-run produces the same statements (only timings differ)."""
    import random

    rnd = random.Random(seed)
    return ",\n".join(fmt(i, rnd) for i in range(1, n + 1))


_CITIES = ["London", "Paris", "Zürich", "Berlin", "Lisboa", "Kraków", "Oslo", "Dublin"]
_NAMES = ["Ada", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus", "Zoë",
          "O'Brien", "Radia", "Tim", "Sophie", "Linus", "Leslie"]


def _mariadb_sample_sql() -> dict[str, str]:
    customers = _rows(40, lambda i, r: f"('{_NAMES[i % len(_NAMES)].replace(chr(39), chr(39) * 2)} {i}', "
                                      f"'user{i}@example.{'org' if i % 5 == 0 else 'com'}', "
                                      f"'{_CITIES[i % len(_CITIES)]}')", 1)
    orders = _rows(120, lambda i, r: f"({r.randint(1, 40)}, '{r.choice(['new', 'paid', 'shipped', 'cancelled'])}', "
                                     f"{r.randint(100, 99999) / 100:.2f}, '2026-11-{r.randint(1, 26):02d} "
                                     f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00')", 2)
    items = _rows(200, lambda i, r: f"({r.randint(1, 120)}, 'SKU-{r.randint(1000, 9999)}', {r.randint(0, 5)}, "
                                    f"{r.randint(100, 5000) / 100:.2f})", 3)
    setup = """
CREATE DATABASE shop;
CREATE DATABASE analytics;
CREATE USER 'app'@'localhost' IDENTIFIED BY 'app-secret';
GRANT ALL ON shop.* TO 'app'@'localhost';
GRANT ALL ON analytics.* TO 'app'@'localhost';
CREATE USER 'report'@'localhost' IDENTIFIED BY 'report-secret';
GRANT SELECT ON shop.* TO 'report'@'localhost';
GRANT SELECT ON analytics.* TO 'report'@'localhost';
"""
    app = f"""
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(200) NOT NULL UNIQUE,
  city VARCHAR(50),
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (
  id INT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
  total DECIMAL(10,2) NOT NULL,
  created_at DATETIME NOT NULL,
  KEY idx_customer (customer_id)
) ENGINE=InnoDB;
CREATE TABLE order_items (
  id INT AUTO_INCREMENT PRIMARY KEY,
  order_id INT NOT NULL,
  sku VARCHAR(20) NOT NULL,
  qty INT NOT NULL,
  price DECIMAL(8,2) NOT NULL
) ENGINE=InnoDB;
INSERT INTO customers (name, email, city) VALUES
{customers};
INSERT INTO orders (customer_id, status, total, created_at) VALUES
{orders};
INSERT INTO order_items (order_id, sku, qty, price) VALUES
{items};
SELECT * FROM customers WHERE id = 7;
SELECT * FROM customers WHERE email = 'user12@example.com';
SELECT id, name FROM customers WHERE city = 'Zürich' ORDER BY name;
SELECT c.name, COUNT(o.id) AS n, SUM(o.total) AS spent FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.status = 'paid' GROUP BY c.name ORDER BY spent DESC LIMIT 10;
SELECT o.id,
       o.total, -- the dashboard: big orders
       /* item count per order */
       (SELECT COUNT(*) FROM order_items i WHERE i.order_id = o.id) AS items
  FROM orders o
 WHERE o.created_at >= '2026-11-10'
   AND o.customer_id IN (1, 2, 3, 5, 8, 13, 21, 34)
 ORDER BY o.total DESC;
SELECT i.sku, SUM(i.qty) AS qty FROM order_items i LEFT JOIN orders o ON o.id = i.order_id WHERE o.id IS NULL OR o.status <> 'cancelled' GROUP BY i.sku HAVING qty > 3 ORDER BY qty DESC LIMIT 20;
SELECT DISTINCT city FROM customers;
SELECT * FROM orders WHERE total BETWEEN 100 AND 200 AND status IN ('paid', 'shipped') LIMIT 5;
/* app:checkout */ INSERT INTO orders (customer_id, status, total, created_at) VALUES (7, 'new', 19.99, '2026-11-27 10:00:00');
INSERT INTO order_items (order_id, sku, qty, price) VALUES (LAST_INSERT_ID(), 'SKU-4242', 1, 19.99);
/* app:checkout */ UPDATE orders SET status = 'paid' WHERE id = 121;
UPDATE customers SET city = 'Paris' WHERE email LIKE '%@example.org';
UPDATE orders SET total = total * 1.10 WHERE status = 'new' AND created_at < '2026-11-05';
DELETE FROM order_items WHERE qty = 0;
DELETE FROM orders WHERE status = 'cancelled' ORDER BY created_at LIMIT 5;
INSERT INTO customers (name, email, city) VALUES ('Ada 1', 'user1@example.com', 'London') ON DUPLICATE KEY UPDATE city = VALUES(city);
REPLACE INTO order_items (id, order_id, sku, qty, price) VALUES (1, 1, 'SKU-0001', 2, 5.00);
SELECT name FROM customers WHERE name = 'O''Brien; DROP TABLE customers; --' OR name LIKE 'Zo%';
BEGIN;
UPDATE orders SET status = 'shipped' WHERE id IN (3, 4, 5);
INSERT INTO order_items (order_id, sku, qty, price) VALUES (3, 'SKU-1111', 1, 9.50), (4, 'SKU-2222', 2, 3.25);
COMMIT;
SET @cid = 5;
PREPARE by_customer FROM 'SELECT id, total FROM orders WHERE customer_id = ? ORDER BY id';
EXECUTE by_customer USING @cid;
DEALLOCATE PREPARE by_customer;
SELECT SLEEP(0.2);
SELECT * FROM no_such_table;
INSERT INTO customers (id, name, email) VALUES (1, 'dup', 'dup@example.com');
SELEC 1;
ALTER TABLE customers ADD COLUMN last_seen DATETIME NULL;
CREATE INDEX idx_status_created ON orders (status, created_at);
ANALYZE TABLE orders;
OPTIMIZE TABLE order_items;
CHECK TABLE customers;
DELIMITER //
CREATE PROCEDURE customer_summary(IN cid INT)
BEGIN
  SELECT c.name, COUNT(o.id) AS orders, COALESCE(SUM(o.total), 0) AS spent
    FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
   WHERE c.id = cid GROUP BY c.name;
  UPDATE customers SET last_seen = NOW() WHERE id = cid;
END//
DELIMITER ;
CALL customer_summary(7);
CALL customer_summary(12);
use analytics;
CREATE TABLE daily_sales (day DATE PRIMARY KEY, orders INT NOT NULL, revenue DECIMAL(12,2) NOT NULL);
INSERT INTO daily_sales SELECT DATE(created_at), COUNT(*), SUM(total) FROM shop.orders GROUP BY DATE(created_at);
SELECT * FROM daily_sales ORDER BY day DESC LIMIT 7;
use shop;
SELECT COUNT(*) FROM orders;
"""
    report = """
SELECT day, revenue FROM daily_sales WHERE day >= '2026-11-20' ORDER BY day;
SELECT SUM(revenue) AS total FROM daily_sales;
use shop;
SELECT status, COUNT(*) AS n, AVG(total) AS avg_total FROM orders GROUP BY status;
SELECT c.city, COUNT(DISTINCT o.customer_id) AS buyers FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.city ORDER BY buyers DESC;
UPDATE orders SET status = 'paid' WHERE id = 1;
SELECT SLEEP(0.25), 'report done';
"""
    admin = """
SHOW DATABASES;
FLUSH TABLES;
SELECT table_schema, table_name, table_rows FROM information_schema.tables WHERE table_schema IN ('shop', 'analytics');
"""
    return {"setup": setup, "app": app, "report": report, "admin": admin}


def make_mariadb_sample(out: Path) -> dict[str, Any]:
    dest = out / "mariadb-slowquery.log"
    part = out / ".mariadb-slowquery.log.part"
    part.unlink(missing_ok=True)
    sql = _mariadb_sample_sql()
    commands = []
    with _removed_on_error(part), MariaDB(part, "query_plan,explain", log=log) as db:
        # sessions a second apart, so the log has several "# Time:" lines (MariaDB writes one per second)
        db.script(sql["setup"])
        time.sleep(1.05)
        db.script(sql["app"], user="app", password="app-secret", database="shop")
        time.sleep(1.05)
        db.script(sql["report"], user="report", password="report-secret", database="analytics")
        time.sleep(1.05)
        db.script(sql["admin"])
        for cmd in ("ping", "refresh", "flush-status", "processlist"):  # COM_* commands, not SQL
            run(db.admin_command(cmd), check=False)
        commands.append("mariadb client sessions: root (setup), app@shop, report@analytics, root (admin); "
                        "mariadb-admin ping, refresh, flush-status, processlist")
        time.sleep(1.05)
        db.query("CREATE DATABASE sbtest; GRANT ALL ON sbtest.* TO 'app'@'localhost'")
        sb = [*db.sysbench_args("app", "app-secret"), "--tables=1", "--table-size=20", "--threads=1"]
        run(sysbench_command("oltp_read_write", sb, (), "prepare"))
        run(sysbench_command("oltp_read_write", sb, ["--events=3", "--time=0"]))
        commands.append("sysbench oltp_read_write --tables=1 --table-size=20 prepare; run --events=3")
        version = db.version
    os.replace(part, dest)
    os.chmod(dest, 0o644)
    return {"file": dest.name, "server_version": version, "commands": commands, **scan_log(dest, "mysql"),
            "bytes": dest.stat().st_size}


def _pg_sample_sql() -> dict[str, str]:
    customers = _rows(30, lambda i, r: f"('{_NAMES[i % len(_NAMES)].replace(chr(39), chr(39) * 2)} {i}', "
                                      f"'user{i}@example.com', '{_CITIES[i % len(_CITIES)]}')", 11)
    orders = _rows(80, lambda i, r: f"({r.randint(1, 30)}, '{r.choice(['new', 'paid', 'shipped'])}', "
                                    f"{r.randint(100, 99999) / 100:.2f})", 12)
    setup = """
CREATE ROLE app LOGIN;
CREATE ROLE report LOGIN;
CREATE DATABASE shop OWNER app;
"""
    app = f"""
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, city text,
                        created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
                     status text NOT NULL DEFAULT 'new', total numeric(10,2) NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX orders_customer_idx ON orders (customer_id);
INSERT INTO customers (name, email, city) VALUES
{customers};
INSERT INTO orders (customer_id, status, total) VALUES
{orders};
SELECT * FROM customers WHERE id = 7;
SELECT id, name FROM customers WHERE city = 'Zürich' ORDER BY name;
SELECT c.name,
       count(o.id) AS orders,
       sum(o.total) AS spent
  FROM customers c
  JOIN orders o ON o.customer_id = c.id
 WHERE o.status = 'paid'
 GROUP BY c.name
 ORDER BY spent DESC
 LIMIT 5;
/* checkout */ UPDATE orders SET status = 'paid' WHERE id = 3;
UPDATE customers SET city = 'Paris' WHERE email LIKE '%7@example.com';
DELETE FROM orders WHERE status = 'new' AND total < 50;
BEGIN;
INSERT INTO orders (customer_id, status, total) VALUES (7, 'new', 19.99) RETURNING id;
UPDATE customers SET city = 'Oslo' WHERE id = 7;
COMMIT;
SELECT name FROM customers WHERE name = 'O''Brien 10' OR name LIKE 'Zo%';
SELECT pg_sleep(0.2);
SELECT * FROM no_such_table;
INSERT INTO customers (name, email) VALUES ('dup', 'user1@example.com');
CREATE FUNCTION customer_total(cid int) RETURNS numeric
LANGUAGE plpgsql AS $$
BEGIN
  RETURN (SELECT coalesce(sum(total), 0) FROM orders WHERE customer_id = cid);
END
$$;
SELECT customer_total(3);
PREPARE by_customer(int) AS SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY id;
EXECUTE by_customer(5);
DEALLOCATE by_customer;
DO $$ BEGIN PERFORM count(*) FROM orders; END $$;
VACUUM ANALYZE orders;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO report;
"""
    report = """
SELECT status, count(*) AS n, avg(total) AS avg_total FROM orders GROUP BY status;
SELECT c.city, count(DISTINCT o.customer_id) AS buyers
  FROM orders o JOIN customers c ON c.id = o.customer_id
 GROUP BY c.city ORDER BY buyers DESC;
UPDATE orders SET status = 'paid' WHERE id = 1;
SELECT count(*) FROM pgbench_accounts WHERE abalance <> 0;
"""
    return {"setup": setup, "app": app, "report": report}


def make_postgres_sample(out: Path) -> dict[str, Any]:
    dest = out / "postgresql.log"
    sql = _pg_sample_sql()
    commands = []
    with Postgres(log=log) as pg:
        pg.psql(sql["setup"], quiet=True)
        time.sleep(1.05)  # sessions a second apart: distinct %t values
        pg.psql(sql["app"], user="app", db="shop", appname="checkout-service")
        time.sleep(1.05)
        pg.pgbench(["-i", "-s", "1", "-q"], "app", "shop")
        pg.psql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO report;", user="app", db="shop")
        for args in (["-c", "2", "-j", "1", "-t", "4", "-M", "simple"],
                     ["-c", "2", "-j", "1", "-t", "4", "-M", "prepared"],
                     ["-c", "1", "-j", "1", "-t", "5", "-M", "extended", "-S"]):
            pg.pgbench(args, "app", "shop")
            commands.append("pgbench -U app -d shop " + " ".join(args))
            time.sleep(1.05)
        pg.psql(sql["report"], user="report", db="shop", appname="reporting")
        commands[:0] = ["psql sessions: postgres (setup), app@shop (schema, DML, errors, pg_sleep, PREPARE)",
                        "pgbench -U app -d shop -i -s 1 -q"]
        commands.append("psql session: report@shop (reads, a permission error)")
        version = pg.version
        pg.keep = True
    try:
        pg.take_log(dest)
    finally:
        shutil.rmtree(pg.tmp, ignore_errors=True)
    return {"file": dest.name, "server_version": version, "commands": commands, **scan_log(dest, "postgres"),
            "bytes": dest.stat().st_size}


# A MySQL 8.0 server is not packaged in Debian 12, so this sample is written by hand (by this function) in
# the format MySQL 8.0's File_query_log::write_slow produces with log_slow_extra=ON and log_timestamps=UTC:
#   "# Time: <ISO-8601 µs Z>" / "# User@Host: <priv>[<user>] @ <host> [<ip>]  Id: %5u" /
#   "# Query_time: … Lock_time: … Rows_sent: …  Rows_examined: … Thread_id: … Errno: … Killed: …
#    Bytes_received: … Bytes_sent: … Read_*: … Sort_*: … Created_tmp_disk_tables: … Created_tmp_tables: …
#    Start: … End: …" / optional "use db;" when the schema changes / "SET [insert_id=…,]timestamp=…;" / query.
# (MySQL ≥ 8.0.3x adds "Count_hit_tmp_table_size: N" before Start: — not included here.)
MYSQL80_BANNER = ("/rdsdbbin/mysql/bin/mysqld, Version: 8.0.35 (Source distribution). started with:\n"
                  "Tcp port: 3306  Unix socket: /tmp/mysql.sock\n"
                  "Time                 Id Command    Argument\n")
_M80_ENTRIES: list[dict[str, Any]] = [
    # end: seconds after 2026-11-27T14:00:00Z; q: query time; counters default 0
    dict(end=1.204117, user="app", ip="10.0.3.17", id=1841, db="shop", q=0.000412, lock=0.000003, sent=1, exam=1,
         recv=66, bsent=412, read_key=1, sql="SELECT * FROM customers WHERE email = 'ada@example.com';"),
    dict(end=3.551203, user="app", ip="10.0.3.17", id=1841, db="shop", q=1.203311, lock=0.000021, sent=10,
         exam=48211, recv=212, bsent=1180, read_key=20000, read_rnd_next=28201, sort_rows=10, sort_scan=1, tmp=1,
         sql="SELECT c.name, COUNT(o.id) AS n, SUM(o.total) AS spent FROM customers c JOIN orders o "
             "ON o.customer_id = c.id WHERE o.status = 'paid' GROUP BY c.name ORDER BY spent DESC LIMIT 10;"),
    dict(end=7.018830, user="app", ip="10.0.3.18", id=1842, db="shop", q=0.003127, lock=0.000010, sent=0, exam=0,
         recv=112, bsent=11, insert_id=100233,
         sql="INSERT INTO orders (customer_id, status, total) VALUES (17, 'new', 42.50);"),
    dict(end=7.022415, user="app", ip="10.0.3.18", id=1842, db="shop", q=0.002102, lock=0.000008, sent=0, exam=1,
         recv=67, bsent=52, read_key=1, sql="UPDATE orders SET status = 'paid' WHERE id = 100233;"),
    dict(end=61.900412, user="report", ip="10.0.7.4", id=1900, db="analytics", q=3.412093, lock=0.000044, sent=27,
         exam=250027, recv=229, bsent=1033, read_rnd_next=250001, sort_rows=27, sort_scan=1, tmp=1,
         sql="SELECT DATE(created_at) AS day,\n       COUNT(*) AS orders,\n       SUM(total) AS revenue\n"
             "  FROM shop.orders\n WHERE created_at >= '2026-11-01'\n GROUP BY DATE(created_at)\n ORDER BY day;"),
    dict(end=125.000707, user="report", ip="10.0.7.4", id=1900, db="analytics", q=2.000311, lock=0.000019, sent=0,
         exam=180442, recv=151, bsent=0, read_rnd_next=180442, errno=3024, killed=3024,
         sql="SELECT /*+ MAX_EXECUTION_TIME(2000) */ customer_id, SUM(total) FROM shop.orders "
             "GROUP BY customer_id ORDER BY 2 DESC;"),
    dict(end=300.114005, user="app", ip="10.0.3.19", id=1843, db="shop", q=0.000088, lock=0.0, sent=0, exam=0,
         recv=50, bsent=0, errno=1146, sql="SELECT * FROM order_itemz WHERE order_id = 5;"),
    dict(end=600.002113, user="rdsadmin", ip="", host="localhost", id=7, db="", q=0.000061, lock=0.0, sent=1,
         exam=0, recv=30, bsent=70, sql="SELECT @@GLOBAL.read_only;"),
    dict(end=905.338190, user="app", ip="10.0.3.19", id=1844, db="shop", q=5.802211, lock=0.204417, sent=0,
         exam=1200311, recv=89, bsent=55, read_rnd_next=1200312,
         sql="DELETE FROM carts WHERE updated_at < NOW() - INTERVAL 7 DAY;"),
    dict(end=1800.450010, user="admin", ip="10.0.9.2", id=1901, db="shop", q=12.507733, lock=0.000812, sent=0,
         exam=0, recv=97, bsent=59,
         sql="ALTER TABLE orders ADD INDEX idx_status_created (status, created_at);"),
    dict(end=2400.781300, user="app", ip="10.0.3.17", id=1841, db="shop", q=0.412009, lock=0.000120, sent=1,
         exam=5021, recv=45, bsent=301, read_key=2, read_next=5019, sql="CALL refresh_customer_stats(17);"),
    dict(end=3599.990001, user="app", ip="10.0.3.20", id=1850, db="shop", q=0.751230, lock=0.000015, sent=12,
         exam=60212, recv=173, bsent=988, read_key=12, read_rnd_next=60200,
         sql="SELECT id, name, city FROM customers WHERE id IN (3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610) "
             "AND city <> 'Zürich';"),
    "BANNER",  # the hourly flush: RDS reopens the log and the server writes its banner again
    dict(end=3600.912402, user="app", ip="10.0.3.20", id=1850, db="shop", q=0.000301, lock=0.0, sent=0, exam=0,
         recv=11, bsent=11, sql="COMMIT;"),
    dict(end=3602.120044, user="app", ip="10.0.3.17", id=1851, db="analytics", q=0.610337, lock=0.000031, sent=0,
         exam=0, recv=120, bsent=52, insert_id=5001,
         sql="INSERT INTO daily_sales (day, orders, revenue) VALUES ('2026-11-27', 1412, 88123.40);"),
]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_mysql80_handwritten(out: Path) -> dict[str, Any]:
    base = datetime(2026, 11, 27, 14, 0, 0, tzinfo=timezone.utc).timestamp()
    parts = [MYSQL80_BANNER]
    db = ""
    n = 0
    for e in _M80_ENTRIES:
        if e == "BANNER":
            parts.append(MYSQL80_BANNER)
            db = ""  # a reopened log repeats "use" for the next entry
            continue
        end = base + e["end"]
        start = end - e["q"]
        host = e.get("host", "")
        c = lambda k: e.get(k, 0)  # noqa: E731
        parts.append(f"# Time: {_iso(end + 0.000046)}\n")
        parts.append(f"# User@Host: {e['user']}[{e['user']}] @ {host} [{e['ip']}]  Id: {e['id']:5d}\n")
        parts.append(
            f"# Query_time: {e['q']:.6f}  Lock_time: {e['lock']:.6f} Rows_sent: {e['sent']}  Rows_examined: "
            f"{e['exam']} Thread_id: {e['id']} Errno: {c('errno')} Killed: {c('killed')} Bytes_received: "
            f"{e['recv']} Bytes_sent: {e['bsent']} Read_first: {c('read_first')} Read_last: {c('read_last')} "
            f"Read_key: {c('read_key')} Read_next: {c('read_next')} Read_prev: {c('read_prev')} Read_rnd: "
            f"{c('read_rnd')} Read_rnd_next: {c('read_rnd_next')} Sort_merge_passes: {c('sort_merge')} "
            f"Sort_range_count: {c('sort_range')} Sort_rows: {c('sort_rows')} Sort_scan_count: {c('sort_scan')} "
            f"Created_tmp_disk_tables: {c('tmp_disk')} Created_tmp_tables: {c('tmp')} Start: {_iso(start)} "
            f"End: {_iso(end)}\n")
        if e["db"] and e["db"] != db:
            parts.append(f"use {e['db']};\n")
            db = e["db"]
        ins = f"insert_id={e['insert_id']}," if "insert_id" in e else ""
        parts.append(f"SET {ins}timestamp={int(start)};\n{e['sql']}\n")
        n += 1
    dest = out / "mysql80-rds-slowquery.log"
    dest.write_text("".join(parts), encoding="utf-8")
    return {"file": dest.name, "server_version": "hand-written, MySQL 8.0 format", "entries": n,
            "bytes": dest.stat().st_size}


# --------------------------------------------------------------------------------------------------- main
def _summary(results: list[dict[str, Any]]) -> str:
    lines = [f"{'file':32} {'MB':>8} {'entries':>10} {'real MB':>8} {'replayed MB':>11} {'seconds':>8}"]
    for r in results:
        size = r.get("bytes", 0)
        real = r.get("real_bytes", size)
        lines.append(f"{r['file']:32} {size / MB:8.1f} {r.get('entries', 0):10d} {real / MB:8.1f} "
                     f"{r.get('replayed_bytes', 0) / MB:11.1f} {r.get('seconds_this_run', 0):8.1f}"
                     + ("  (reused)" if r.get("reused") else ""))
        if r.get("rds_variant"):
            lines.append(f"  + {r['rds_variant']} with {r['rds_banners']} RDS banners")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mysql-mb", type=float, default=200, help="MariaDB slow log size in MB (0 = skip)")
    ap.add_argument("--postgres-mb", type=float, default=200, help="PostgreSQL log size in MB (0 = skip)")
    ap.add_argument("--out", type=Path, help=f"output dir (default {DEFAULT_BENCH_DIR}, or "
                                             f"{DEFAULT_SAMPLES_DIR} with --samples)")
    ap.add_argument("--force", action="store_true", help="regenerate even if big-enough files exist")
    ap.add_argument("--max-real-seconds", type=float, default=420,
                    help="per engine: stop driving the real server after this long and grow by replay")
    ap.add_argument("--banner-every-mb", type=float, default=50, help="RDS banner spacing in the RDS variant")
    ap.add_argument("--samples", action="store_true", help="write the small committed samples instead")
    args = ap.parse_args(argv)

    signal.signal(signal.SIGTERM, _sigterm_to_exit)
    try:
        return _generate(args)
    except ToolMissing as e:  # a missing server/client program is a message, not a traceback
        raise SystemExit(f"make_logs: {e}") from None


def _generate(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    results: list[dict[str, Any]] = []
    if args.samples:
        out = (args.out or DEFAULT_SAMPLES_DIR).resolve()
        out.mkdir(parents=True, exist_ok=True)
        require("sysbench")
        for fn in (make_mariadb_sample, make_postgres_sample, make_mysql80_handwritten):
            ts = time.monotonic()
            r = fn(out)
            r["seconds_this_run"] = round(time.monotonic() - ts, 1)
            results.append(r)
    else:
        out = (args.out or DEFAULT_BENCH_DIR).expanduser().resolve()
        out.mkdir(parents=True, exist_ok=True)
        if args.mysql_mb > 0:
            results.append(make_mysql_bench(out, args.mysql_mb, args.max_real_seconds, args.banner_every_mb,
                                            args.force))
        if args.postgres_mb > 0:
            results.append(make_postgres_bench(out, args.postgres_mb, args.max_real_seconds, args.force))
    print(f"output: {out}")
    print(_summary(results))
    print(f"total seconds: {time.monotonic() - t0:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
