"""A local emulator of the RDS log-file API, spoken over HTTP so that real boto3 can drive it.

Why it exists: moto has no ``DownloadDBLogFilePortion`` and fakes ``DescribeDBLogFiles``, yet the downloader's
hard parts (marker walks, 1 MB truncation, early ``AdditionalDataPending=false``, throttling, files vanishing
around rotation) only show up against the real wire protocol. This module serves a directory of real log
files as one or more DB instances through:

* the Query API (``POST /``, form body ``Action=…&Version=2014-10-31``): ``DescribeDBLogFiles`` and
  ``DownloadDBLogFilePortion``, with XML in the ``http://rds.amazonaws.com/doc/2014-10-31/`` namespace and
  ``ErrorResponse`` errors that botocore maps onto its modelled exception classes;
* the REST ``GET /v13|v19/downloadCompleteLogFile/{instance}/{file name}`` that streams a whole file.

Fault switches (``Faults``) reproduce the failures users report against real RDS; ``calls`` records every
request so tests can assert how a client behaved. ``layout_hourly`` cuts a source log into RDS-style hourly
files by entry write time. Only the standard library is used, so the emulator adds no dependency.
"""
from __future__ import annotations

import argparse
import base64
import calendar
import dataclasses
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape as _xml_escape

from rds_slowlog.logfile import open_log
from rds_slowlog.sources.rds import normalize_engine
from rds_slowlog.parsers.base import RDS_TRUNCATION_MARKER

__all__ = [
    "API_VERSION",
    "BINARY_FILE_MESSAGE",
    "Call",
    "DEFAULT_PORTION_CAP",
    "Faults",
    "InstanceSpec",
    "MYSQL_CURRENT",
    "NAMESPACE",
    "RdsEmulator",
    "TAIL_LINES",
    "engine_family",
    "layout_hourly",
    "main",
    "rotated_name",
]

NAMESPACE = "http://rds.amazonaws.com/doc/2014-10-31/"
API_VERSION = "2014-10-31"
#: RDS caps one DownloadDBLogFilePortion response at "1 MB"; the decimal value is a guess.
DEFAULT_PORTION_CAP = 1_000_000
#: Lines returned without Marker/NumberOfLines (and the per-call line limit when only Marker is given).
TAIL_LINES = 10_000
#: DescribeDBLogFiles page size when MaxRecords is absent (guess: the usual RDS describe default).
DEFAULT_MAX_RECORDS = 100
BINARY_FILE_MESSAGE = "This file contains binary data and should be downloaded instead of viewed."
MYSQL_CURRENT = "slowquery/mysql-slowquery.log"
_MYSQL_PREFIX = "slowquery/mysql-slowquery.log."
_PG_PREFIX = "error/postgresql.log."
_BLOCK = 1 << 16
_COMPLETE_RE = re.compile(r"^/(v13|v19)/downloadCompleteLogFile/([^/]+)/(.+)$")
_MARKER_RE = re.compile(r"^(?:(\d+):)?(\d+)$")
# Characters XML 1.0 cannot carry even as references; RDS's handling is unknown, they become U+FFFD.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DATED_RE = re.compile(r"\.(\d{4})-(\d\d)-(\d\d)[.-](\d\d)(?:\d\d)?$")
_NUMBERED_RE = re.compile(r"\.(\d{1,2})$")
_MYSQL_TIME_ISO = re.compile(
    rb"# Time: (\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?"
)
_MYSQL_TIME_OLD = re.compile(rb"# Time: (\d\d)(\d\d)(\d\d)\s+(\d{1,2}):(\d\d):(\d\d)")
_PG_TIME = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.\d+)?(?: ?(UTC|GMT|Z|[+-]\d\d(?::?\d\d)?))?"
)


# --------------------------------------------------------------------------------------------- naming

def engine_family(engine: str) -> str:
    """Map an RDS engine name (``mysql``, ``mariadb``, ``aurora-mysql``, ``postgres``…) to its log layout."""
    family = normalize_engine(engine)
    if family is None:
        raise ValueError(f"an engine is required here, got {engine!r}")
    return family


def rotated_name(engine: str, hour: datetime | int, style: str = "dated") -> str:
    """RDS file name of the log holding ``hour`` (UTC): MySQL rotated names or PostgreSQL hourly names.

    ``hour`` is a datetime or an hour number since the epoch. ``style="numbered"`` gives the older MySQL
    ``mysql-slowquery.log.N`` ring (N = hour of day, no padding).
    """
    if isinstance(hour, int):
        hour = datetime.fromtimestamp(hour * 3600, tz=timezone.utc)
    if engine_family(engine) == "postgres":
        return f"{_PG_PREFIX}{hour:%Y-%m-%d-%H}"
    if style == "numbered":
        return f"{_MYSQL_PREFIX}{hour.hour}"
    if style != "dated":
        raise ValueError(f"unknown MySQL rotation style {style!r} (dated or numbered)")
    return f"{_MYSQL_PREFIX}{hour:%Y-%m-%d.%H}"


def _name_hour(name: str) -> int | None:
    """Hour number since the epoch encoded in a dated file name, or None."""
    m = _DATED_RE.search(name)
    if m is None:
        return None
    y, mo, d, h = (int(g) for g in m.groups())
    return calendar.timegm((y, mo, d, h, 0, 0)) // 3600


def _hour_of_day(name: str, mtime: float) -> int:
    """The ``hour`` part of a portion marker: from the file name when it has one, else from the mtime."""
    m = _DATED_RE.search(name)
    if m is not None:
        return int(m.group(4))
    m = _NUMBERED_RE.search(name)
    if m is not None:
        return int(m.group(1))
    return time.gmtime(mtime).tm_hour


# --------------------------------------------------------------------------------------------- layout

def _tz_seconds(tz: bytes | None) -> int:
    if not tz or tz in (b"Z", b"UTC", b"GMT") or tz.isalpha():
        return 0  # named zones other than UTC are treated as UTC (RDS logs in UTC)
    sign = -1 if tz[:1] == b"-" else 1
    digits = tz[1:].replace(b":", b"")
    hours = int(digits[:2])
    minutes = int(digits[2:4] or b"0")
    return sign * (hours * 3600 + minutes * 60)


def _epoch(y: int, mo: int, d: int, h: int, mi: int, s: int) -> int | None:
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    return calendar.timegm((y, mo, d, h, mi, s))


def _mysql_line_epoch(line: bytes) -> int | None:
    if not line.startswith(b"# Time: "):
        return None
    m = _MYSQL_TIME_ISO.match(line)
    if m is not None:
        t = _epoch(*(int(g) for g in m.groups()[:6]))
        return None if t is None else t - _tz_seconds(m.group(7))
    m = _MYSQL_TIME_OLD.match(line)
    if m is not None:
        yy, mo, d, h, mi, s = (int(g) for g in m.groups())
        return _epoch(2000 + yy, mo, d, h, mi, s)
    return None


def _pg_line_epoch(line: bytes) -> int | None:
    if not line[:1].isdigit():
        return None
    m = _PG_TIME.match(line)
    if m is None:
        return None
    t = _epoch(*(int(g) for g in m.groups()[:6]))
    return None if t is None else t - _tz_seconds(m.group(7))


def layout_hourly(
    source: str | Path,
    dest_root: str | Path,
    engine: str = "mysql",
    *,
    current: bool = True,
    style: str = "dated",
) -> list[Path]:
    """Cut ``source`` into RDS-style hourly files under ``dest_root`` by entry write time; return them in order.

    MySQL pieces start at a ``# Time:`` line whose hour is later than the piece being written; PostgreSQL
    pieces at a line whose leading timestamp is in a later hour. Lines without a time (headers, continuation
    lines, a ``# Time:``-less MariaDB entry) stay with the piece before them, and a clock going backwards
    never opens an earlier hour, so concatenating the returned files in order gives back the source bytes
    exactly (decompressed, if the source was compressed). Each file's mtime is the end of its hour, which
    DescribeDBLogFiles reports as LastWritten. With ``current=True`` the last MySQL hour is written as
    ``slowquery/mysql-slowquery.log`` (the file RDS is still appending to); PostgreSQL has no separate
    current name. A source without any timestamp becomes one piece in the hour of its mtime.
    """
    family = engine_family(engine)
    line_epoch = _pg_line_epoch if family == "postgres" else _mysql_line_epoch
    dest = Path(dest_root)
    subdir = dest / ("error" if family == "postgres" else "slowquery")
    subdir.mkdir(parents=True, exist_ok=True)
    pending = subdir / f".layout-{uuid.uuid4().hex}.tmp"
    pieces: list[tuple[int, Path]] = []
    names: set[str] = set()
    out: BinaryIO = open(pending, "wb")
    hour: int | None = None

    def open_piece(new_hour: int) -> BinaryIO:
        name = rotated_name(family, new_hour, style)
        if name in names:
            raise ValueError(f"{name} would hold two different hours; use style='dated' for spans over 24 h")
        names.add(name)
        path = dest / name
        pieces.append((new_hour, path))
        return open(path, "wb")

    try:
        with open_log(source) as src:
            at_line_start = True
            readline = src.readline
            while True:
                line = readline(1 << 20)
                if not line:
                    break
                if at_line_start:
                    t = line_epoch(line)
                    if t is not None and (hour is None or t // 3600 > hour):
                        new_hour = t // 3600
                        if hour is None:
                            out.close()
                            name = rotated_name(family, new_hour, style)
                            names.add(name)
                            path = dest / name
                            os.replace(pending, path)
                            pieces.append((new_hour, path))
                            out = open(path, "ab")
                        else:
                            out.close()
                            out = open_piece(new_hour)
                        hour = new_hour
                out.write(line)
                at_line_start = line.endswith(b"\n")
        out.close()
        if hour is None:  # no timestamp at all
            fallback = int(os.stat(source).st_mtime) // 3600
            path = dest / rotated_name(family, fallback, style)
            os.replace(pending, path)
            pieces.append((fallback, path))
    finally:
        out.close()
        if pending.exists():
            pending.unlink()

    if current and family == "mysql" and pieces:
        last_hour, last_path = pieces[-1]
        cur = dest / MYSQL_CURRENT
        os.replace(last_path, cur)
        pieces[-1] = (last_hour, cur)
    for h, path in pieces:
        end = (h + 1) * 3600
        os.utime(path, (end, end))
    return [p for _, p in pieces]


# --------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class InstanceSpec:
    """One emulated DB instance: ``root`` holds its log files under their RDS names (``slowquery/…``)."""

    root: Path
    engine: str = "mysql"
    #: MySQL rotated-name style used by ``RdsEmulator.rotate``: ``dated`` (.YYYY-MM-DD.HH) or ``numbered`` (.N).
    style: str = "dated"
    #: The instance's RDS tags (``DescribeDBInstances`` ``TagList``), e.g. ``{"slowlog": "on"}`` for discovery.
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        engine_family(self.engine)


#: Value used when a CLI fault is given as a bare name (``--fault throttle_every``).
_FAULT_DEFAULTS: dict[str, float] = {
    "throttle_every": 5,
    "early_pending_false": 0.5,
    "notfound_during_rotation": 1,
    "truncate": 65536,
    "slow": 0.5,
    "portion_cap": DEFAULT_PORTION_CAP,
    "stop_short": 5,
    "complete_file_denied": 1,
}


@dataclass
class Faults:
    """Failure switches; mutable while the emulator runs (tests flip them between calls).

    * ``throttle_every`` — every Nth Query API call fails with ``Throttling`` (0 = never).
    * ``early_pending_false`` — report ``AdditionalDataPending=false`` once a portion ends at or past this
      fraction of the file, although data remains (the marker stays correct), as in aws/aws-cli#2268.
    * ``notfound_during_rotation`` — after ``rotate()``, the next N calls naming either rotating file fail
      with ``DBLogFileNotFoundFault``.
    * ``truncate`` — a per-response byte cap below ``portion_cap`` (0 = off), to exercise truncation cheaply.
    * ``slow`` — seconds to sleep before answering each request.
    * ``portion_cap`` — the 1 MB DownloadDBLogFilePortion cap.
    * ``stop_short`` — with ``early_pending_false``: the next N portion requests that start past that fraction
      (and before the end) get no data at all, ``AdditionalDataPending=false`` and their own marker back — RDS
      claiming the end of a file that is longer, which no amount of asking changes for a while. Counts down
      as it is used (N calls in all, across files), so a later attempt reads the file whole.
    * ``stop_short_instance`` — limit ``stop_short`` to this instance's files (empty = any), so instances
      downloaded at the same time (two workers) cannot share the N answers out and each read past them.
    * ``complete_file_denied`` — the REST complete-file endpoint answers 403 ``AccessDenied`` (an IAM policy
      without ``rds:DownloadCompleteDBLogFile``), so clients fall back to the portion API where the other
      faults live.
    """

    throttle_every: int = 0
    early_pending_false: float = 0.0
    notfound_during_rotation: int = 0
    truncate: int = 0
    slow: float = 0.0
    portion_cap: int = DEFAULT_PORTION_CAP
    stop_short: int = 0
    stop_short_instance: str = ""
    complete_file_denied: int = 0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Faults:
        """Build from a ``{"throttle_every": 3, …}`` dict; unknown names raise ValueError."""
        faults = cls()
        for name, value in (values or {}).items():
            faults.set(name, value)
        return faults

    @classmethod
    def parse(cls, items: Iterable[str]) -> Faults:
        """Build from CLI ``NAME[=VALUE]`` strings."""
        faults = cls()
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            faults.set(name, value if sep else _FAULT_DEFAULTS.get(name, 1))
        return faults

    def set(self, name: str, value: Any) -> None:
        kinds = {f.name: f.type for f in fields(self)}
        if name not in kinds:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(kinds))}")
        if kinds[name] == "str":
            setattr(self, name, str(value))
            return
        number = float(value)
        setattr(self, name, number if kinds[name] == "float" else int(number))

    @property
    def cap(self) -> int:
        """The byte cap in force for one portion response."""
        if self.truncate and self.truncate > 0:
            return min(self.truncate, self.portion_cap)
        return self.portion_cap


@dataclass
class Call:
    """One request as the emulator saw it (for assertions on client behaviour)."""

    action: str
    instance: str | None
    log_file: str | None
    params: dict[str, str]
    status: int = 200
    error: str | None = None
    #: LogFileData/body bytes served (file bytes, before XML escaping).
    data_bytes: int = 0
    truncated: bool = False
    marker: str | None = None
    pending: bool | None = None
    at: float = field(default_factory=time.time)


class _Fault(Exception):
    """An API error to render as an ErrorResponse."""

    def __init__(self, status: int, code: str, message: str, kind: str = "Sender") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.kind = kind


# --------------------------------------------------------------------------------------------- reading

def _read_lines(f: BinaryIO, start: int, size: int, max_lines: int, keep: int) -> tuple[bytes, int]:
    """Consume up to ``max_lines`` lines from ``start`` (never past ``size``); keep at most ``keep + 1`` bytes.

    Returns ``(kept, consumed)``. Everything consumed beyond ``keep`` is what RDS loses when it truncates.
    """
    f.seek(start)
    kept = bytearray()
    consumed = 0
    remaining = max_lines
    pos = start
    while remaining > 0 and pos < size:
        block = f.read(min(_BLOCK, size - pos))
        if not block:
            break
        n = block.count(b"\n")
        if n >= remaining:
            idx = -1
            for _ in range(remaining):
                idx = block.index(b"\n", idx + 1)
            block = block[: idx + 1]
            remaining = 0
        else:
            remaining -= n
        consumed += len(block)
        pos += len(block)
        if len(kept) <= keep:
            kept += block[: keep + 1 - len(kept)]
    return bytes(kept), consumed


def _tail_start(f: BinaryIO, size: int, lines: int) -> int:
    """Offset where the last ``lines`` lines of the first ``size`` bytes begin."""
    if size == 0:
        return 0
    f.seek(size - 1)
    pos = size - 1 if f.read(1) == b"\n" else size  # the final newline ends the last line
    needed = lines
    while pos > 0:
        lo = max(0, pos - _BLOCK)
        f.seek(lo)
        block = f.read(pos - lo)
        count = block.count(b"\n")
        if count >= needed:
            idx = len(block)
            for _ in range(needed):
                idx = block.rindex(b"\n", 0, idx)
            return lo + idx + 1
        needed -= count
        pos = lo
    return 0


def _log_data_xml(data: bytes) -> str:
    """LogFileData text: UTF-8 (invalid bytes → U+FFFD), XML-escaped, CR kept as ``&#13;`` so CRLF survives."""
    text = data.decode("utf-8", "replace")
    text = _xml_escape(text, {"\r": "&#13;"})
    return _XML_ILLEGAL.sub("\ufffd", text)


def _has_auth(headers: Mapping[str, str], query: str = "") -> bool:
    """Looks like SigV4 (header or presigned query); the signature itself is not checked."""
    auth = headers.get("Authorization") or ""
    if auth.startswith("AWS4-HMAC-SHA256 ") and "Credential=" in auth and "Signature=" in auth:
        return True
    return "X-Amz-Signature=" in query and "X-Amz-Credential=" in query


# --------------------------------------------------------------------------------------------- server

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonRDS-emulator"
    # headers and body go out in separate writes; with Nagle on, keep-alive clients wait ~40 ms per call
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self.server.emulator._handle_post(self)

    def do_GET(self) -> None:  # noqa: N802
        self.server.emulator._handle_get(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logging
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: RdsEmulator


class RdsEmulator:
    """Serve log directories as RDS instances over the real RDS wire protocol.

    ``instances`` maps instance ids to ``InstanceSpec``; ``logs_dir`` adds one instance per sub-directory
    (``<logs>/<instance-id>/slowquery/…``), its engine detected from the files (``error/postgresql.log*`` →
    postgres) or taken from ``engine``. Use as a context manager (binds 127.0.0.1:0 and serves from a
    background thread) or call ``serve_forever``.
    """

    def __init__(
        self,
        instances: Mapping[str, InstanceSpec] | None = None,
        *,
        logs_dir: str | Path | None = None,
        engine: str | None = None,
        faults: Faults | Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        default_max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        self.instances: dict[str, InstanceSpec] = dict(instances or {})
        if logs_dir is not None:
            for sub in sorted(Path(logs_dir).iterdir()):
                if sub.is_dir() and not sub.name.startswith(".") and sub.name not in self.instances:
                    self.instances[sub.name] = InstanceSpec(root=sub, engine=engine or _detect_engine(sub))
        self.faults = faults if isinstance(faults, Faults) else Faults.from_mapping(faults)
        self.host = host
        self.port = port
        self.region = region
        self.default_max_records = default_max_records
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._query_calls = 0
        self._rotating: set[tuple[str, str]] = set()
        self._rotation_left = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def _bind(self) -> _Server:
        if self._server is None:
            server = _Server((self.host, self.port), _Handler)
            server.emulator = self
            self._server = server
            self.port = server.server_address[1]
        return self._server

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> RdsEmulator:
        """Bind (port 0 = any free port) and serve from a daemon thread."""
        server = self._bind()
        if self._thread is None:
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="rds-emulator", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` is called from another thread."""
        self._bind().serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> RdsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- helpers for tests and the demo

    def client(self, **config: Any) -> Any:
        """A real boto3 RDS client aimed at this emulator (``config`` goes to ``botocore.config.Config``)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "rds",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(**config) if config else None,
        )

    def complete_log_url(self, instance: str, log_file: str, version: str = "v13") -> str:
        """URL of the REST DownloadCompleteDBLogFile endpoint for one file."""
        return f"{self.endpoint_url}/{version}/downloadCompleteLogFile/{instance}/{log_file}"

    def path(self, instance: str, log_file: str) -> Path:
        return self._spec(instance).root / log_file

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def count(self, action: str | None = None, error: str | None = None) -> int:
        """Number of recorded calls, optionally of one action and/or one error code."""
        with self._lock:
            return sum(
                1 for c in self.calls
                if (action is None or c.action == action) and (error is None or c.error == error)
            )

    def current_file(self, instance: str) -> str:
        """Name of the file the instance is writing now (created empty when there is none)."""
        spec = self._spec(instance)
        if engine_family(spec.engine) == "mysql":
            return MYSQL_CURRENT
        latest = self._latest_pg(spec)
        if latest is None:
            latest = rotated_name("postgres", int(time.time()) // 3600)
            (spec.root / latest).parent.mkdir(parents=True, exist_ok=True)
            (spec.root / latest).touch()
        return latest

    def append(
        self, instance: str, name: str | None, data: bytes | str, *, mtime: float | None = None
    ) -> int:
        """Append ``data`` to ``name`` (None = the current file); return the new size.

        The mtime becomes now (or ``mtime``), as a write by the database would make it.
        """
        if isinstance(data, str):
            data = data.encode()
        with self._lock:
            target = self._spec(instance).root / (name or self.current_file(instance))
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "ab") as f:
                f.write(data)
            if mtime is not None:
                os.utime(target, (mtime, mtime))
            return target.stat().st_size

    def rotate(self, instance: str, *, when: datetime | None = None) -> str:
        """Rotate like RDS does at the top of the hour; return the name of the file that was opened or renamed.

        MySQL: ``mysql-slowquery.log`` is renamed to its hour's rotated name (hour of ``when``, else of its
        last write; a later free hour if that name exists, except the ``numbered`` ring which overwrites)
        and an empty current file is created. PostgreSQL: an empty file for the next hour is created.
        Arms ``notfound_during_rotation`` for both files involved.
        """
        spec = self._spec(instance)
        root = spec.root
        with self._lock:
            if engine_family(spec.engine) == "mysql":
                cur = root / MYSQL_CURRENT
                cur.parent.mkdir(parents=True, exist_ok=True)
                if not cur.exists():
                    cur.touch()
                if when is not None:
                    hour = int(when.timestamp()) // 3600
                else:
                    hour = (cur.stat().st_mtime_ns // 1_000_000 - 1) // 3_600_000
                name = rotated_name("mysql", hour, spec.style)
                while spec.style == "dated" and (root / name).exists():
                    hour += 1
                    name = rotated_name("mysql", hour, spec.style)
                os.replace(cur, root / name)
                cur.touch()
                involved = {MYSQL_CURRENT, name}
            else:
                latest = self._latest_pg(spec)
                if when is not None:
                    hour = int(when.timestamp()) // 3600
                elif latest is not None:
                    hour = (_name_hour(latest) or int(time.time()) // 3600) + 1
                else:
                    hour = int(time.time()) // 3600
                name = rotated_name("postgres", hour)
                while (root / name).exists():
                    hour += 1
                    name = rotated_name("postgres", hour)
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).touch()
                involved = {name} | ({latest} if latest else set())
            self._rotating = {(instance, n) for n in involved}
            self._rotation_left = self.faults.notfound_during_rotation
            return name

    def _take_stop_short(self, instance: str) -> bool:
        """Use up one ``stop_short`` answer if any are left (for ``instance``)."""
        with self._lock:
            only = self.faults.stop_short_instance
            if self.faults.stop_short <= 0 or (only and only != instance):
                return False
            self.faults.stop_short -= 1
            return True

    # ---- internals: instances and files

    def _spec(self, instance: str) -> InstanceSpec:
        try:
            return self.instances[instance]
        except KeyError:
            raise _Fault(404, "DBInstanceNotFound", f"DBInstance {instance} not found.") from None

    @staticmethod
    def _latest_pg(spec: InstanceSpec) -> str | None:
        folder = spec.root / "error"
        if not folder.is_dir():
            return None
        names = sorted(p.name for p in folder.iterdir() if p.name.startswith("postgresql.log.") and p.is_file())
        return f"error/{names[-1]}" if names else None

    @staticmethod
    def _list(spec: InstanceSpec) -> list[tuple[str, int, int]]:
        """``(name, LastWritten ms, Size)`` for every file under the root, sorted by name like RDS."""
        out = []
        root = spec.root
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(root)
            for fn in filenames:
                if fn.startswith("."):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, fn))
                except FileNotFoundError:  # rotated away while listing
                    continue
                out.append(((rel_dir / fn).as_posix(), st.st_mtime_ns // 1_000_000, st.st_size))
        out.sort()
        return out

    def _resolve(self, instance: str, name: str) -> Path:
        spec = self._spec(instance)
        with self._lock:
            if (instance, name) in self._rotating and self._rotation_left > 0:
                self._rotation_left -= 1
                raise _not_found(name)
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or any(p.startswith(".") for p in parts):
            raise _not_found(name)
        path = spec.root / name
        if not path.is_file():
            raise _not_found(name)
        return path

    # ---- internals: actions

    def _instances(self, params: dict[str, str], call: Call) -> str:
        """``DescribeDBInstances``: identifier, engine, status and tags of every served instance (one page)."""
        wanted = params.get("DBInstanceIdentifier")
        if wanted is not None:
            self._spec(wanted)   # DBInstanceNotFound, as RDS answers
        items = []
        for name, spec in sorted(self.instances.items()):
            if wanted is not None and name != wanted:
                continue
            tags = "".join(f"          <Tag><Key>{_xml_escape(k)}</Key><Value>{_xml_escape(v)}</Value></Tag>\n"
                           for k, v in spec.tags.items())
            items.append(
                "      <DBInstance>\n"
                f"        <DBInstanceIdentifier>{_xml_escape(name)}</DBInstanceIdentifier>\n"
                f"        <Engine>{_xml_escape(spec.engine)}</Engine>\n"
                "        <DBInstanceStatus>available</DBInstanceStatus>\n"
                f"        <TagList>\n{tags}        </TagList>\n"
                "      </DBInstance>\n")
        return f"    <DBInstances>\n{''.join(items)}    </DBInstances>\n"

    def _describe(self, params: dict[str, str], call: Call) -> str:
        instance = _required(params, "DBInstanceIdentifier")
        call.instance = instance
        spec = self._spec(instance)
        contains = params.get("FilenameContains")
        since = _int_param(params, "FileLastWritten")
        larger = _int_param(params, "FileSize")
        max_records = _int_param(params, "MaxRecords")
        if max_records is not None and max_records < 1:
            raise _Fault(400, "InvalidParameterValue", f"Invalid value {max_records} for MaxRecords.")
        page = max_records or self.default_max_records
        files = [
            f for f in self._list(spec)
            if (not contains or contains in f[0])
            and (since is None or f[1] >= since)
            and (larger is None or f[2] > larger)
        ]
        marker = params.get("Marker")
        if marker:
            try:
                after = base64.urlsafe_b64decode(marker.encode()).decode()
            except (ValueError, UnicodeDecodeError):
                raise _Fault(400, "InvalidParameterValue", f"Invalid marker: {marker}") from None
            files = [f for f in files if f[0] > after]
        shown, rest = files[:page], files[page:]
        items = "".join(
            "      <DescribeDBLogFilesDetails>\n"
            f"        <LastWritten>{lw}</LastWritten>\n"
            f"        <LogFileName>{_xml_escape(name)}</LogFileName>\n"
            f"        <Size>{size}</Size>\n"
            "      </DescribeDBLogFilesDetails>\n"
            for name, lw, size in shown
        )
        body = f"    <DescribeDBLogFiles>\n{items}    </DescribeDBLogFiles>\n"
        if rest:
            next_marker = base64.urlsafe_b64encode(shown[-1][0].encode()).decode()
            body += f"    <Marker>{next_marker}</Marker>\n"
        return body

    def _portion(self, params: dict[str, str], call: Call) -> str:
        instance = _required(params, "DBInstanceIdentifier")
        call.instance = instance
        self._spec(instance)
        name = _required(params, "LogFileName")
        call.log_file = name
        path = self._resolve(instance, name)
        lines = _int_param(params, "NumberOfLines")
        if lines is not None and lines < 1:
            raise _Fault(400, "InvalidParameterValue", f"Invalid value {lines} for NumberOfLines.")
        marker = params.get("Marker") or None  # an empty Marker reads like no Marker (guess)
        start: int | None = None
        if marker is not None:
            m = _MARKER_RE.match(marker)
            if m is None:
                raise _Fault(400, "InvalidParameterValue", f"Invalid marker: {marker}")
            start = int(m.group(2))
        cap = max(0, self.faults.cap)
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            size = st.st_size
            hour = _hour_of_day(name, st.st_mtime)
            if start is None:  # the tail
                begin = _tail_start(f, size, lines or TAIL_LINES)
                f.seek(begin)
                kept = f.read(min(size - begin, cap + 1))
                end = size
            elif start >= size:
                kept, end = b"", start
            else:
                kept, consumed = _read_lines(f, start, size, lines or TAIL_LINES, cap)
                end = start + consumed
        if b"\x00" in kept:
            raise _Fault(400, "InvalidParameterValue", BINARY_FILE_MESSAGE)
        truncated = len(kept) > cap
        if truncated:
            kept = kept[:cap] + RDS_TRUNCATION_MARKER
        pending = start is not None and end < size
        frac = self.faults.early_pending_false
        if pending and frac > 0 and end >= frac * size:
            pending = False
        if frac > 0 and start is not None and frac * size <= start < size and self._take_stop_short(instance):
            kept, end, pending, truncated = b"", start, False, False   # "that was all", though it goes on
        next_marker = f"{hour}:{end}"
        call.data_bytes = len(kept)
        call.truncated = truncated
        call.marker = next_marker
        call.pending = pending
        return (
            f"    <LogFileData>{_log_data_xml(kept)}</LogFileData>\n"
            f"    <AdditionalDataPending>{'true' if pending else 'false'}</AdditionalDataPending>\n"
            f"    <Marker>{next_marker}</Marker>\n"
        )

    # ---- internals: HTTP

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _handle_post(self, req: _Handler) -> None:
        request_id = str(uuid.uuid4())
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        params = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        query = urlsplit(req.path).query
        for k, v in parse_qs(query, keep_blank_values=True).items():
            params.setdefault(k, v[-1])
        action = params.get("Action", "")
        call = Call(action=action, instance=params.get("DBInstanceIdentifier"),
                    log_file=params.get("LogFileName"), params=params)
        if self.faults.slow > 0:
            time.sleep(self.faults.slow)
        try:
            if not _has_auth(req.headers, query):
                raise _Fault(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
            if action not in ("DescribeDBLogFiles", "DownloadDBLogFilePortion", "DescribeDBInstances"):
                raise _Fault(400, "InvalidAction",
                             f"Could not find operation {action} for version {params.get('Version', '')}")
            with self._lock:
                self._query_calls += 1
                n = self._query_calls
            every = self.faults.throttle_every
            if every > 0 and n % every == 0:
                raise _Fault(400, "Throttling", "Rate exceeded")
            if action == "DescribeDBInstances":
                inner = self._instances(params, call)
            elif action == "DescribeDBLogFiles":
                inner = self._describe(params, call)
            else:
                inner = self._portion(params, call)
            body = (
                f'<{action}Response xmlns="{NAMESPACE}">\n'
                f"  <{action}Result>\n{inner}  </{action}Result>\n"
                f"  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n"
                f"</{action}Response>\n"
            ).encode("utf-8")
            status = 200
        except _Fault as fault:
            status, body = fault.status, _error_body(fault, request_id)
            call.status, call.error = fault.status, fault.code
        self._record(call)
        _send(req, status, body, request_id)

    def _handle_get(self, req: _Handler) -> None:
        request_id = str(uuid.uuid4())
        split = urlsplit(req.path)
        m = _COMPLETE_RE.match(split.path)
        call = Call(action="DownloadCompleteDBLogFile", instance=None, log_file=None, params={"path": req.path})
        if self.faults.slow > 0:
            time.sleep(self.faults.slow)
        try:
            if m is None:
                raise _Fault(404, "UnknownOperationException", f"No operation at {split.path}")
            instance, name = unquote(m.group(2)), unquote(m.group(3))
            call.instance, call.log_file = instance, name
            if not _has_auth(req.headers, split.query):
                raise _Fault(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
            if self.faults.complete_file_denied:
                raise _Fault(403, "AccessDenied", "User is not authorized to perform: "
                             "rds:DownloadCompleteDBLogFile on resource: " + instance)
            path = self._resolve(instance, name)
            f = open(path, "rb")
        except _Fault as fault:
            call.status, call.error = fault.status, fault.code
            self._record(call)
            _send(req, fault.status, _error_body(fault, request_id), request_id)
            return
        sent = 0
        with f:
            req.send_response(200)
            req.send_header("Content-Type", "application/octet-stream")
            req.send_header("Transfer-Encoding", "chunked")
            req.send_header("x-amzn-RequestId", request_id)
            req.end_headers()
            try:
                while True:
                    block = f.read(_BLOCK)
                    if not block:
                        break
                    req.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                    sent += len(block)
                req.wfile.write(b"0\r\n\r\n")
                req.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                req.close_connection = True
        call.data_bytes = sent
        self._record(call)


def _detect_engine(root: Path) -> str:
    error = root / "error"
    if error.is_dir() and any(p.name.startswith("postgresql.log") for p in error.iterdir()):
        return "postgres"
    return "mysql"


def _not_found(name: str) -> _Fault:
    return _Fault(404, "DBLogFileNotFoundFault", f"DBLog File: {name}, is not found on the DB instance")


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _Fault(400, "MissingParameter", f"The request must contain the parameter {name}")
    return value


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise _Fault(400, "InvalidParameterValue", f"Invalid value {value} for {name}.") from None


def _error_body(fault: _Fault, request_id: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}">\n'
        f"  <Error>\n    <Type>{fault.kind}</Type>\n    <Code>{fault.code}</Code>\n"
        f"    <Message>{_xml_escape(fault.message)}</Message>\n  </Error>\n"
        f"  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    ).encode("utf-8")


def _send(req: _Handler, status: int, body: bytes, request_id: str) -> None:
    try:
        req.send_response(status)
        req.send_header("Content-Type", "text/xml")
        req.send_header("Content-Length", str(len(body)))
        req.send_header("x-amzn-RequestId", request_id)
        req.end_headers()
        req.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        req.close_connection = True


# --------------------------------------------------------------------------------------------- CLI

def main(argv: Sequence[str] | None = None) -> int:
    """``rds-slowlog rds-emulator``: serve ``--logs`` until SIGINT/SIGTERM; prints ``endpoint_url=…`` first."""
    ap = argparse.ArgumentParser(prog="rds-slowlog rds-emulator", description=main.__doc__)
    ap.add_argument("--logs", required=True, type=Path,
                    help="directory of <instance-id>/<files>, or one instance's files with --instance")
    ap.add_argument("--instance", help="serve --logs itself as this instance id")
    ap.add_argument("--engine", choices=["mysql", "mariadb", "aurora-mysql", "postgres", "aurora-postgresql"],
                    help="engine of the instances (default: detected from the file names)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE]",
                    help="throttle_every=N, early_pending_false=F, stop_short=N, stop_short_instance=ID, "
                         "notfound_during_rotation=N, truncate=BYTES, slow=SECONDS, portion_cap=BYTES, "
                         "complete_file_denied")
    ap.add_argument("--rotate-every", type=float, default=0, metavar="SECONDS",
                    help="rotate every instance's current file at this interval")
    ap.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                    help="an RDS tag of every served instance (DescribeDBInstances), e.g. slowlog=on")
    args = ap.parse_args(argv)
    tags = dict(t.partition("=")[::2] for t in args.tag)
    try:
        faults = Faults.parse(args.fault)
    except ValueError as exc:
        ap.error(str(exc))
    if not args.logs.is_dir():
        ap.error(f"--logs {args.logs} is not a directory")
    if args.instance:
        instances = {args.instance: InstanceSpec(root=args.logs, engine=args.engine or _detect_engine(args.logs))}
        emulator = RdsEmulator(instances, faults=faults, host=args.host, port=args.port)
    else:
        emulator = RdsEmulator(logs_dir=args.logs, engine=args.engine, faults=faults, host=args.host, port=args.port)
    if not emulator.instances:
        ap.error(f"no instance directories under {args.logs} (or pass --instance)")
    if tags:
        emulator.instances = {k: dataclasses.replace(v, tags=tags) for k, v in emulator.instances.items()}

    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    emulator.start()
    print(f"endpoint_url={emulator.endpoint_url}", flush=True)
    print(f"instances={','.join(sorted(emulator.instances))}", file=sys.stderr, flush=True)
    try:
        next_rotation = time.monotonic() + args.rotate_every if args.rotate_every > 0 else None
        while not stop.wait(0.2):
            if next_rotation is not None and time.monotonic() >= next_rotation:
                for instance in emulator.instances:
                    emulator.rotate(instance)
                next_rotation += args.rotate_every
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
