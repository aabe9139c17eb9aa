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
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from rds_slowlog.parsers.mysql import MySQLSlowLogParser  # noqa: E402
from stage_timer import child_cpu, pipeline_stages, print_anchor, run_stages  # noqa: E402

DEFAULT_FILE = Path.home() / ".cache" / "rds-slowlog" / "bench" / "mysql-slowquery.log"


STAGES = pipeline_stages("mysql", MySQLSlowLogParser)


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
