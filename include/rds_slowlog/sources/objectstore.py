"""Read slow-query logs from object storage (``s3://…``) or local directories, through fsspec.

Archived RDS logs (copied to S3 by a Lambda, by ``rds-slowlog download``, or by hand) and local files are the
source for history, backfill and the demo. Any fsspec URL works: plain paths, ``file://``, ``s3://bucket/prefix``
(needs ``s3fs``; pass ``endpoint_url`` and credentials in ``storage_options``, e.g.
``{"endpoint_url": "http://127.0.0.1:5000", "key": …, "secret": …}``), or a path object that carries its own
filesystem — Airflow's ``ObjectStoragePath`` (``s3://conn_id@bucket/prefix``, credentials from the Airflow
connection) or a ``UPath`` — so the Airflow layer passes one in and this module never imports Airflow.

Which files belong to a window is decided from RDS-style names, which survive archiving (object mtimes are
upload times, not write times): ``mysql-slowquery.log.YYYY-MM-DD.HH``, the older ring ``mysql-slowquery.log.N``
(dated by mtime), ``postgresql.log.YYYY-MM-DD-HH[MM]``, each optionally compressed (``.gz``/``.bz2``/``.xz``).
A dated file covers from its name's time until the next dated file of the same engine in the same directory
begins (the last one: an hour, or up to its mtime). Files whose names carry no time (the current
``mysql-slowquery.log``, ``slow.log``, …) are chosen by mtime: kept when written at or after the window start.
Compression is detected from magic bytes, not names, as :func:`rds_slowlog.logfile.open_log` does for local
files, and undone while streaming.
"""
from __future__ import annotations

import calendar
import fnmatch
import math
import os
import posixpath
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, BinaryIO

from rds_slowlog.logfile import MAGIC
from rds_slowlog.sources.base import (SETTLE_SECONDS, DownloadReport, LogFileRef, Resume,
                                      SourceStream, StreamRaw)
from rds_slowlog.sources.rds import file_first_written, normalize_engine

__all__ = ["ObjectStoreLogSource", "name_first_written", "open_decompressed"]

_COMPRESSED_SUFFIX = re.compile(r"\.(?:gz|bz2|xz)$")
_HOUR = 3600.0


def name_first_written(name: str, mtime: float | None = None) -> tuple[str, float | None, bool] | None:
    """``(engine, start time or None, dated)`` for an RDS slow-log file name (any directory, optionally
    compressed), or None when the name is not an RDS slow-log name.

    ``dated`` is true when the name itself tells when the file began (``.2024-03-01.10``, PostgreSQL
    ``.2024-03-01-10``, or the ring's ``.10`` dated by ``mtime``); the current ``mysql-slowquery.log`` is
    ``("mysql", None, False)``.
    """
    base = _COMPRESSED_SUFFIX.sub("", posixpath.basename(name))
    if base.startswith("mysql-slowquery.log"):
        info = file_first_written("slowquery/" + base, mtime)
    elif base.startswith("postgresql.log."):
        info = file_first_written("error/" + base, mtime)
    else:
        return None
    if info is None:
        return None
    return info[0], info[1], info[1] is not None


def open_decompressed(fileobj: BinaryIO) -> tuple[BinaryIO, str | None]:
    """Wrap an open binary stream so reads give decompressed bytes; ``(stream, "gzip"|"bz2"|"xz"|None)``.

    Detection needs the first 6 bytes without consuming them: ``peek`` when the stream has it, else a read
    and a seek back. Closing the returned wrapper does not close ``fileobj``.
    """
    peek = getattr(fileobj, "peek", None)
    if peek is not None:
        head = peek(6)[:6]
    else:
        pos = fileobj.tell()
        head = fileobj.read(6)
        fileobj.seek(pos)
    # rds_slowlog.logfile's table: gzip.open / bz2.open / lzma.open accept an open file object as well
    for magic, opener in MAGIC:
        if head.startswith(magic):
            return opener(fileobj, "rb"), opener.__module__.replace("lzma", "xz")
    return fileobj, None


def _mtime(info: Mapping[str, Any]) -> float | None:
    """Modification time in epoch seconds from an fsspec ``info`` dict (keys differ per filesystem)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "mtime_ns", "created"):
        v = info.get(key)
        if v is None:
            continue
        if isinstance(v, datetime):
            if v.tzinfo is None:
                return float(calendar.timegm(v.timetuple())) + v.microsecond / 1e6
            return v.timestamp()
        if isinstance(v, (int, float)):
            return v / 1e9 if key == "mtime_ns" else float(v)
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _is_local(fs: Any) -> bool:
    proto = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return "file" in proto or "local" in proto


def _resolve(location: Any, storage_options: Mapping[str, Any] | None, fs: Any) -> tuple[Any, str]:
    """``(filesystem, path without protocol)`` for a URL, a plain path or a path object with ``.fs``."""
    if fs is not None:
        raw = os.fspath(location) if isinstance(location, os.PathLike) else str(location)
        return fs, fs._strip_protocol(raw)
    path_fs = getattr(location, "fs", None)
    path_str = getattr(location, "path", None)
    if path_fs is not None and isinstance(path_str, str):  # ObjectStoragePath, UPath
        return path_fs, path_str
    from fsspec.core import url_to_fs

    url = os.fspath(location) if isinstance(location, os.PathLike) else str(location)
    return url_to_fs(url, **dict(storage_options or {}))


class ObjectStoreLogSource:
    """Log files under a prefix of any fsspec filesystem (see module doc).

    :param location: ``s3://bucket/prefix``, ``file:///dir``, ``/dir``, a single file, or a path object with
        ``.fs`` and ``.path`` (Airflow ``ObjectStoragePath``, ``UPath``).
    :param engine: ``mysql``/``postgres`` keeps only files of that engine by name (files with other names are
        kept; the pipeline sniffs them); None keeps all.
    :param instance: recorded in each ref; default: the last component of the location.
    :param storage_options: passed to fsspec for a URL (``endpoint_url``, ``key``, ``secret``, ``anon``, …).
    :param fs: an fsspec filesystem to use instead of resolving ``location``.
    :param pattern: a glob on file base names (``"*.gz"``); hidden files (``.name``) are always skipped.
    :param recursive: walk sub-directories (``slowquery/``, ``error/``) too.
    :param block_size: read-ahead block of remote files (fsspec caches one block per open file).
    """

    def __init__(
        self,
        location: Any,
        engine: str | None = None,
        *,
        instance: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        fs: Any = None,
        pattern: str | None = None,
        recursive: bool = True,
        block_size: int = 4 << 20,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.now = now    # wall clock: is a file still being written?
        self.fs, self.root = _resolve(location, storage_options, fs)
        self.root = self.root.rstrip("/") or "/"
        self.engine = normalize_engine(engine)
        self.local = _is_local(self.fs)
        self.kind = "local" if self.local else "objectstore"
        proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.protocol = "file" if self.local else proto
        self.instance = instance if instance is not None else posixpath.basename(self.root) or self.root
        self.pattern = pattern
        self.recursive = recursive
        self.block_size = block_size

    def _url(self, path: str) -> str:
        return f"file://{path}" if self.local else f"{self.protocol}://{path}"

    def _entries(self) -> list[tuple[str, Mapping[str, Any]]]:
        fs = self.fs
        if fs.isfile(self.root):
            return [(self.root, fs.info(self.root))]
        if self.recursive:
            found = fs.find(self.root, withdirs=False, detail=True)
        else:
            found = {i["name"]: i for i in fs.ls(self.root, detail=True) if i.get("type") != "directory"}
        return sorted(found.items())

    # ---- listing

    def list_files(self, start: float, end: float) -> list[LogFileRef]:
        """Files that may hold entries written in ``[start, end)``, oldest first (see module doc for rules)."""
        rows: list[tuple[str, Mapping[str, Any], float | None, tuple[str, float | None, bool] | None]] = []
        for path, info in self._entries():
            base = posixpath.basename(path)
            if base.startswith(".") or (self.pattern and not fnmatch.fnmatchcase(base, self.pattern)):
                continue
            mtime = _mtime(info)
            named = name_first_written(base, mtime)
            if named is not None and self.engine is not None and named[0] != self.engine:
                continue
            rows.append((path, info, mtime, named))

        # dated files, per (directory, engine) in time order: each covers until the next one begins
        starts: dict[tuple[str, str], list[float]] = {}
        for path, _info, _m, named in rows:
            if named is not None and named[2]:
                starts.setdefault((posixpath.dirname(path), named[0]), []).append(named[1])  # type: ignore[arg-type]
        for v in starts.values():
            v.sort()

        refs: list[LogFileRef] = []
        for path, info, mtime, named in rows:
            extra: dict[str, Any] = {"path": path}
            engine = named[0] if named is not None else None
            first: float | None = None
            if named is not None and named[2]:
                first = named[1]
                assert first is not None
                later = [s for s in starts[(posixpath.dirname(path), named[0])] if s > first]
                until = later[0] if later else max(first + _HOUR, mtime or 0.0)
                if not (first < end and until > start):
                    continue
                extra["first_written"] = first
            else:
                if mtime is not None and mtime < start:
                    continue
                if named is not None:  # the current MySQL file began no earlier than the newest rotated hour
                    newest = starts.get((posixpath.dirname(path), named[0]))
                    if newest:
                        first = newest[-1]
                        if first >= end:
                            continue
                        extra["first_written_inferred"] = first
            size = info.get("size")
            # the file a server is still appending to: not named for an hour, or the current hour's, and
            # written to within SETTLE_SECONDS
            growing = (mtime is not None and self.now() - mtime < SETTLE_SECONDS
                       and (named is None or not named[2] or (first is not None and first + _HOUR > self.now())))
            refs.append(LogFileRef(
                kind=self.kind,  # type: ignore[arg-type]
                instance=self.instance, name=path if self.local else self._url(path),
                size=int(size) if isinstance(size, (int, float)) else None, last_written=mtime, engine=engine,
                uri=self._url(path), extra=extra, growing=growing))
        refs.sort(key=_sort_key)
        return refs

    # ---- reading

    def open(self, ref: LogFileRef, *, resume: Resume | None = None) -> SourceStream:
        """Stream ``ref``'s (decompressed) bytes; ``resume`` skips ``resume.offset`` decompressed bytes."""
        path = ref.extra.get("path") or self.fs._strip_protocol(ref.uri or ref.name)
        report = DownloadReport(name=ref.name, method="read")
        return SourceStream(_FileRaw(self, path, report, resume.offset if resume is not None else 0))


def _sort_key(ref: LogFileRef) -> tuple[float, int, float, str]:
    """Oldest first: by start time (named or inferred, else mtime); at equal starts a dated file goes before
    the current file inferred to start with it (object mtimes may all be one upload time)."""
    extra = ref.extra
    dated = extra.get("first_written")
    start = next((float(v) for v in (dated, extra.get("first_written_inferred"), ref.last_written)
                  if v is not None), -math.inf)
    return (start, 0 if dated is not None else 1,
            ref.last_written if ref.last_written is not None else math.inf, ref.name)


class _FileRaw(StreamRaw):
    """Unbuffered reader over one (possibly compressed) file; the file object does the buffering."""

    def __init__(self, source: ObjectStoreLogSource, path: str, report: DownloadReport, offset: int) -> None:
        super().__init__(report.name, report, offset)
        kwargs: dict[str, Any] = {} if source.local else {"block_size": source.block_size}
        try:
            self._file = source.fs.open(path, "rb", **kwargs)
            self._reader, codec = open_decompressed(self._file)
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"
            if getattr(self, "_file", None) is not None:
                self._file.close()
            raise
        report.calls = 1
        if codec is not None:
            report.method = f"read+{codec}"
        if offset:
            self._skip_to(offset, seekable=codec is None)

    def _skip_to(self, offset: int, seekable: bool) -> None:
        if seekable:
            try:
                self._reader.seek(offset)
                return
            except (OSError, ValueError):
                pass
        left = offset
        while left:
            chunk = self._reader.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def readinto(self, b: Any) -> int:
        try:
            n = self._reader.readinto(b)
        except Exception as exc:
            self.report.error = f"{type(exc).__name__}: {exc}"
            raise
        if not n:
            self.report.complete = not self.report.losses
            return 0
        self._offset += n
        self.report.bytes += n
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                if self._reader is not self._file:
                    self._reader.close()
            finally:
                self._file.close()
        super().close()
