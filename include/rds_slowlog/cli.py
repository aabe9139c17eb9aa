"""``rds-slowlog`` — the seed's local debug run, grown up: parse, digest, and (later) index/download.

Everything here is a thin shell over the core pipeline; the Airflow tasks call the same functions.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, BinaryIO

import orjson

from rds_slowlog import __version__
from rds_slowlog.digest import Digest
from rds_slowlog.documents import DEFAULT_MAX_QUERY_CHARS, DocumentBuilder
from rds_slowlog.entry import Entry, in_window
from rds_slowlog.pipeline import Classifiers, LogRun, classified, read_paths
from rds_slowlog.stats import peak_rss_mb

EXIT_OK, EXIT_USAGE, EXIT_INPUT = 0, 2, 3


def parse_time(value: str) -> float:
    """ISO 8601 (``2026-11-27T14:00:00Z``, naive means UTC) or epoch seconds → epoch seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time or epoch seconds: {value!r}") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def time_zone(value: str) -> str:
    """A ``--log-time-zone`` value, checked up front (``UTC``, ``+05:30``, an IANA name)."""
    from rds_slowlog.parsers.mysql import zone_converter

    try:
        zone_converter(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("logs", nargs="+", metavar="LOG", help="log files (plain, .gz, .bz2 or .xz)")
    p.add_argument("--engine", choices=("auto", "mysql", "postgres"), default="auto",
                   help="log format (default: detected from the first 64 KiB of each file)")
    p.add_argument("--log-line-prefix", default="%t:%r:%u@%d:[%p]:",
                   help="PostgreSQL log_line_prefix (default: the RDS one %(default)s)")
    p.add_argument("--since", type=parse_time, help="only entries written at or after this time")
    p.add_argument("--until", type=parse_time, help="only entries written before this time")
    p.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    p.add_argument("--growing", action="store_true",
                   help="the logs are still being written: flag a last entry that may be cut short 'incomplete'")
    p.add_argument("--log-time-zone", metavar="ZONE", type=time_zone,
                   help="zone of MySQL/MariaDB zone-less '# Time:' values (UTC, +05:30, Europe/Berlin); "
                        "default: inferred from SET timestamp")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rds-slowlog", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("parse", help="one JSON document per entry (NDJSON)")
    _add_input_args(p)
    p.add_argument("--out", metavar="FILE.ndjson", help="write here instead of stdout")
    p.add_argument("--instance", default="local", help="RDS instance id recorded in the documents")
    p.add_argument("--index-prefix", default="rds-slowlog")
    p.add_argument("--max-query-chars", type=int, default=DEFAULT_MAX_QUERY_CHARS)
    p.add_argument("--fingerprint-only", action="store_true",
                   help="PII-safe: store only fingerprints, never the query text or parameters")
    p.add_argument("--stats", action="store_true", help="print per-file parse statistics to stderr")

    d = sub.add_parser("digest", help="per-class report like pt-query-digest")
    _add_input_args(d)
    d.add_argument("--output", choices=("text", "json"), default="text")
    d.add_argument("--limit", type=int, default=20, help="classes to report (0 = all)")

    from rds_slowlog import download, index_command

    ix = sub.add_parser("index", help="parse, stage and bulk-index local log files into Elasticsearch/OpenSearch")
    index_command.add_arguments(ix)

    dl = sub.add_parser("download", help="download a window's log files from the RDS API (same code as the DAG)")
    download.add_arguments(dl)

    # Handled in main() before argparse so that its own options (--logs, --fault, …) pass through.
    sub.add_parser("rds-emulator", help="serve log files through an emulated RDS API (tests, demo); "
                   "see `rds-slowlog rds-emulator --help`", add_help=False)
    return ap


@contextlib.contextmanager
def _progress(total_bytes: int | None, label: str) -> Iterator[Any]:
    """A rich progress bar on stderr (callers check that stderr is a terminal); yields an updater."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total_bytes)
        yield lambda done: bar.update(task, completed=done)


def _iter_runs(args: argparse.Namespace, report: list[dict[str, Any]]) -> Iterator[tuple[LogRun, BinaryIO]]:
    return read_paths(args.logs, args.engine, log_line_prefix=args.log_line_prefix, errors=report,
                      growing=args.growing or None, log_time_zone=args.log_time_zone)


def _entries_with_progress(run: LogRun, classifiers: Classifiers, no_progress: bool):
    pairs = classified(run, classifiers)
    if no_progress or not sys.stderr.isatty():
        yield from pairs
        return
    with _progress(run.size, run.source.rsplit("/", 1)[-1]) as update:
        for count, pair in enumerate(pairs, 1):
            if count & 0x3FF == 0:
                update(pair[0].offset)
            yield pair


def cmd_parse(args: argparse.Namespace) -> int:
    builder = DocumentBuilder(args.instance, index_prefix=args.index_prefix,
                              max_query_chars=args.max_query_chars, store_query=not args.fingerprint_only)
    classifiers = Classifiers()
    report: list[dict[str, Any]] = []
    out = open(args.out, "wb") if args.out else sys.stdout.buffer
    dumps = orjson.dumps
    windowed = args.since is not None or args.until is not None
    failed = False
    try:
        for run, stream in _iter_runs(args, report):
            with stream:
                buf: list[bytes] = []
                for e, qc in _entries_with_progress(run, classifiers, args.no_progress):
                    if windowed and not in_window(e.end_time, args.since, args.until):
                        continue
                    buf.append(dumps(builder.action(e, qc), option=orjson.OPT_APPEND_NEWLINE))
                    if len(buf) >= 1024:
                        out.write(b"".join(buf))
                        buf.clear()
                out.write(b"".join(buf))
            report.append({"engine": run.engine, **run.stats.as_dict()})
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


def cmd_digest(args: argparse.Namespace) -> int:
    digest = Digest(since=args.since, until=args.until)
    classifiers = Classifiers()
    report: list[dict[str, Any]] = []
    started = time.monotonic()
    for run, stream in _iter_runs(args, report):
        with stream:
            digest.add_all(_entries_with_progress(run, classifiers, args.no_progress))
        s = run.stats
        digest.files.append({"name": run.source, "size": run.size, "engine": run.engine, "entries": s.entries,
                             "quarantined_lines": s.quarantined_lines, "truncated_entries": s.truncated_entries})
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "rds-emulator":
        from rds_slowlog.testing import rds_emulator

        return int(rds_emulator.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # the reader went away (``| head``): not an error, and no traceback at exit either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "parse":
        return cmd_parse(args)
    if args.command == "digest":
        return cmd_digest(args)
    if args.command == "index":
        from rds_slowlog import index_command

        return index_command.run(args)
    if args.command == "download":
        from rds_slowlog import download

        return download.run(args)
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
