#!/usr/bin/env python3
"""Stage-by-stage CPU throughput of the PostgreSQL log path, for one file, in one process.

Each stage re-reads the file from the start and adds one step of the pipeline, so the difference between
two rows is what that step costs:

* ``lines``     — :func:`rds_slowlog.parsers.base.iter_lines` only (the floor set by line splitting),
* ``parse``     — :class:`PostgresLogParser` → ``Entry`` objects,
* ``normalize`` — parse + :func:`rds_slowlog.fingerprint.postgres.normalize` of every query (cache cleared
  first, so it is the normaliser's real cost on this file, without the classifier's caches),
* ``classify``  — parse + normalise + statement type/tables (``pipeline.classified``; what
  ``bench/stage.py --engine postgres`` times against pgBadger),
* ``digest``    — parse + classify + per-class aggregation.

Times are ``time.process_time()`` (CPU of this process), not wall clock, because the benchmark machine is
shared; the best of ``--repeat`` runs is printed. ``--slow`` runs the parser with its fast path off (the
per-line state machine only), so both paths are measured in the same session. ``--pgbadger`` times
``pgbadger -j 1`` on the same file (child CPU from ``wait4``).

    bench/profile_postgres.py [FILE] [--repeat N] [--stages lines,parse,normalize,classify,digest]
                              [--slow] [--pgbadger] [--profile STAGE]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from rds_slowlog.fingerprint import postgres as fp_pg  # noqa: E402
from rds_slowlog.logfile import open_log  # noqa: E402
from rds_slowlog.parsers.postgres import PostgresLogParser  # noqa: E402
from stage_timer import child_cpu, pipeline_stages, print_anchor, run_stages  # noqa: E402

DEFAULT_FILE = Path.home() / ".cache" / "rds-slowlog" / "bench" / "postgresql.log"
FAST = True  # set from --slow


def _parser(path: str) -> PostgresLogParser:
    p = PostgresLogParser(path)
    if hasattr(p, "fast_path"):
        p.fast_path = FAST
    return p


def stage_normalize(path: str) -> int:
    fp_pg._cached_normalize.cache_clear()
    norm = fp_pg.normalize
    with open_log(path) as f:
        n = 0
        for e in _parser(path).parse(f):
            norm(e.query)
            n += 1
    return n


STAGES = pipeline_stages("postgres", _parser, reset=fp_pg._cached_normalize.cache_clear)
STAGES["normalize"] = stage_normalize


def pgbadger_cpu(path: str) -> float | None:
    """CPU seconds of ``pgbadger -j 1`` on ``path`` with the RDS prefix; None if not installed."""
    exe = shutil.which("pgbadger")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return child_cpu([exe, "-j", "1", "-f", "stderr", "-p", "%t:%r:%u@%d:[%p]:",
                          "-o", os.path.join(tmp, "out.json"), "--quiet", path])


def main(argv: list[str] | None = None) -> int:
    global FAST
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    ap.add_argument("--repeat", type=int, default=1, help="runs per stage; the fastest is reported")
    ap.add_argument("--stages", default="lines,parse,normalize,classify,digest")
    ap.add_argument("--slow", action="store_true", help="parser fast path off (state machine only)")
    ap.add_argument("--pgbadger", action="store_true", help="also time pgbadger -j 1")
    ap.add_argument("--profile", metavar="STAGE", help="cProfile one stage instead and print the top 25")
    args = ap.parse_args(argv)
    FAST = not args.slow
    run_stages(args.file, STAGES, args.stages, args.repeat, args.profile,
               "  (fast path off)" if args.slow else "")
    if args.pgbadger and not args.profile:
        print_anchor("pgbadger", pgbadger_cpu(args.file), args.file)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
