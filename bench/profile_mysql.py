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
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from rds_slowlog.digest import Digest  # noqa: E402
from rds_slowlog.logfile import open_log  # noqa: E402
from rds_slowlog.parsers.mysql import MySQLSlowLogParser  # noqa: E402
from rds_slowlog.pipeline import Classifiers, LogRun, classified  # noqa: E402
from stage_timer import child_cpu, print_anchor, run_stages, stage_lines  # noqa: E402

DEFAULT_FILE = Path.home() / ".cache" / "rds-slowlog" / "bench" / "mysql-slowquery.log"


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
    """CPU seconds of ``pt-query-digest --output json`` on ``path``; None if not installed."""
    exe = shutil.which("pt-query-digest")
    return None if exe is None else child_cpu([exe, "--output", "json", path])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    ap.add_argument("--repeat", type=int, default=1, help="runs per stage; the fastest is reported")
    ap.add_argument("--stages", default="lines,parse,classify,digest")
    ap.add_argument("--pt", action="store_true", help="also time pt-query-digest --output json")
    ap.add_argument("--profile", metavar="STAGE", help="cProfile one stage instead and print the top 25")
    args = ap.parse_args(argv)
    run_stages(args.file, STAGES, args.stages, args.repeat, args.profile)
    if args.pt and not args.profile:
        print_anchor("pt-digest", pt_cpu(args.file), args.file)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
