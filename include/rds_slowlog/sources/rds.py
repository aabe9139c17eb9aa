"""Read slow-query logs straight from an RDS instance through the RDS API.

Two ways to get a file's bytes, because neither is enough alone:

* **complete file** — ``GET {endpoint}/v13/downloadCompleteLogFile/{instance}/{file}``, a SigV4-signed REST call
  that no SDK models. One streamed response, byte-exact, no 1 MB cap. It needs the IAM action
  ``rds:DownloadCompleteDBLogFile`` and is not offered by every endpoint, so any failure falls back to…
* **portions** — ``DownloadDBLogFilePortion``, the documented API, which misbehaves in known ways: a response is
  cut at ~1 MB (``[Your log message was truncated]``, bytes lost), ``AdditionalDataPending`` turns false long
  before the end, files briefly vanish around rotation, and the API is throttled per account. The loop here
  works around each one and reports, with the stream, what it could not recover (see :class:`DownloadReport`).

botocore is imported lazily so ``import rds_slowlog`` stays light. Build clients with :func:`make_rds_client`
(adaptive retries, every retry logged). All waiting goes through an injectable ``sleep`` so tests run fast.
"""
from __future__ import annotations

import calendar
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from rds_slowlog.parsers.base import RDS_TRUNCATION_MARKER
from rds_slowlog.sources.aws import error_code as _error_code
from rds_slowlog.sources.aws import is_unreachable
from rds_slowlog.sources.aws import retry_attempts as _retry_attempts
from rds_slowlog.sources.base import (LINE_OVER_CAP, SETTLE_SECONDS, DownloadReport, LogFileRef, Loss,
                                      Resume, SourceStream, StreamRaw)

__all__ = [
    "MYSQL_SLOWLOG",
    "POSTGRES_LOG_PREFIX",
    "Pacer",
    "RdsLogSource",
    "file_first_written",
    "make_rds_client",
    "normalize_engine",
]

log = logging.getLogger(__name__)

MYSQL_SLOWLOG = "slowquery/mysql-slowquery.log"
POSTGRES_LOG_PREFIX = "error/postgresql.log."
#: What RDS documents as the cap of one portion response ("1 MB"); only a starting guess, learnt downwards.
ASSUMED_PORTION_CAP = 1_000_000
#: Error codes worth retrying at our level after botocore gave up (its adaptive mode retries them first).
_THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestThrottled", "ServiceUnavailable", "InternalFailure",
})
_NOT_FOUND = "DBLogFileNotFoundFault"
_MYSQL_NAME = re.compile(r"^slowquery/mysql-slowquery\.log(?:\.(?:(\d{4})-(\d\d)-(\d\d)\.(\d\d)|(\d{1,2})))?$")
_PG_NAME = re.compile(r"^error/postgresql\.log\.(\d{4})-(\d\d)-(\d\d)-(\d\d)(\d\d)?$")
_MARKER_OFFSET = re.compile(r"^\d+:(\d+)$")
_TRUNC = RDS_TRUNCATION_MARKER
#: How far behind the delivered offset a reader's buffer can be (2x SourceStream's default buffer).
_KEEP_BACK = 1 << 17
_TRUNC_LEN = len(RDS_TRUNCATION_MARKER)


# --------------------------------------------------------------------------------------------- helpers

def normalize_engine(engine: str | None) -> str | None:
    """``mysql``/``mariadb``/``aurora-mysql`` → ``mysql``; ``postgres``/``aurora-postgresql`` → ``postgres``."""
    if engine is None or engine == "auto":
        return None
    e = engine.lower()
    if "postgres" in e:
        return "postgres"
    if "mysql" in e or "maria" in e:
        return "mysql"
    raise ValueError(f"unknown engine {engine!r}: expected mysql, mariadb, aurora-mysql or postgres")


def file_first_written(name: str, last_written: float | None) -> tuple[str, float | None] | None:
    """``(engine, earliest write time or None)`` for a slow-log file name, or None for any other file.

    Rotated files carry their hour in the name (``.2024-03-01.10``, PostgreSQL ``.2024-03-01-10[MM]``), the
    older MySQL ring only the hour of day (``.10``), dated by ``last_written``. The current MySQL file
    (``mysql-slowquery.log``) says nothing: None.
    """
    m = _MYSQL_NAME.match(name)
    if m is not None:
        if m.group(1):
            y, mo, d, h = (int(g) for g in m.groups()[:4])
            return "mysql", float(calendar.timegm((y, mo, d, h, 0, 0)))
        if m.group(5) is not None and last_written is not None:
            hod = int(m.group(5))
            if hod > 23:
                return "mysql", None
            # the latest start of hour ``hod`` that is not after the last write (rotation may land just after)
            t = last_written - 0.001
            day = int(t // 86400) * 86400
            first = day + hod * 3600
            if first > t:
                first -= 86400
            return "mysql", float(first)
        return "mysql", None
    m = _PG_NAME.match(name)
    if m is not None:
        y, mo, d, h = (int(g) for g in m.groups()[:4])
        mi = int(m.group(5) or 0)
        return "postgres", float(calendar.timegm((y, mo, d, h, mi, 0)))
    return None


class Pacer:
    """Keeps at least ``interval`` seconds between calls; share one across sources hitting one account+region.

    RDS allows ~12 requests/s per account and region, shared with every other caller, so the downloader
    paces itself under that rather than relying on throttling errors alone.
    """

    def __init__(self, interval: float = 0.1, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = max(0.0, interval)
        self.sleep = sleep
        self.clock = clock
        self.waited = 0.0
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            now = self.clock()
            delay = self._next - now
            if delay > 0:
                self.sleep(delay)
                self.waited += delay
                now += delay
            self._next = now + self.interval


def make_rds_client(region: str | None = None, endpoint_url: str | None = None, *, max_attempts: int = 10,
                    session: Any = None, **config: Any) -> Any:
    """An RDS client fit for log downloads: adaptive retries (client-side rate limiting on throttles), a
    120 s read timeout for 1 MB portions, and every failed attempt logged. ``max_attempts`` counts the first
    try; an endpoint that cannot be connected to fails after a few attempts instead (see
    :mod:`rds_slowlog.sources.aws`). Credentials come from the standard AWS chain through ``session``."""
    from rds_slowlog.sources.aws import make_client

    return make_client("rds", region, endpoint_url, max_attempts=max_attempts, read_timeout=120, session=session,
                       **config)




def _marker_offset(marker: str | None) -> int | None:
    """The byte offset in an ``hour:offset`` marker. Markers are opaque; this is only used for estimates."""
    if not marker:
        return None
    m = _MARKER_OFFSET.match(marker)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------------------------- source

class RdsLogSource:
    """Slow-log files of one RDS instance, listed with ``DescribeDBLogFiles`` and streamed (see module doc).

    :param client: a boto3 RDS client (preferably from :func:`make_rds_client`).
    :param engine: ``mysql`` (also MariaDB/Aurora MySQL) or ``postgres``; None lists both kinds of file.
    :param complete_file: try the REST complete-file endpoint first; ``fallback`` then decides whether a failure
        of it falls back to portions (default) or is raised.
    :param api_version: ``v13`` or ``v19`` — AWS retires ``/v13/`` for the complete-file endpoint in 2027.
    :param number_of_lines: largest ``NumberOfLines`` per portion (10,000 is what RDS returns without one; the
        loop sizes requests below this to ~90 % of the response cap from the line lengths it sees).
    :param max_tries: bound on our own retries of one call (not found around rotation, throttling after botocore
        gave up) and on portions that make no progress.
    :param pace: minimum seconds between API calls, or a shared :class:`Pacer`.
    :param sleep: how to wait (tests inject a fake); also used for pacing when ``pace`` is a number.
    :param credentials: botocore credentials for signing the REST call; default: the client's own.
    """

    kind = "rds"

    def __init__(
        self,
        client: Any,
        instance: str,
        engine: str | None = None,
        *,
        complete_file: bool = True,
        fallback: bool = True,
        api_version: str = "v13",
        number_of_lines: int = 10_000,
        max_tries: int = 5,
        pace: float | Pacer = 0.1,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        credentials: Any = None,
        portion_cap: int = ASSUMED_PORTION_CAP,
        now: Callable[[], float] = time.time,
    ) -> None:
        if api_version not in ("v13", "v19"):
            raise ValueError(f"api_version must be v13 or v19, not {api_version!r}")
        if number_of_lines < 1:
            raise ValueError("number_of_lines must be at least 1")
        self.client = client
        self.instance = instance
        self.engine = normalize_engine(engine)
        self.complete_file = complete_file
        self.fallback = fallback
        self.api_version = api_version
        self.number_of_lines = number_of_lines
        self.max_tries = max(1, max_tries)
        self.pacer = pace if isinstance(pace, Pacer) else Pacer(pace, sleep=sleep, clock=clock)
        self.backoff = backoff
        self.sleep = sleep
        self.now = now    # wall clock: is the current file still being written?
        self.credentials = credentials
        #: the response cap in bytes; starts at the documented 1 MB and is lowered when a truncation shows less
        self.portion_cap = portion_cap
        self._lines_hint: int | None = None

    # ---- listing

    def list_files(self, start: float, end: float) -> list[LogFileRef]:
        """Slow-log files that may hold entries written in ``[start, end)``, sorted by LastWritten.

        A file qualifies when it was last written at or after ``start`` (asked of the server with
        ``FileLastWritten`` and checked again here) and, when its name tells when it began, began before
        ``end``. The current MySQL file began no earlier than the newest rotated file's hour (when one is
        listed); otherwise it is kept whenever it was written since ``start``.
        """
        params: dict[str, Any] = {"DBInstanceIdentifier": self.instance, "FileLastWritten": int(start * 1000)}
        if self.engine == "mysql":
            params["FilenameContains"] = MYSQL_SLOWLOG
        elif self.engine == "postgres":
            params["FilenameContains"] = POSTGRES_LOG_PREFIX
        since_ms = int(start * 1000)
        candidates: list[tuple[str, str, float | None, float | None, int | None]] = []
        seen_markers: set[str] = set()
        while True:
            resp = self._call("describe_db_log_files", params)
            for item in resp.get("DescribeDBLogFiles") or ():
                name = item.get("LogFileName") or ""
                lw_ms = item.get("LastWritten")
                last = lw_ms / 1000.0 if lw_ms is not None else None
                info = file_first_written(name, last)
                if info is None or (self.engine is not None and info[0] != self.engine):
                    continue
                if lw_ms is not None and lw_ms < since_ms:
                    continue
                candidates.append((name, info[0], info[1], last, item.get("Size")))
            marker = resp.get("Marker")
            if not marker or marker in seen_markers:  # a repeating marker would page forever
                break
            seen_markers.add(marker)
            params["Marker"] = marker
        # The current MySQL file was opened by the rotation that produced the newest rotated file, which
        # happened after that file's hour began: nothing in the current file is older than that hour. (Not
        # "after it ended": RDS also rotates early when the log grows too large.) Without a rotated file in the
        # listing (none written since ``start``) there is no bound and the current file is kept.
        newest_rotated = max((c[2] for c in candidates if c[1] == "mysql" and c[2] is not None), default=None)
        # the file RDS is still appending to: the current MySQL file, the newest PostgreSQL one; "growing"
        # while it was written to within SETTLE_SECONDS of now
        newest_pg = max((c for c in candidates if c[1] == "postgres"), key=lambda c: c[3] or 0.0, default=None)
        now = self.now()
        refs: list[LogFileRef] = []
        for name, engine, first, last, size in candidates:
            live = name == MYSQL_SLOWLOG or (newest_pg is not None and name == newest_pg[0])
            growing = live and (last is None or now - last < SETTLE_SECONDS)
            extra: dict[str, Any] = {}
            if first is not None:
                extra["first_written"] = first
            elif engine == "mysql" and newest_rotated is not None:
                first = newest_rotated
                extra["first_written_inferred"] = first
            if first is not None and first >= end:
                continue
            refs.append(LogFileRef(kind="rds", instance=self.instance, name=name, size=size, last_written=last,
                                   engine=engine, uri=f"rds://{self.instance}/{name}", extra=extra,
                                   growing=growing))
        refs.sort(key=lambda r: (r.last_written if r.last_written is not None else float("inf"), r.name))
        return refs

    # ---- reading

    def open(self, ref: LogFileRef, *, resume: Resume | None = None) -> SourceStream:
        """Stream ``ref``; with ``resume`` continue after a portion marker (or skip ``resume.offset`` bytes)."""
        report = DownloadReport(name=ref.name)
        raw = _RdsRaw(self, ref, report, resume)
        return SourceStream(raw)

    # ---- calls

    def _call(self, method: str, params: dict[str, Any], report: DownloadReport | None = None,
              *, retry_not_found: bool = False) -> dict[str, Any]:
        """One paced API call with bounded retries of our own on top of botocore's."""
        from botocore.exceptions import BotoCoreError, ClientError

        fn = getattr(self.client, method)
        tries = 0
        while True:
            tries += 1
            self.pacer.wait()
            if report is not None:
                report.calls += 1
            try:
                resp = fn(**params)
            except ClientError as exc:
                code = _error_code(exc)
                if report is not None:
                    report.retries += _retry_attempts(exc.response)
                retriable = code in _THROTTLE_CODES or (retry_not_found and code == _NOT_FOUND)
                if not retriable or tries >= self.max_tries:
                    raise
                reason = code
            except BotoCoreError as exc:  # connection reset, read timeout… (botocore retried these already)
                # an endpoint that cannot be connected to is not throttling: botocore's few attempts are enough
                if tries >= self.max_tries or not _is_transient(exc) or is_unreachable(exc):
                    raise
                reason = type(exc).__name__
            else:
                n = _retry_attempts(resp)
                if n:
                    log.info("RDS %s for %s succeeded after %d botocore retries", method,
                             params.get("LogFileName", self.instance), n)
                    if report is not None:
                        report.retries += n
                return resp
            delay = min(self.backoff * (2 ** (tries - 1)), 20.0)
            log.warning("RDS %s for %s failed with %s; retry %d/%d in %.1fs", method,
                        params.get("LogFileName", self.instance), reason, tries, self.max_tries - 1, delay)
            if report is not None:
                report.retries += 1
            self.sleep(delay)

    def _open_complete(self, ref: LogFileRef) -> Any:
        """Start the REST complete-file download; return the unread urllib3 response or raise why not."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        endpoint = self.client.meta.endpoint_url.rstrip("/")
        url = (f"{endpoint}/{self.api_version}/downloadCompleteLogFile/"
               f"{quote(self.instance, safe='')}/{quote(ref.name, safe='/')}")
        creds = self._signing_credentials()
        if creds is None:
            raise _CompleteUnavailable("no credentials to sign the request with")
        request = AWSRequest(method="GET", url=url, stream_output=True)
        SigV4Auth(creds, "rds", self.client.meta.region_name or "us-east-1").add_auth(request)
        prepared = request.prepare()
        self.pacer.wait()
        # the client's own connection pool, so its proxies, CA bundle and timeouts apply (private attribute;
        # without it the portion API, which needs nothing private, is used instead)
        session = getattr(getattr(self.client, "_endpoint", None), "http_session", None)
        if session is None:
            raise _CompleteUnavailable("the client exposes no HTTP session to stream with")
        response = session.send(prepared)
        status, raw = response.status_code, response.raw
        if status != 200:
            try:
                body = raw.read(4096)
            finally:
                raw.release_conn()
            code = re.search(rb"<Code>([^<]+)</Code>", body or b"")
            raise _CompleteUnavailable(f"HTTP {status}" + (f" {code.group(1).decode(errors='replace')}" if code else ""))
        return raw

    def _signing_credentials(self) -> Any:
        creds = self.credentials
        if creds is None:
            # botocore has no public accessor for a client's credentials; both paths are private but stable
            # for years. Pass ``credentials=`` (e.g. ``boto3.Session().get_credentials()``) to avoid them.
            getter = getattr(self.client, "_get_credentials", None)
            creds = getter() if getter is not None else getattr(
                getattr(self.client, "_request_signer", None), "_credentials", None)
        if creds is None:
            return None
        frozen = getattr(creds, "get_frozen_credentials", None)
        return frozen() if frozen is not None else creds


def _is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, (BotoConnectionError, HTTPClientError))


class _CompleteUnavailable(Exception):
    """The complete-file endpoint refused or failed before sending data."""


# --------------------------------------------------------------------------------------------- stream

class _RdsRaw(StreamRaw):
    """Unbuffered reader for one RDS file: the complete-file body, or the portion loop, never the whole file."""

    def __init__(self, source: RdsLogSource, ref: LogFileRef, report: DownloadReport, resume: Resume | None) -> None:
        offset = resume.offset if resume is not None else 0
        super().__init__(ref.name, report, offset)
        self._src = source
        self._ref = ref
        self._size = ref.size
        self._http: Any = None
        self._done = False
        # bytes of the file to drop before delivering (resume without a marker, or portions after a broken
        # complete download); tracked separately from ``_offset`` which counts bytes given to the reader
        self._skip = 0
        self._marker = "0"
        # start from what earlier files of this source taught (cap and line length): fewer truncated calls
        self._lines = source._lines_hint or source.number_of_lines
        self._cap = source.portion_cap
        self._file_pos: int | None = 0  # position in the file per the markers, when they parse
        #: (stream offset, marker) pairs where a portion ended: the points a download can resume from. Only
        #: the newest one before what the reader may still have unread in its buffer is kept (see _boundary).
        self._boundaries: deque[tuple[int, str]] = deque()
        if resume is not None and resume.marker is not None:
            self._marker = resume.marker
            self._file_pos = _marker_offset(resume.marker)
            self._boundary(offset, resume.marker)
            report.marker = resume.marker
            report.method = "portions"
            return
        self._skip = offset
        if offset == 0:
            self._boundary(0, "0")
        if source.complete_file:
            try:
                self._http = source._open_complete(ref)
                report.method = "complete"
                report.calls += 1
            except Exception as exc:  # any failure of the REST endpoint → portions (unless told not to)
                report.calls += 1
                if not source.fallback or is_unreachable(exc):  # portions go to the same endpoint
                    report.error = f"complete-file download failed: {exc}"
                    raise
                self._fall_back(exc)

    # ---- io.RawIOBase

    def readinto(self, b: Any) -> int:
        while True:
            if self._http is not None:
                n = self._read_complete(b)
                if n is not None:
                    return n
                continue
            n = self._serve(b)
            if n is not None:
                return n
            if self._done:
                return 0
            self._fetch()

    def close(self) -> None:
        if self._http is not None:
            try:
                self._http.release_conn()
            except Exception:  # noqa: BLE001 - closing must not raise
                pass
            self._http = None
        super().close()

    def _boundary(self, offset: int, marker: str) -> None:
        b = self._boundaries
        b.append((offset, marker))
        horizon = offset - _KEEP_BACK
        while len(b) >= 2 and b[1][0] <= horizon:
            b.popleft()

    def resume_point(self, consumed: int) -> Resume:
        """The latest portion boundary at or before ``consumed``; else skip-from-start (always correct)."""
        if self.report.method == "portions":
            for off, marker in reversed(self._boundaries):
                if off <= consumed:
                    return Resume(marker, off)
        return Resume(None, consumed)

    # ---- complete file

    def _read_complete(self, b: Any) -> int | None:
        """Bytes from the HTTP body; 0 at the end; None after switching to portions on a broken stream."""
        try:
            if self._skip:
                while self._skip:
                    chunk = self._http.read(min(self._skip, 1 << 16))
                    if not chunk:
                        break
                    self._skip -= len(chunk)
            n = self._http.readinto(b)
        except Exception as exc:  # connection reset mid-body: continue with portions after what we have
            self._http.release_conn()
            self._http = None
            if not self._src.fallback:
                self.report.error = f"complete-file download broke at {self._offset}: {exc}"
                raise
            self._skip = self._offset  # portions restart at "0": drop everything already delivered
            self._fall_back(exc)
            return None
        if n:
            self._offset += n
            self.report.bytes += n
            return n
        self._http.release_conn()
        self._http = None
        self._done = True
        self.report.complete = True
        if self._size is not None and self._offset < self._size:
            self._lose(self._offset, self._size - self._offset, "complete-file body shorter than the listed size")
        return 0

    def _fall_back(self, exc: BaseException) -> None:
        self.report.fallback = f"{type(exc).__name__}: {exc}"
        self.report.method = "portions"
        log.warning("complete-file download of %s unavailable (%s); using DownloadDBLogFilePortion",
                    self._ref.name, self.report.fallback)

    # ---- portions

    def _lose(self, offset: int, approx: int | None, reason: str) -> None:
        self.report.losses.append(Loss(offset, approx, reason))
        self.report.complete = False
        log.warning("%s: lost ~%s bytes at offset %d: %s", self._ref.name, approx, offset, reason)

    def _finish(self) -> None:
        self._done = True
        self.report.complete = not self.report.losses

    def _fetch(self) -> None:
        """Fetch the next usable portion into ``_buf`` (or finish). Never holds more than one portion."""
        src = self._src
        stalls = 0
        while True:
            params = {"DBInstanceIdentifier": src.instance, "LogFileName": self._ref.name,
                      "Marker": self._marker, "NumberOfLines": self._lines}
            try:
                resp = src._call("download_db_log_file_portion", params, self.report, retry_not_found=True)
            except Exception as exc:
                self.report.error = f"{type(exc).__name__}: {exc}"
                self._done = True
                raise
            text = resp.get("LogFileData") or ""
            data = text.encode("utf-8", "surrogateescape")
            new_marker = resp.get("Marker") or ""
            pending = bool(resp.get("AdditionalDataPending"))
            if not new_marker or (new_marker == "0" and self._marker != "0"):
                new_marker = self._marker  # "empty data with marker 0 or ''": treat as no progress, never rewind

            if data.endswith(_TRUNC):
                self.report.truncations += 1
                kept_len = len(data) - _TRUNC_LEN
                self._cap = max(1, min(self._cap, kept_len))  # learn the real cap (it may be below 1 MB)
                src.portion_cap = self._cap
                if self._lines > 1:
                    self._lines = max(1, self._lines // 2)
                    continue  # same marker, fewer lines: nothing lost yet
                # one line is larger than the cap: keep what came, mark the cut so the parser flags the entry
                data += b"\n"
                start = self._file_pos
                end = _marker_offset(new_marker)
                approx = end - start - kept_len if start is not None and end is not None else None
                self._lose(self._offset + max(0, kept_len - self._skip), approx, LINE_OVER_CAP)

            progressed = bool(data) or new_marker != self._marker
            if progressed:
                stalls = 0
            else:
                stalls += 1
            self._marker = new_marker
            self.report.marker = new_marker
            self._file_pos = _marker_offset(new_marker)
            if data:
                self._tune_lines(data)
                if self._skip:
                    drop = min(self._skip, len(data))
                    data = data[drop:]
                    self._skip -= drop
                self._buf, self._pos = data, 0
                if not self._skip:
                    self._boundary(self._offset + len(data), new_marker)
            elif not self._skip and progressed:
                self._boundary(self._offset, new_marker)

            reached = self._file_pos if self._file_pos is not None else self._offset + len(self._buf) - self._pos
            if pending:
                if data:
                    return
                if stalls >= src.max_tries:
                    self._lose(self._offset, None, "no progress although RDS reports more data pending")
                    self._finish()
                    return
                if stalls:
                    src.sleep(src.backoff)
                continue
            # AdditionalDataPending is false: trust it only when the listed size is reached or nothing moves
            if not progressed:
                if self._size is not None and reached < self._size and stalls < src.max_tries:
                    src.sleep(src.backoff)  # an empty answer short of the listed size: ask again, a bounded time
                    continue
                self._check_size(reached)
                self._finish()
                return
            if self._size is None or reached >= self._size:
                self._finish()
                return
            log.info("%s: AdditionalDataPending=false at %s of %s bytes; continuing", self._ref.name, reached,
                     self._size)
            if data:
                return

    def _check_size(self, reached: int) -> None:
        if self._size is None:
            return
        # without parseable markers ``reached`` counts stream bytes, which earlier losses already explain
        if reached < self._size and (self._file_pos is not None or not self.report.losses):
            self._lose(self._offset, self._size - reached,
                       "RDS stopped returning data before the listed size was reached")

    def _tune_lines(self, data: bytes) -> None:
        """Aim the next request at ~90 % of the cap from the line lengths just seen (fewer, fuller calls)."""
        lines = data.count(b"\n")
        if lines <= 0:
            return
        target = int(self._cap * 0.9)
        self._lines = self._src._lines_hint = max(1, min(self._src.number_of_lines, target * lines // len(data)))
