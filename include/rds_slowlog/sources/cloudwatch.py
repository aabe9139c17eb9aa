"""Read RDS slow-query logs that RDS exports to CloudWatch Logs.

RDS keeps its own log files for 24 h at most; instances that publish to CloudWatch Logs keep them as long as
the log group's retention says, which makes CloudWatch the source for history and backfill. RDS writes to

* ``/aws/rds/instance/<id>/slowquery`` (MySQL, MariaDB) and ``/aws/rds/instance/<id>/postgresql``,
* ``/aws/rds/cluster/<cluster>/slowquery`` / ``…/postgresql`` (Aurora: one log stream per instance),

one *log stream* per instance inside each group. A stream has no file and no byte offsets, so this source
presents each stream, restricted to the window, as one "file" (:class:`LogFileRef`) whose bytes are the events'
messages in timestamp order, each followed by ``\\n`` unless it already ends in one. Whether RDS sends a slow
log entry as one multi-line event or line by line, the concatenation is the text of the original file, so the
same parsers apply unchanged.

Reads use ``FilterLogEvents`` (``startTime``/``endTime`` in ms, one ``logStreamNames`` entry, ``nextToken``
paging; pages can be empty while CloudWatch scans), one page in memory at a time. The client is any boto3
``logs`` client; :func:`make_logs_client` builds one with adaptive retries, and calls are paced under
CloudWatch's per-account FilterLogEvents quota.
"""
from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rds_slowlog.sources.aws import error_code as _error_code
from rds_slowlog.sources.aws import retry_attempts as _retry_attempts
from rds_slowlog.sources.base import (SETTLE_SECONDS, DownloadReport, LogFileRef, Resume,
                                      SourceStream, StreamRaw)
from rds_slowlog.sources.rds import Pacer, normalize_engine

__all__ = [
    "CloudWatchLogSource",
    "log_group_names",
    "make_logs_client",
]

log = logging.getLogger(__name__)

#: Log group suffix RDS uses per engine family.
_GROUP_SUFFIX = {"mysql": "slowquery", "postgres": "postgresql"}
_SUFFIX_ENGINE = {v: k for k, v in _GROUP_SUFFIX.items()}
_NOT_FOUND = "ResourceNotFoundException"
#: Error codes retried (by botocore, then a bounded number of times by the source).
_RETRIED_CODES = frozenset({"ThrottlingException", "Throttling", "ServiceUnavailableException",
                            "LimitExceededException", "RequestLimitExceeded", "TooManyRequestsException"})
#: How far behind the delivered offset a reader's buffer can be (2x SourceStream's default buffer).
_KEEP_BACK = 1 << 17


def log_group_names(instance: str | None = None, cluster: str | None = None,
                    engine: str | None = None) -> list[str]:
    """The CloudWatch log groups RDS publishes slow logs of an instance or cluster to.

    ``engine`` None gives both the MySQL (``slowquery``) and the PostgreSQL (``postgresql``) group: only one
    of them exists for a given instance, and listing skips groups that do not.
    """
    if (instance is None) == (cluster is None):
        raise ValueError("give exactly one of instance or cluster")
    fam = normalize_engine(engine)
    suffixes = [_GROUP_SUFFIX[fam]] if fam else [_GROUP_SUFFIX["mysql"], _GROUP_SUFFIX["postgres"]]
    base = f"/aws/rds/instance/{instance}" if instance is not None else f"/aws/rds/cluster/{cluster}"
    return [f"{base}/{s}" for s in suffixes]


def make_logs_client(region: str | None = None, endpoint_url: str | None = None, *, max_attempts: int = 10,
                     session: Any = None, **config: Any) -> Any:
    """A CloudWatch Logs client with adaptive retries (FilterLogEvents is throttled per account and region)
    and every failed attempt logged; an endpoint that cannot be connected to fails after a few attempts
    (:mod:`rds_slowlog.sources.aws`; :meth:`CloudWatchLogSource._call` never retries it either). Credentials
    come from the standard AWS chain through ``session``."""
    from rds_slowlog.sources.aws import make_client

    return make_client("logs", region, endpoint_url, max_attempts=max_attempts, read_timeout=60, session=session,
                       retried_codes=_RETRIED_CODES, **config)


def register_retry_logging(client: Any) -> None:
    """Log each retried CloudWatch Logs call of ``client`` (used for clients built elsewhere, e.g. by a hook)."""
    from rds_slowlog.sources import aws

    aws.register_retry_logging(client, _RETRIED_CODES)


def _ms_from(start: float) -> int:
    """First millisecond at or after ``start`` (FilterLogEvents' startTime is inclusive)."""
    return max(0, math.ceil(start * 1000))


def _ms_until(end: float) -> int:
    """Last millisecond strictly before ``end`` (FilterLogEvents' endTime is inclusive)."""
    return math.ceil(end * 1000) - 1


def _message_bytes(message: str) -> bytes:
    try:
        return message.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a JSON \\ud8xx escape: keep what can be kept
        return message.encode("utf-8", "surrogateescape" if _only_low_surrogates(message) else "replace")


def _only_low_surrogates(message: str) -> bool:
    return all(not ("\ud800" <= ch <= "\udfff") or "\udc80" <= ch <= "\udcff" for ch in message)


class CloudWatchLogSource:
    """Slow-log streams of one RDS instance or Aurora cluster in CloudWatch Logs (see module doc).

    :param client: a boto3 ``logs`` client (preferably from :func:`make_logs_client`).
    :param instance: the DB instance id (groups ``/aws/rds/instance/<id>/…``), or
    :param cluster: the Aurora cluster id (groups ``/aws/rds/cluster/<id>/…``), or
    :param log_groups: explicit group names (e.g. logs re-exported elsewhere); the engine is taken from a
        ``…/slowquery`` or ``…/postgresql`` suffix, else from ``engine``.
    :param engine: ``mysql``/``postgres`` or None (both groups are tried; missing groups are skipped).
    :param page_limit: ``limit`` per FilterLogEvents call (None: the service default, up to 10,000 events or
        1 MB); smaller pages bound memory further.
    :param probe: on listing, confirm with one small FilterLogEvents walk that a stream really has events in
        the window (stream metadata is only a coarse, eventually consistent hint). Costs ~1 call per stream.
    :param pace: minimum seconds between calls, or a shared :class:`Pacer` (FilterLogEvents allows a few
        requests per second per account and region).
    """

    kind = "cloudwatch"

    def __init__(
        self,
        client: Any,
        instance: str | None = None,
        engine: str | None = None,
        *,
        cluster: str | None = None,
        log_groups: Sequence[str] | None = None,
        page_limit: int | None = None,
        probe: bool = True,
        pace: float | Pacer = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_tries: int = 5,
        backoff: float = 1.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.now = now    # wall clock: does a window's read reach the events still arriving?
        self.engine = normalize_engine(engine)
        if log_groups is not None:
            self.log_groups = list(log_groups)
            self.instance = instance or cluster or (self.log_groups[0].rstrip("/").split("/")[-2]
                                                    if self.log_groups and self.log_groups[0].count("/") >= 2
                                                    else "")
        else:
            self.log_groups = log_group_names(instance, cluster, self.engine)
            self.instance = instance if instance is not None else str(cluster)
        if page_limit is not None and not 1 <= page_limit <= 10_000:
            raise ValueError("page_limit must be between 1 and 10000")
        self.page_limit = page_limit
        self.probe = probe
        self.pacer = pace if isinstance(pace, Pacer) else Pacer(pace, sleep=sleep, clock=clock)
        self.sleep = sleep
        self.max_tries = max(1, max_tries)
        self.backoff = backoff

    # ---- listing

    def _group_engine(self, group: str) -> str | None:
        return _SUFFIX_ENGINE.get(group.rstrip("/").rsplit("/", 1)[-1], self.engine)

    def list_files(self, start: float, end: float) -> list[LogFileRef]:
        """One ref per log stream with events in ``[start, end)``, oldest first.

        Streams are pre-selected from ``DescribeLogStreams`` (first event before ``end`` and last event or last
        ingestion at or after ``start``); with ``probe`` each candidate is confirmed to hold an event in the
        window. Each ref carries the window (``extra["start_ms"]``/``["end_ms"]``) that :meth:`open` reads.
        """
        start_ms, end_ms = _ms_from(start), _ms_until(end)
        growing = self.now() - end < SETTLE_SECONDS    # events of the window's end may still be arriving
        refs: list[LogFileRef] = []
        if end_ms < start_ms:
            return refs
        for group in self.log_groups:
            engine = self._group_engine(group)
            for stream in self._streams(group):
                name = stream.get("logStreamName") or ""
                first = stream.get("firstEventTimestamp")
                last = max((t for t in (stream.get("lastEventTimestamp"), stream.get("lastIngestionTime"))
                            if t is not None), default=None)
                if first is None and last is None:
                    continue  # no event ever
                if first is not None and first > end_ms:
                    continue
                if last is not None and last < start_ms:
                    continue
                if self.probe and not self._has_events(group, name, start_ms, end_ms):
                    continue
                extra = {"log_group": group, "log_stream": name, "start_ms": start_ms, "end_ms": end_ms,
                         "first_event_ms": first}
                refs.append(LogFileRef(
                    kind="cloudwatch", instance=self.instance, name=f"{group}/{name}", size=None,
                    last_written=last / 1000.0 if last is not None else None,
                    engine=engine, uri=f"cloudwatch://{group}#{name}", extra=extra, growing=growing))
        refs.sort(key=lambda r: (r.extra.get("first_event_ms") or 0, r.name))
        return refs

    def _streams(self, group: str) -> Iterable[dict[str, Any]]:
        params: dict[str, Any] = {"logGroupName": group}
        seen: set[str] = set()
        while True:
            try:
                resp = self._call("describe_log_streams", params)
            except Exception as exc:
                if _error_code(exc) == _NOT_FOUND:
                    log.info("CloudWatch log group %s does not exist; skipped", group)
                    return
                raise
            yield from resp.get("logStreams") or ()
            token = resp.get("nextToken")
            if not token or token in seen:
                return
            seen.add(token)
            params["nextToken"] = token

    def _has_events(self, group: str, stream: str, start_ms: int, end_ms: int) -> bool:
        params: dict[str, Any] = {"logGroupName": group, "logStreamNames": [stream], "startTime": start_ms,
                                  "endTime": end_ms, "limit": 1}
        seen: set[str] = set()
        while True:
            resp = self._call("filter_log_events", params)
            if resp.get("events"):
                return True
            token = resp.get("nextToken")
            if not token or token in seen:
                return False
            seen.add(token)
            params["nextToken"] = token

    # ---- reading

    def open(self, ref: LogFileRef, *, resume: Resume | None = None) -> SourceStream:
        """Stream the events of ``ref``'s log stream in its window; ``resume`` continues from a page token
        (``Resume(token, offset)`` from :meth:`SourceStream.checkpoint`) or skips ``offset`` bytes."""
        report = DownloadReport(name=ref.name, method="filter_log_events")
        return SourceStream(_CloudWatchRaw(self, ref, report, resume))

    # ---- calls

    def _call(self, method: str, params: dict[str, Any], report: DownloadReport | None = None) -> dict[str, Any]:
        """One API call, paced; throttling left over after botocore's retries is retried a bounded time."""
        tries = 0
        while True:
            tries += 1
            self.pacer.wait()
            if report is not None:
                report.calls += 1
            try:
                resp = getattr(self.client, method)(**params)
            except Exception as exc:
                code = _error_code(exc)
                if report is not None:
                    report.retries += _retry_attempts(getattr(exc, "response", None))
                if code not in _RETRIED_CODES or tries >= self.max_tries:
                    raise
                delay = min(self.backoff * (2 ** (tries - 1)), 20.0)
                log.warning("CloudWatch Logs %s failed with %s; retry %d/%d in %.1fs", method, code, tries,
                            self.max_tries - 1, delay)
                if report is not None:
                    report.retries += 1
                self.sleep(delay)
                continue
            if report is not None:
                report.retries += _retry_attempts(resp)
            return resp




class _CloudWatchRaw(StreamRaw):
    """Unbuffered reader over FilterLogEvents pages: one page's bytes in memory at a time."""

    def __init__(self, source: CloudWatchLogSource, ref: LogFileRef, report: DownloadReport,
                 resume: Resume | None) -> None:
        offset = resume.offset if resume is not None else 0
        super().__init__(ref.name, report, offset)
        extra = ref.extra
        group = extra.get("log_group")
        stream = extra.get("log_stream")
        if not group or stream is None:
            group, _, stream = ref.name.rpartition("/")
        self._src = source
        self._params: dict[str, Any] = {"logGroupName": group, "logStreamNames": [stream]}
        if extra.get("start_ms") is not None:
            self._params["startTime"] = int(extra["start_ms"])
        if extra.get("end_ms") is not None:
            self._params["endTime"] = int(extra["end_ms"])
        if source.page_limit is not None:
            self._params["limit"] = source.page_limit
        self._done = False
        self._token: str | None = None
        self._skip = offset
        #: (stream offset, token) at page starts: where a read can resume with the same bytes following
        self._boundaries: deque[tuple[int, str]] = deque()
        if resume is not None and resume.marker:
            self._token = resume.marker
            self._skip = 0
            report.marker = resume.marker

    def readinto(self, b: Any) -> int:
        while True:
            n = self._serve(b)
            if n is not None:
                return n
            if self._done:
                return 0
            self._fetch()

    def resume_point(self, consumed: int) -> Resume:
        """The latest page start at or before ``consumed`` (tokens expire after 24 h), else skip from start."""
        for off, token in reversed(self._boundaries):
            if off <= consumed:
                return Resume(token, off)
        return Resume(None, consumed)

    def _fetch(self) -> None:
        params = dict(self._params)
        if self._token is not None:
            params["nextToken"] = self._token
            if not self._skip:
                b = self._boundaries
                b.append((self._offset, self._token))
                while len(b) >= 2 and b[1][0] <= self._offset - _KEEP_BACK:
                    b.popleft()
        try:
            resp = self._src._call("filter_log_events", params, self.report)
        except Exception as exc:
            self.report.error = f"{type(exc).__name__}: {exc}"
            self._done = True
            raise
        parts: list[bytes] = []
        for event in resp.get("events") or ():
            msg = event.get("message")
            if msg is None:
                continue
            data = _message_bytes(msg)
            parts.append(data)
            if not data.endswith(b"\n"):
                parts.append(b"\n")
        data = b"".join(parts)
        if self._skip and data:
            drop = min(self._skip, len(data))
            data = data[drop:]
            self._skip -= drop
        self._buf, self._pos = data, 0
        token = resp.get("nextToken")
        if not token or token == params.get("nextToken"):  # a repeating token would page forever
            self._done = True
            self.report.complete = not self.report.losses
            self.report.marker = None
            return
        self._token = token
        self.report.marker = token
