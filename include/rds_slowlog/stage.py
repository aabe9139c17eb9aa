"""The stage step: one instance-window's log streams → staged, bulk-ready chunks plus their stats.

Used by ``rds-slowlog index`` and by the DAG's stage task alike, so a local load and a scheduled run build
the same documents with the same ids.

Why one call per *instance-window* and not per file: a document id numbers repeats of identical entries
(see :mod:`rds_slowlog.documents`), and the entries of one write-second can straddle an hourly rotation
(RDS rotates a little after the hour, and MariaDB's ``# Time:`` goes back and forth between adjacent
seconds). Reading all of a window's files, in order, through one :class:`DocumentBuilder` gives every
entry the same id however the files were listed or grouped; one builder per file would number the second
file's repeats from zero again and collide.

Entries the stream may have ended inside (flag ``incomplete``, see the parsers) are left out when their
file is still being appended — the next window's run or a rerun reads them whole — and counted as
``incomplete``; from a file that is complete they are kept (flagged), because nothing more will come.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from rds_slowlog.documents import DEFAULT_INDEX_PREFIX, DEFAULT_MAX_QUERY_CHARS, DocumentBuilder
from rds_slowlog.entry import in_window
from rds_slowlog.pipeline import Classifiers, read_stream
from rds_slowlog.history import WindowHistory
from rds_slowlog.staging import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_CHUNK_MB, HISTORY, ChunkWriter, Manifest
from rds_slowlog.stats import Stats, empty, peak_rss_mb


@dataclass(frozen=True)
class StageInput:
    """One log stream of the window, in the order the window's files are read (oldest first).

    ``growing``: the file is still being appended (the current RDS file, a CloudWatch window reaching
    now): its last entry may be cut short and is left out.
    """

    source: str
    stream: BinaryIO
    engine: str = "auto"
    growing: bool = False


@dataclass
class StageResult:
    """What a stage produced: the committed manifest, the stats and one report per input."""

    manifest: Manifest
    stats: Stats
    files: list[dict[str, Any]] = field(default_factory=list)


def stage_window(
    inputs: Iterable[StageInput],
    base: str,
    *,
    instance: str,
    since: float | None = None,
    until: float | None = None,
    index_prefix: str = DEFAULT_INDEX_PREFIX,
    max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
    store_query: bool = True,
    cluster: str | None = None,
    ingest_run_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_chunk_mb: float = DEFAULT_MAX_CHUNK_MB,
    memory_threshold_mb: float | None = None,
    log_line_prefix: str | None = None,
    log_time_zone: str | None = None,
    meta: dict[str, Any] | None = None,
    history: bool = False,
) -> StageResult:
    """Parse ``inputs`` in order, keep the entries written in ``[since, until)``, build their documents with
    one builder and write them as chunks under ``base`` (committed by the manifest, written last).

    With ``history=True`` the per-class history of the staged entries (:mod:`rds_slowlog.history`) is written
    beside the chunks as ``history.json``. The caller owns (and closes) the streams. Stats: ``entries`` (of the window), ``docs``, ``incomplete``,
    ``truncated``, ``quarantined`` (lines), ``bytes`` (read), ``seconds``, ``peak_rss_mb``;
    ``entries == docs + incomplete``.
    """
    started = time.monotonic()
    builder = DocumentBuilder(instance, index_prefix=index_prefix, max_query_chars=max_query_chars,
                              store_query=store_query, cluster=cluster, ingest_run_id=ingest_run_id)
    classifiers = Classifiers()
    writer = ChunkWriter(base, chunk_size=chunk_size, max_chunk_mb=max_chunk_mb,
                         memory_threshold_mb=memory_threshold_mb)
    stats = empty()
    files: list[dict[str, Any]] = []
    windowed = since is not None or until is not None
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    add_line = writer.add
    action = builder.action
    window_history = WindowHistory() if history else None
    remember = window_history.add if window_history is not None else None
    last_time: float | None = None   # the previous file's last "# Time:", for the next file's first entries
    for item in inputs:
        kw: dict[str, Any] = {"growing": item.growing, "initial_time": last_time}
        if log_line_prefix is not None:
            kw["log_line_prefix"] = log_line_prefix
        if log_time_zone is not None:
            kw["log_time_zone"] = log_time_zone
        run = read_stream(item.stream, item.source, item.engine, **kw)
        entries = docs = left_out = 0
        # entries of the neighbouring hours (a window reads the files around it) are dropped before they are
        # classified: their texts would only fill the classifier's caches
        kept = (e for e in run.entries if in_window(e.end_time, since, until)) if windowed else run.entries
        for e, qc in classifiers(run.engine).classify_entries(kept):
            entries += 1
            if item.growing and e.flags and "incomplete" in e.flags:
                left_out += 1
                continue
            add_line(dumps(action(e, qc), option=opt))
            if remember is not None:
                remember(e, qc)
            docs += 1
        ps = run.stats
        last_time = getattr(run.parser, "last_time", None)
        stats["entries"] += entries
        stats["docs"] += docs
        stats["incomplete"] += left_out
        stats["truncated"] += ps.truncated_entries
        stats["quarantined"] += ps.quarantined_lines
        stats["bytes"] += ps.bytes
        report = ps.as_dict()
        report.pop("samples", None)
        files.append({"source": item.source, "engine": run.engine, "growing": item.growing,
                      "window_entries": entries, "docs": docs, "incomplete_left_out": left_out, "parse": report})
    if window_history is not None:
        writer.write_file(HISTORY, dumps(window_history.as_json()))
    manifest = writer.close(instance=instance, ingest_run_id=builder.ingest_run_id, since=since, until=until,
                            **(meta or {}))
    stats["seconds"] = round(time.monotonic() - started, 3)
    stats["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return StageResult(manifest, stats, files)


__all__ = ["StageInput", "StageResult", "stage_window"]
