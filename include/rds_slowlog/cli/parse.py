"""``rds-slowlog parse LOG...``: one JSON document per entry (NDJSON), the documents the DAG would index."""
from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

import orjson

from rds_slowlog.cli.common import EXIT_INPUT, EXIT_OK, add_input_arguments, entries_with_progress, iter_runs
from rds_slowlog.documents import DEFAULT_MAX_QUERY_CHARS, DocumentBuilder
from rds_slowlog.entry import in_window
from rds_slowlog.pipeline import Classifiers


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rds-slowlog parse``."""
    add_input_arguments(p)
    p.add_argument("--out", metavar="FILE.ndjson", help="write here instead of stdout")
    p.add_argument("--instance", default="local", help="RDS instance id recorded in the documents")
    p.add_argument("--index-prefix", default="rds-slowlog")
    p.add_argument("--max-query-chars", type=int, default=DEFAULT_MAX_QUERY_CHARS)
    p.add_argument("--fingerprint-only", action="store_true",
                   help="PII-safe: store only fingerprints, never the query text or parameters")
    p.add_argument("--stats", action="store_true", help="print per-file parse statistics to stderr")


def run(args: argparse.Namespace) -> int:
    """Write the documents; per-file statistics to stderr with ``--stats``. Exit 3 when a LOG could not be read."""
    builder = DocumentBuilder(args.instance, index_prefix=args.index_prefix,
                              max_query_chars=args.max_query_chars, store_query=not args.fingerprint_only)
    classifiers = Classifiers()
    report: list[dict[str, Any]] = []
    out = open(args.out, "wb") if args.out else sys.stdout.buffer
    dumps = orjson.dumps
    windowed = args.since is not None or args.until is not None
    failed = False
    try:
        for log_run, stream in iter_runs(args, report):
            with stream:
                buf: list[bytes] = []
                for e, qc in entries_with_progress(log_run, classifiers, args.no_progress):
                    if windowed and not in_window(e.end_time, args.since, args.until):
                        continue
                    buf.append(dumps(builder.action(e, qc), option=orjson.OPT_APPEND_NEWLINE))
                    if len(buf) >= 1024:
                        out.write(b"".join(buf))
                        buf.clear()
                out.write(b"".join(buf))
            report.append({"engine": log_run.engine, **log_run.stats.as_dict()})
    except BrokenPipeError:
        failed = True
    finally:
        if args.out:
            out.close()
        else:
            with contextlib.suppress(BrokenPipeError):
                out.flush()
    if args.stats:
        for r in report:
            r.pop("samples", None)
            print(orjson.dumps(r).decode(), file=sys.stderr)
    if failed:
        return EXIT_OK
    return EXIT_INPUT if any("error" in r for r in report) else EXIT_OK
