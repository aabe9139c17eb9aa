"""What the subcommands share: time and zone arguments, the input arguments, exit codes, the progress bar."""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, BinaryIO

from rds_slowlog.entry import Entry
from rds_slowlog.fingerprint.classify import QueryClass
from rds_slowlog.pipeline import Classifiers, LogRun, classified, read_paths

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_INDEX = 0, 2, 3, 4


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


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """The LOG files and how to read them (``parse`` and ``digest``)."""
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


def iter_runs(args: argparse.Namespace, report: list[dict[str, Any]]) -> Iterator[tuple[LogRun, BinaryIO]]:
    """The LOG files of :func:`add_input_arguments`, opened one at a time (unreadable ones go to ``report``)."""
    return read_paths(args.logs, args.engine, log_line_prefix=args.log_line_prefix, errors=report,
                      growing=args.growing or None, log_time_zone=args.log_time_zone)


@contextlib.contextmanager
def progress(total_bytes: int | None, label: str) -> Iterator[Any]:
    """A rich progress bar on stderr (callers check that stderr is a terminal); yields an updater."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total_bytes)
        yield lambda done: bar.update(task, completed=done)


def entries_with_progress(run: LogRun, classifiers: Classifiers,
                          no_progress: bool) -> Iterator[tuple[Entry, QueryClass]]:
    """``run``'s classified entries, with a progress bar while stderr is a terminal (unless ``no_progress``)."""
    pairs = classified(run, classifiers)
    if no_progress or not sys.stderr.isatty():
        yield from pairs
        return
    with progress(run.size, run.source.rsplit("/", 1)[-1]) as update:
        for count, pair in enumerate(pairs, 1):
            if count & 0x3FF == 0:
                update(pair[0].offset)
            yield pair
