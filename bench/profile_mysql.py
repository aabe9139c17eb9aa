#!/usr/bin/env python3
"""Stage-by-stage CPU throughput of the MySQL slow-log path, for one file, in one process.

Each stage re-reads the file from the start and adds one step of the pipeline, so the difference between
two rows is what that step costs:

* ``lines``     — :func:`rds_slowlog.parsers.base.iter_lines` only (the floor set by line splitting),
* ``parse``     — :class:`MySQLSlowLogParser` → ``Entry`` objects,
* ``classify``  — parse + fingerprint + statement type/tables (``pipeline.classified``),
* ``digest``    — parse + classify + per-class aggregation (what ``rds-slowlog digest`` does before output).

Times are ``time.process_time()`` (CPU of this process), not wall clock, because the benchmark machine is
shared; the best of ``--repeat`` runs is printed. Optionally ``--pt`` times ``pt-query-digest --output json``
on the same file (child CPU from ``wait4``) so the ratio is measured in the same run.

    bench/profile_mysql.py [FILE] [--repeat N] [--stages lines,parse,classify,digest] [--pt] [--profile STAGE]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from rds_slowlog.digest import Digest  # noqa: E402
from rds_slowlog.logfile import open_log  # noqa: E402
from rds_slowlog.parsers.base import iter_lines  # noqa: E402
from rds_slowlog.parsers.mysql import MySQLSlowLogParser  # noqa: E402
from rds_slowlog.pipeline import Classifiers, LogRun, classified  # noqa: E402

DEFAULT_FILE = Path.home() / ".cache" / "rds-slowlog" / "bench" / "mysql-slowquery.log"


def stage_lines(path: str) -> int:
    with open_log(path) as f:
        n = 0
        for _ in iter_lines(f):
            n += 1
    return n


def stage_parse(path: str) -> int:
    with open_log(path) as f:
        n = 0
        for _ in MySQLSlowLogParser(path).parse(f):
            n += 1
    return n


def _run(path: str, f) -> LogRun:
    p = MySQLSlowLogParser(path)
    return LogRun(source=path, engine="mysql", stats=p.stats, entries=p.parse(f))


def stage_classify(path: str) -> int:
    with open_log(path) as f:
        n = 0
        for _ in classified(_run(path, f), Classifiers()):
            n += 1
    return n


def stage_digest(path: str) -> int:
    with open_log(path) as f:
        run = _run(path, f)
        d = Digest()
        d.add_all(classified(run, Classifiers()))
        d.as_pt_json()
    return run.stats.entries


STAGES: dict[str, Callable[[str], int]] = {
    "lines": stage_lines, "parse": stage_parse, "classify": stage_classify, "digest": stage_digest,
}


def pt_cpu(path: str) -> float | None:
    """CPU seconds (user+sys) of ``pt-query-digest --output json`` on ``path``; None if not installed."""
    exe = shutil.which("pt-query-digest")
    if exe is None:
        return None
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen([exe, "--output", "json", path], stdout=null, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    ap.add_argument("--repeat", type=int, default=1, help="runs per stage; the fastest is reported")
    ap.add_argument("--stages", default="lines,parse,classify,digest")
    ap.add_argument("--pt", action="store_true", help="also time pt-query-digest --output json")
    ap.add_argument("--profile", metavar="STAGE", help="cProfile one stage instead and print the top 25")
    args = ap.parse_args(argv)
    path = args.file
    size_mb = os.path.getsize(path) / 1e6

    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(STAGES[args.profile], path)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0

    print(f"{path}: {size_mb:.1f} MB")
    print(f"{'stage':<10} {'cpu s':>8} {'MB/s':>8} {'entries/s':>10}")
    for name in args.stages.split(","):
        fn = STAGES[name]
        best = float("inf")
        count = 0
        for _ in range(args.repeat):
            t0 = time.process_time()
            count = fn(path)
            best = min(best, time.process_time() - t0)
        unit = "lines/s" if name == "lines" else ""
        print(f"{name:<10} {best:8.2f} {size_mb / best:8.1f} {count / best:10.0f} {unit}")
    if args.pt:
        cpu = pt_cpu(path)
        if cpu is None:
            print("pt-query-digest: not installed")
        else:
            print(f"{'pt-digest':<10} {cpu:8.2f} {size_mb / cpu:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
