"""The core pipeline as plain calls: open → detect → parse → classify. The CLI and the Airflow tasks
both read logs through here, so a local run and a DAG run parse identically."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from rds_slowlog.entry import Entry
from rds_slowlog.fingerprint.classify import Classifier, QueryClass, classifier_for
from rds_slowlog.logfile import open_log
from rds_slowlog.parsers.base import ParseStats
from rds_slowlog.parsers.detect import detect_engine, make_parser, sniff


@dataclass
class LogRun:
    """One source being read: its engine, its parser's counters and a classifier per engine."""

    source: str
    engine: str
    stats: ParseStats
    entries: Iterator[Entry]
    size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    parser: Any = None


def read_stream(stream: BinaryIO, source: str, engine: str = "auto", **parser_kwargs: Any) -> LogRun:
    """Parse a binary stream; ``engine="auto"`` sniffs the first 64 KiB without consuming it."""
    if engine == "auto":
        engine = detect_engine(sniff(stream))
    parser = make_parser(engine, source, **parser_kwargs)
    return LogRun(source=source, engine=engine, stats=parser.stats, entries=parser.parse(stream), parser=parser)


def read_path(path: str | Path, engine: str = "auto", **parser_kwargs: Any) -> tuple[LogRun, BinaryIO]:
    """Open (decompressing if needed) and parse a local file. The caller closes the returned stream."""
    stream = open_log(path)
    run = read_stream(stream, str(path), engine, **parser_kwargs)
    try:
        run.size = Path(path).stat().st_size
    except OSError:
        run.size = None
    return run, stream


def read_paths(paths: Iterable[str], engine: str = "auto", *, log_line_prefix: str | None = None,
               errors: list[dict[str, Any]] | None = None, **parser_kwargs: Any) -> Iterator[tuple[LogRun, BinaryIO]]:
    """Open and parse each path in turn; an unreadable file is reported on stderr and in ``errors``,
    never raised, so one bad file does not stop a batch. The caller closes each stream. Other keyword
    arguments (``growing``, ``log_time_zone``) go to the parser."""
    kw: dict[str, Any] = {k: v for k, v in parser_kwargs.items() if v is not None}
    if log_line_prefix is not None and engine in ("postgres", "auto"):
        kw["log_line_prefix"] = log_line_prefix
    for path in paths:
        try:
            run, stream = read_path(path, engine, **kw)
        except OSError as e:
            print(f"rds-slowlog: {path}: {e.strerror or e}", file=sys.stderr)
            if errors is not None:
                errors.append({"source": str(path), "error": str(e)})
            continue
        yield run, stream


class Classifiers:
    """One :class:`Classifier` per engine, created on first use and shared across files."""

    def __init__(self) -> None:
        self._by_engine: dict[str, Classifier] = {}

    def __call__(self, engine: str) -> Classifier:
        c = self._by_engine.get(engine)
        if c is None:
            c = self._by_engine[engine] = classifier_for(engine)
        return c


def classified(run: LogRun, classifiers: Classifiers) -> Iterator[tuple[Entry, QueryClass]]:
    """Pair each entry with its query class (cached per text and per fingerprint)."""
    return classifiers(run.engine).classify_entries(run.entries)
