"""``rds-slowlog digest LOG...``: a per-class report like pt-query-digest's (text, or pt's JSON shape)."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson

from rds_slowlog.cli.common import EXIT_INPUT, EXIT_OK, add_input_arguments, entries_with_progress, iter_runs
from rds_slowlog.digest import Digest
from rds_slowlog.pipeline import Classifiers
from rds_slowlog.stats import peak_rss_mb


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rds-slowlog digest``."""
    add_input_arguments(p)
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument("--limit", type=int, default=20, help="classes to report (0 = all)")


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 3 when a LOG could not be read."""
    digest = Digest(since=args.since, until=args.until)
    classifiers = Classifiers()
    report: list[dict[str, Any]] = []
    started = time.monotonic()
    for log_run, stream in iter_runs(args, report):
        with stream:
            digest.add_all(entries_with_progress(log_run, classifiers, args.no_progress))
        s = log_run.stats
        digest.files.append({"name": log_run.source, "size": log_run.size, "engine": log_run.engine,
                             "entries": s.entries, "quarantined_lines": s.quarantined_lines,
                             "truncated_entries": s.truncated_entries})
        report.append(s.as_dict())
    limit = args.limit or None
    if args.output == "json":
        sys.stdout.buffer.write(orjson.dumps(digest.as_pt_json(limit), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(digest.as_text(limit))
        sys.stdout.write(f"\n# parsed {sum(f['entries'] for f in digest.files)} entries from "
                         f"{len(digest.files)} file(s) in {time.monotonic() - started:.2f}s, "
                         f"peak RSS {peak_rss_mb():.0f} MB\n")
        for f in digest.files:
            if f["quarantined_lines"] or f["truncated_entries"]:
                sys.stdout.write(f"# {f['name']}: {f['quarantined_lines']} quarantined line(s), "
                                 f"{f['truncated_entries']} truncated entr(y/ies)\n")
    return EXIT_INPUT if any("error" in r for r in report) else EXIT_OK
