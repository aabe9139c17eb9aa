"""Bulk indexing of staged chunks into Elasticsearch or OpenSearch, with one retry layer and a dead letter.

Input is a committed chunk (:mod:`rds_slowlog.staging`: NDJSON whose documents carry ``_id`` and ``_index``,
verified against the manifest); output is the chunk's :class:`~rds_slowlog.stats.Stats`.

How a chunk is sent (and why):

* **Serialise once.** Chunk lines are already JSON. The ``_id``/``_index`` tail that
  :meth:`DocumentBuilder.action` appends is cut off with a byte search (never a JSON parse) and turned into
  the bulk action line, so the only per-document work is two slices and a concatenation; lines of another
  shape fall back to ``orjson``.
* **Batches bounded by docs and bytes** (``batch_size``, ``max_chunk_bytes``; each newline counts one byte,
  as in ``elasticsearch.helpers``). Each batch is one ``_bulk`` request sent through the client library's own
  ``streaming_bulk`` (``raise_on_error=False``: per-item results come back to us; ``max_retries=0``: the
  helper's blocking, jitter-free retry is not used).
* **One retry layer** (``es_retry_count``): per batch, only the items that failed with 429/502/503/504 — or
  the whole batch when the request itself failed with one of those, a connection error or a timeout — are
  resent after ``min(max_backoff, initial_backoff·2^(attempt-1))`` scaled by a jitter in [0.5, 1). The
  transport's own retries are switched off for these requests (``options(max_retries=0)`` on
  Elasticsearch; a shallow client copy with ``max_retries=0`` on OpenSearch) so attempts never multiply.
  Resending is safe because ids are deterministic and the op is ``index`` (overwrite).
* **Permanent item failures** (mapping/parsing errors, …) go to ``<chunk>.deadletter.ndjson`` next to the
  chunk — one line per document: reason, status, the server's error and the original document. More of them
  than ``failure_threshold`` raises :class:`~rds_slowlog.exceptions.FailureThresholdExceeded` (after the
  dead letter is written). Retriable failures left after the last retry raise
  :class:`~rds_slowlog.exceptions.RetriesExhausted`: rerunning the chunk completes it. A whole request
  refused for a non-retriable reason (401, 403, 413, …) raises
  :class:`~rds_slowlog.exceptions.BulkRequestRejected` at once: no document is to blame.

The core takes a client (``elasticsearch.Elasticsearch`` 8/9 or ``opensearchpy.OpenSearch``); the CLI and the
Airflow hooks build it. Sleeps and jitter are injectable for tests.
"""
from __future__ import annotations

import copy
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson

from rds_slowlog.exceptions import BulkRequestRejected, FailureThresholdExceeded, RetriesExhausted
from rds_slowlog.staging import ChunkInfo, _fs, chunk_info, join, read_chunk, read_manifest
from rds_slowlog.stats import Stats

log = logging.getLogger(__name__)

ENGINES: Final = ("elasticsearch", "opensearch")
RETRIABLE_STATUSES: Final = frozenset({429, 502, 503, 504})
DEAD_LETTER_SUFFIX: Final = ".deadletter.ndjson"
#: ``{"reason", "status", "_id"}`` samples kept on exceptions (plain values, so they pickle).
_MAX_ERROR_SAMPLES: Final = 10

# The tail DocumentBuilder.action() writes: ``…,"_id":"<id>","_index":"<index>"}``. An unescaped quote only
# occurs structurally in JSON, and the line ends right after the ``_index`` value, so a match is the top-level
# pair (a nested one would need a second closing brace).
_TAIL_START: Final = b',"_id":"'
_TAIL: Final = re.compile(rb',"_id":"([^"\\]+)","_index":"([^"\\]+)"\}\r?\n?')


# ------------------------------------------------------------------------------------------- clients

def resolve_engine(client: Any, engine: str = "auto") -> str:
    """``elasticsearch`` or ``opensearch``; ``auto`` looks at the client's class (no request)."""
    if engine in ENGINES:
        return engine
    if engine != "auto":
        raise ValueError(f"engine must be one of {ENGINES} or 'auto', got {engine!r}")
    for cls in type(client).__mro__:
        mod = cls.__module__.split(".", 1)[0]
        if mod == "elasticsearch":
            return "elasticsearch"
        if mod == "opensearchpy":
            return "opensearch"
    raise ValueError(f"cannot tell the engine of a {type(client).__name__} client; pass engine=")


def raw_request(client: Any, engine: str, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None) -> tuple[int, Any]:
    """``(HTTP status, parsed body)`` of one request; HTTP errors are returned, not raised."""
    if engine == "elasticsearch":
        from elasticsearch import ApiError

        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/json"
        try:
            resp = client.perform_request(method, path, params=params, headers=headers, body=body)
        except ApiError as e:
            return e.meta.status, e.body
        return resp.meta.status, resp.body
    from opensearchpy.exceptions import TransportError

    try:
        resp = client.transport.perform_request(method, path, params=params, body=body)
    except TransportError as e:
        if isinstance(e.status_code, int):
            return e.status_code, e.info
        raise
    return 200, resp


def build_client(engine: str, url: str, *, username: str | None = None, password: str | None = None,
                 api_key: str | None = None, verify_certs: bool = True, ca_certs: str | None = None,
                 http_compress: bool = True, timeout: float = 60.0) -> Any:
    """A client for ``url`` (``scheme://[user:password@]host:port[/prefix]``).

    Credentials in the URL win over the keyword arguments; they are removed from the URL handed to the client
    so they never show up in its ``repr`` or in connection-error messages. TLS certificates are verified
    unless ``verify_certs=False``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("target URL must look like http(s)://[user:password@]host:port")
    if parts.username is not None:
        username, password = unquote(parts.username), unquote(parts.password or "")
    port = parts.port or (443 if parts.scheme == "https" else 9200)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    clean = urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", ""))
    if engine == "elasticsearch":
        from elasticsearch import Elasticsearch

        kw: dict[str, Any] = {"verify_certs": verify_certs, "http_compress": http_compress,
                              "request_timeout": timeout}
        if ca_certs:
            kw["ca_certs"] = ca_certs
        if api_key:
            kw["api_key"] = api_key
        elif username is not None:
            kw["basic_auth"] = (username, password or "")
        return Elasticsearch(clean, **kw)
    if engine == "opensearch":
        from opensearchpy import OpenSearch

        okw: dict[str, Any] = {"use_ssl": parts.scheme == "https", "verify_certs": verify_certs,
                               "http_compress": http_compress, "timeout": timeout}
        if ca_certs:
            okw["ca_certs"] = ca_certs
        if api_key:
            okw["headers"] = {"authorization": f"ApiKey {api_key}"}
        elif username is not None:
            okw["http_auth"] = (username, password or "")
        return OpenSearch([clean], **okw)
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def _status_of(e: BaseException) -> int | None:
    meta = getattr(e, "meta", None)
    status = getattr(meta, "status", None)
    if not isinstance(status, int):
        status = getattr(e, "status_code", None)
    return status if isinstance(status, int) else None


def _retriable_exception(e: BaseException) -> bool:
    """429/502/503/504, connection errors and timeouts are worth another try; TLS failures are not."""
    status = _status_of(e)
    if status is not None:
        return status in RETRIABLE_STATUSES
    names = {c.__name__ for c in type(e).__mro__}
    if names & {"TlsError", "SSLError", "SerializationError"}:
        return False
    return bool(names & {"ConnectionError", "ConnectionTimeout", "TimeoutError"})


# ------------------------------------------------------------------------------------------- options

@dataclass(frozen=True)
class BulkOptions:
    """Knobs of :func:`index_chunk` (names follow the seed's ``es_*`` settings).

    ``failure_threshold``: documents that may be dead-lettered per chunk before the chunk fails — a fraction of
    the chunk's documents when ``< 1`` (``0.01`` = 1 %), an absolute count when ``>= 1``; ``0`` tolerates none.
    """

    batch_size: int = 1000
    max_chunk_bytes: int = 10 * 1024 * 1024
    es_timeout: float = 60.0
    es_retry_count: int = 5
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    failure_threshold: float = 0.01
    dead_letter: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_chunk_bytes < 1:
            raise ValueError(f"max_chunk_bytes must be >= 1, got {self.max_chunk_bytes}")
        if self.es_retry_count < 0:
            raise ValueError(f"es_retry_count must be >= 0, got {self.es_retry_count}")
        if self.failure_threshold < 0:
            raise ValueError(f"failure_threshold must be >= 0, got {self.failure_threshold}")

    def allowed_failures(self, docs: int) -> int:
        t = self.failure_threshold
        return int(t) if t >= 1 else math.floor(t * docs + 1e-9)


def parse_threshold(value: str) -> float:
    """``"5%"`` → 0.05, ``"0.05"`` → 0.05, ``"10"`` → 10 (a count); for command lines and DAG params."""
    v = value.strip()
    f = float(v[:-1]) / 100 if v.endswith("%") else float(v)
    if f < 0 or (v.endswith("%") and f > 1):
        raise ValueError(f"failure threshold must be a fraction, a percentage or a count >= 0, got {value!r}")
    return f


# ------------------------------------------------------------------------------------------- items

class _Item:
    """One document on its way: the bulk action and source (bytes or str, per client library) and the line."""

    __slots__ = ("action", "data", "line", "size", "doc_id")

    def __init__(self, action: Any, data: Any, line: bytes, size: int, doc_id: str) -> None:
        self.action = action
        self.data = data
        self.line = line
        self.size = size
        self.doc_id = doc_id


def split_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """``(index, id, source)`` of a bulk-ready document line; :class:`ValueError` when it is not one."""
    pos = line.rfind(_TAIL_START)
    if pos > 0:
        m = _TAIL.fullmatch(line, pos)
        if m is not None:
            return m.group(2), m.group(1), line[:pos] + b"}"
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    doc_id, index = doc.pop("_id", None), doc.pop("_index", None)
    if not isinstance(doc_id, str) or not doc_id or not isinstance(index, str) or not index:
        raise ValueError("document has no string _id and _index")
    return index.encode(), doc_id.encode(), orjson.dumps(doc)


# ------------------------------------------------------------------------------------------- indexer

class ChunkIndexer:
    """Indexes chunks with one client; keeps no state between chunks except the prepared client."""

    def __init__(self, client: Any, *, engine: str = "auto", options: BulkOptions | None = None,
                 sleep: Callable[[float], None] = time.sleep, rand: Callable[[], float] = random.random) -> None:
        self.engine = resolve_engine(client, engine)
        self.options = options or BulkOptions()
        self.sleep = sleep
        self.rand = rand
        o = self.options
        if self.engine == "elasticsearch":
            from elasticsearch.helpers import streaming_bulk

            self._client = client.options(request_timeout=o.es_timeout, max_retries=0, retry_on_timeout=False)
            self._bulk_kwargs: dict[str, Any] = {}
            self._text = False
        else:
            from opensearchpy.helpers import streaming_bulk  # type: ignore[no-redef]

            self._client = _without_transport_retries(client)
            self._bulk_kwargs = {"request_timeout": o.es_timeout}
            self._text = True    # opensearch-py's helper joins str lines
        self._streaming_bulk = streaming_bulk
        self._bulk_kwargs["filter_path"] = "errors,items.*.status,items.*.error"

    # ---- public

    def index_chunk(self, url: str, expected: ChunkInfo | None = None, *, verify: bool = True) -> Stats:
        """Index one staged chunk (verified against its manifest entry unless ``verify=False``)."""
        if expected is None and verify:
            expected = chunk_info(url)
        lines = list(read_chunk(url, expected))
        return self.index_lines(lines, name=url, dead_letter_url=url + DEAD_LETTER_SUFFIX)

    def index_lines(self, lines: Sequence[bytes], *, name: str = "<lines>",
                    dead_letter_url: str | None = None) -> Stats:
        """Index bulk-ready NDJSON lines; the dead letter goes to ``dead_letter_url`` (if any)."""
        t0 = time.monotonic()
        run = _Run(name, len(lines), sum(map(len, lines)))
        items = self._items(lines, run)
        try:
            for batch in self._batches(items):
                self._send_with_retries(batch, run)
        except (RetriesExhausted, BulkRequestRejected) as e:
            run.seconds = time.monotonic() - t0
            self._write_dead_letter(run, dead_letter_url)
            e.stats = run.stats()
            raise
        run.seconds = time.monotonic() - t0
        self._write_dead_letter(run, dead_letter_url)
        stats = run.stats()
        allowed = self.options.allowed_failures(run.docs)
        if run.dead_lettered > allowed:
            where = f"; see {dead_letter_url}" if dead_letter_url and self.options.dead_letter else ""
            raise FailureThresholdExceeded(
                f"chunk {name}: {run.dead_lettered} of {run.docs} document(s) were rejected, more than the "
                f"failure threshold allows ({allowed}, failure_threshold={self.options.failure_threshold}){where}",
                name, dict(stats), run.samples)
        log.info("indexed %s: %s", name, stats)
        return stats

    # ---- steps

    def _items(self, lines: Iterable[bytes], run: _Run) -> list[_Item]:
        items: list[_Item] = []
        append = items.append
        text = self._text
        for line in lines:
            try:
                index, doc_id, source = split_line(line)
            except ValueError as e:
                run.dead(line, None, f"not a bulk-ready document: {e}", None)
                continue
            action = b'{"index":{"_index":"' + index + b'","_id":"' + doc_id + b'"}}'
            size = len(action) + len(source) + 2
            if text:
                append(_Item(action.decode(), source.decode("utf-8", "surrogatepass"), line, size,
                             doc_id.decode()))
            else:
                append(_Item(action, source, line, size, doc_id.decode()))
        return items

    def _batches(self, items: list[_Item]) -> Iterator[list[_Item]]:
        max_docs, max_bytes = self.options.batch_size, self.options.max_chunk_bytes
        start, size = 0, 0
        for i, item in enumerate(items):
            if i > start and (i - start >= max_docs or size + item.size > max_bytes):
                yield items[start:i]
                start, size = i, 0
            size += item.size
        if start < len(items):
            yield items[start:]

    def _send_with_retries(self, batch: list[_Item], run: _Run) -> None:
        o = self.options
        todo, reason = self._send(batch, run), ""
        attempt = 0
        while todo:
            todo_items, reason = todo
            if attempt >= o.es_retry_count:
                for item in todo_items:
                    run.failed_retriable += 1
                    run.sample(item.doc_id, None, reason)
                raise RetriesExhausted(
                    f"chunk {run.name}: {len(todo_items)} document(s) still failing after {o.es_retry_count} "
                    f"retr{'y' if o.es_retry_count == 1 else 'ies'} ({reason}); rerun the chunk — ids are "
                    f"deterministic, so indexed documents are overwritten, not duplicated",
                    run.name, None, run.samples)
            attempt += 1
            delay = min(o.max_backoff, o.initial_backoff * 2 ** (attempt - 1)) * (0.5 + 0.5 * self.rand())
            log.warning("chunk %s: retrying %d document(s) in %.2fs (attempt %d of %d): %s",
                        run.name, len(todo_items), delay, attempt, o.es_retry_count, reason)
            self.sleep(delay)
            run.retries += len(todo_items)
            todo = self._send(todo_items, run)

    def _send(self, batch: list[_Item], run: _Run) -> tuple[list[_Item], str] | None:
        """One ``_bulk`` request; returns the items to resend and why, or ``None`` when nothing is left."""
        actions = [(it.action, it.data) for it in batch]
        retry: list[_Item] = []
        reason = ""
        i = 0
        try:
            for ok, info in self._streaming_bulk(
                    self._client, actions, chunk_size=len(actions) + 1, max_chunk_bytes=1 << 62,
                    raise_on_error=False, raise_on_exception=True, max_retries=0, yield_ok=True,
                    expand_action_callback=_identity, **self._bulk_kwargs):
                item = batch[i]
                i += 1
                if ok:
                    run.indexed += 1
                    continue
                _, detail = info.popitem()
                status = detail.get("status")
                error = detail.get("error")
                if status in RETRIABLE_STATUSES:
                    retry.append(item)
                    reason = f"HTTP {status} {_error_type(error)}"
                else:
                    run.dead(item.line, status, _error_type(error), error, item.doc_id)
        except Exception as e:  # the request as a whole failed: nothing of this batch was reported yet
            if i:
                raise
            if not _retriable_exception(e):
                status = _status_of(e)
                raise BulkRequestRejected(
                    f"chunk {run.name}: bulk request of {len(batch)} document(s) refused"
                    f"{f' with HTTP {status}' if status else ''}: {_short(e)}", run.name, None, run.samples) from e
            return batch, f"{type(e).__name__}: {_short(e)}"
        if i != len(batch):
            raise BulkRequestRejected(f"chunk {run.name}: the server answered {i} item(s) for a bulk request "
                                      f"of {len(batch)}", run.name, None, run.samples)
        return (retry, reason) if retry else None

    def _write_dead_letter(self, run: _Run, url: str | None) -> None:
        if url is None or not self.options.dead_letter:
            return
        fs, path = _fs(url)
        if run.dead_lines:
            with fs.open(path, "wb") as f:
                f.write(b"".join(run.dead_lines))
        elif fs.exists(path):
            fs.rm(path)     # a clean rerun must not leave the previous run's dead letter behind


def _identity(x: Any) -> Any:
    return x


def _short(e: BaseException, limit: int = 300) -> str:
    s = str(e)
    return s if len(s) <= limit else s[:limit] + "…"


def _error_type(error: Any) -> str:
    if isinstance(error, dict):
        t, r = error.get("type", "error"), error.get("reason", "")
        cause = error.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason"):
            r = f"{r}: {cause.get('reason')}"
        return f"{t}: {r}"[:500]
    return str(error)[:500]


def _without_transport_retries(client: Any) -> Any:
    """An OpenSearch client sharing ``client``'s connections whose transport does not retry (ours does)."""
    transport = getattr(client, "transport", None)
    if transport is None or getattr(transport, "max_retries", 0) == 0:
        return client
    t = copy.copy(transport)
    t.max_retries = 0
    c = copy.copy(client)
    c.transport = t
    return c


class _Run:
    """Counters and the dead letter of one chunk."""

    __slots__ = ("name", "docs", "bytes", "indexed", "dead_lettered", "failed_retriable", "retries",
                 "seconds", "dead_lines", "samples")

    def __init__(self, name: str, docs: int, nbytes: int) -> None:
        self.name = name
        self.docs = docs
        self.bytes = nbytes
        self.indexed = 0
        self.dead_lettered = 0
        self.failed_retriable = 0
        self.retries = 0
        self.seconds = 0.0
        self.dead_lines: list[bytes] = []
        self.samples: list[dict[str, Any]] = []

    def sample(self, doc_id: str | None, status: int | None, reason: str) -> None:
        if len(self.samples) < _MAX_ERROR_SAMPLES:
            self.samples.append({"_id": doc_id, "status": status, "reason": reason})

    def dead(self, line: bytes, status: int | None, reason: str, error: Any, doc_id: str | None = None) -> None:
        self.dead_lettered += 1
        self.sample(doc_id, status, reason)
        head = orjson.dumps({"reason": reason, "status": status, "error": error, "_id": doc_id})
        body = line.rstrip(b"\r\n")
        try:
            orjson.loads(body)
            self.dead_lines.append(head[:-1] + b',"doc":' + body + b"}\n")
        except orjson.JSONDecodeError:
            self.dead_lines.append(head[:-1] + b',"raw":' + orjson.dumps(body.decode("utf-8", "replace")) + b"}\n")

    def stats(self) -> Stats:
        return Stats(docs=self.docs, indexed=self.indexed, failed=self.dead_lettered + self.failed_retriable,
                     dead_lettered=self.dead_lettered, retries=self.retries, seconds=round(self.seconds, 3),
                     bytes=self.bytes)


# ------------------------------------------------------------------------------------------- entry points

def index_chunk(client: Any, url: str, *, engine: str = "auto", options: BulkOptions | None = None,
                expected: ChunkInfo | None = None, sleep: Callable[[float], None] = time.sleep,
                rand: Callable[[], float] = random.random) -> Stats:
    """Index one staged chunk; see the module docstring for retries, dead letter and failure threshold.

    .. seealso:: https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-bulk
    :raises FailureThresholdExceeded: too many documents were rejected (dead letter written).
    :raises RetriesExhausted: retriable failures outlasted ``es_retry_count`` (rerun the chunk).
    :raises BulkRequestRejected: the server refused a whole request (auth, size, …).
    :raises rds_slowlog.staging.StagingError: the chunk is not committed or does not match its manifest.
    """
    return ChunkIndexer(client, engine=engine, options=options, sleep=sleep, rand=rand).index_chunk(url, expected)


def index_staging(client: Any, base: str, *, engine: str = "auto", options: BulkOptions | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  rand: Callable[[], float] = random.random) -> list[tuple[str, Stats]]:
    """Index every chunk listed in ``base``'s manifest, in order; ``[(chunk URL, stats), …]``."""
    indexer = ChunkIndexer(client, engine=engine, options=options, sleep=sleep, rand=rand)
    return [(url, indexer.index_chunk(url, info))
            for info in read_manifest(base).chunks for url in (join(base, info.name),)]


__all__ = ["BulkOptions", "ChunkIndexer", "index_chunk", "index_staging", "build_client", "resolve_engine",
           "raw_request", "split_line", "parse_threshold", "RETRIABLE_STATUSES", "DEAD_LETTER_SUFFIX"]
