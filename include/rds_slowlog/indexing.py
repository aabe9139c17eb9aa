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
* **Preparation overlaps sending** (:class:`ChunkIndexer`): a helper thread reads, verifies, decompresses and
  batches (also the next chunk) at most :data:`PREP_QUEUE_DEPTH` batches ahead while sending threads keep up to
  ``max_workers`` requests in flight (like ``parallel_bulk``; ``1`` = one at a time) — so the server never waits
  for our preparation, nor (with 2 or more) for our handling of an answer. Results are handled on the calling
  thread in batch order, so retries, sleeps, counts, the dead letter and exceptions are the same whatever the
  order in which answers arrive.
* **One retry layer** (``es_retry_count``): per batch, only the items that failed with 429/502/503/504 — or
  the whole batch when the request itself failed with one of those, a connection error or a timeout — are
  resent after ``min(max_backoff, initial_backoff·2^(attempt-1))`` scaled by a jitter in [0.5, 1). The
  transport's own retries are switched off for these requests (``options(max_retries=0)`` on
  Elasticsearch; a shallow client copy with ``max_retries=0`` on OpenSearch) so attempts never multiply.
  Resending is safe because ids are deterministic and the op is ``index`` (overwrite).
* **Permanent item failures** (mapping/parsing errors, …) go to ``<chunk>.deadletter.ndjson`` next to the
  chunk — one line per document, in chunk line order: reason, status, the server's error and the original
  document. More of them than ``failure_threshold`` raises
  :class:`~rds_slowlog.exceptions.FailureThresholdExceeded` (after the dead letter is written). Retriable failures left after the last retry raise
  :class:`~rds_slowlog.exceptions.RetriesExhausted`: rerunning the chunk completes it. A whole request
  refused for a non-retriable reason (401, 403, 413, …) raises
  :class:`~rds_slowlog.exceptions.BulkRequestRejected` at once: no document is to blame.

The core takes a client (``elasticsearch.Elasticsearch`` 8/9 or ``opensearchpy.OpenSearch``), built by
:func:`rds_slowlog.search.build_client` (the CLI) or the Airflow hooks. Sleeps and jitter are injectable for tests.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import queue
import random
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from rds_slowlog.exceptions import BulkRequestRejected, FailureThresholdExceeded, IndexingError, RetriesExhausted
from rds_slowlog.search import resolve_engine, status_of
from rds_slowlog.staging import ChunkInfo, chunk_info, filesystem, join, read_chunk_lines, read_manifest
from rds_slowlog.stats import Stats, add, empty

log = logging.getLogger(__name__)

RETRIABLE_STATUSES: Final = frozenset({429, 502, 503, 504})
DEAD_LETTER_SUFFIX: Final = ".deadletter.ndjson"
#: Prepared batches that may wait for the sending thread (bounds read-ahead memory to ~2 requests + 1 chunk).
PREP_QUEUE_DEPTH: Final = 2
PREP_THREAD_NAME: Final = "rds-slowlog-bulk-prep"
SEND_THREAD_NAME: Final = "rds-slowlog-bulk-send"
#: Seconds the sending thread gets to itself once its batch may go (serialising the body and writing it take
#: ~1-2 ms of GIL time; competing Python threads would stretch that gap, during which the server is idle).
SEND_HEADSTART: Final = 0.002
#: ``{"reason", "status", "_id"}`` samples kept on exceptions (plain values, so they pickle).
_MAX_ERROR_SAMPLES: Final = 10

# The tail DocumentBuilder.action() writes: ``…,"_id":"<id>","_index":"<index>"}``. An unescaped quote only
# occurs structurally in JSON, and the line ends right after the ``_index`` value, so a match is the top-level
# pair (a nested one would need a second closing brace).
_TAIL_START: Final = b',"_id":"'
_TAIL: Final = re.compile(rb',"_id":"([^"\\]+)","_index":"([^"\\]+)"\}\r?\n?')


# ------------------------------------------------------------------------------------------- retries

def _retriable_exception(e: BaseException) -> bool:
    """429/502/503/504, connection errors and timeouts are worth another try; TLS failures are not."""
    status = status_of(e)
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

    ``max_workers``: bulk requests in flight at once. With more than one, the server works on the next batch while
    the previous answer is handled here (and, with several cores, on several at once); the outcome (counts, dead
    letter, exceptions) is the same as with one — but when a batch fails for good, up to ``max_workers - 1``
    later batches (possibly of the next chunk) may already have been sent: rerunning overwrites them.
    """

    batch_size: int = 1000
    max_chunk_bytes: int = 10 * 1024 * 1024
    es_timeout: float = 60.0
    es_retry_count: int = 5
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    failure_threshold: float = 0.01
    dead_letter: bool = True
    #: Bulk requests in flight at once (the seed's worker count); 1 sends one at a time.
    max_workers: int = 2

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_chunk_bytes < 1:
            raise ValueError(f"max_chunk_bytes must be >= 1, got {self.max_chunk_bytes}")
        if self.es_retry_count < 0:
            raise ValueError(f"es_retry_count must be >= 0, got {self.es_retry_count}")
        if self.failure_threshold < 0:
            raise ValueError(f"failure_threshold must be >= 0, got {self.failure_threshold}")
        if self.max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {self.max_workers}")

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

def _slow_parts(line: bytes) -> tuple[str, str, bytes]:
    """``(index, id, source)`` of a line whose tail is not the fast-path shape (a JSON parse)."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    doc_id, index = doc.pop("_id", None), doc.pop("_index", None)
    if not isinstance(doc_id, str) or not doc_id or not isinstance(index, str) or not index:
        raise ValueError("document has no string _id and _index")
    return index, doc_id, orjson.dumps(doc)


def split_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """``(index, id, source)`` of a bulk-ready document line; :class:`ValueError` when it is not one.

    ``index`` and ``id`` are the raw JSON string contents (no escapes on the fast path).
    """
    pos = line.rfind(_TAIL_START)
    if pos > 0:
        m = _TAIL.fullmatch(line, pos)
        if m is not None:
            return m.group(2), m.group(1), line[:pos] + b"}"
    index, doc_id, source = _slow_parts(line)
    return index.encode(), doc_id.encode(), source


class _Batch:
    """One ``_bulk`` request's worth of documents, prepared off the sending thread.

    ``actions[k]`` is the ``(action line, source)`` pair handed to ``streaming_bulk`` as is (bytes for
    elasticsearch-py; str for opensearch-py, whose helper joins text); ``pos[k]`` is that document's line number
    in its chunk — the dead letter is written in line order and the original line is looked up only on failure,
    so nothing but the pair is built per document. ``bad`` lists ``(line number, reason)`` of the lines met
    while building this batch that are not bulk-ready documents.
    """

    __slots__ = ("actions", "pos", "bad")

    def __init__(self, actions: list[tuple[Any, Any]], pos: list[int], bad: list[tuple[int, str]]) -> None:
        self.actions = actions
        self.pos = pos
        self.bad = bad

    def subset(self, ks: list[int]) -> _Batch:
        return _Batch([self.actions[k] for k in ks], [self.pos[k] for k in ks], [])


def _action_line(index: str, doc_id: str) -> bytes:
    return orjson.dumps({"index": {"_index": index, "_id": doc_id}})


def _prepare(lines: Sequence[bytes], max_docs: int, max_bytes: int, text: bool) -> Iterator[_Batch]:
    """Cut ``lines`` into batches bounded by docs and bytes (action + source + 2 newlines per document).

    The fast path costs a reverse byte search, one anchored regex match and two concatenations per document;
    lines of another shape go through :func:`_slow_parts` (whose ids may need JSON escaping, hence
    :func:`_action_line`).
    """
    fullmatch = _TAIL.fullmatch
    actions: list[tuple[Any, Any]] = []
    pos: list[int] = []
    bad: list[tuple[int, str]] = []
    size = 0
    for p, line in enumerate(lines):
        cut = line.rfind(_TAIL_START)
        m = fullmatch(line, cut) if cut > 0 else None
        if m is not None:
            action = b'{"index":{"_index":"%s","_id":"%s"}}' % (m[2], m[1])
            source = line[:cut] + b"}"
        else:
            try:
                index, doc_id, source = _slow_parts(line)
            except ValueError as e:
                bad.append((p, f"not a bulk-ready document: {e}"))
                continue
            action = _action_line(index, doc_id)
        n = len(action) + len(source) + 2
        if actions and (len(actions) >= max_docs or size + n > max_bytes):
            yield _Batch(actions, pos, bad)
            actions, pos, bad, size = [], [], [], 0
        if text:
            actions.append((action.decode(), source.decode("utf-8", "surrogatepass")))
        else:
            actions.append((action, source))
        pos.append(p)
        size += n
    if actions or bad:
        yield _Batch(actions, pos, bad)


def _action_id(action: Any) -> str | None:
    """The ``_id`` of an action line (only called for failed documents)."""
    try:
        return str(orjson.loads(action)["index"]["_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class _Job:
    """One chunk to index: its name, how to load its lines (run on the preparing thread), its dead letter."""

    __slots__ = ("name", "load", "dead_letter_url")

    def __init__(self, name: str, load: Callable[[], Sequence[bytes]], dead_letter_url: str | None) -> None:
        self.name = name
        self.load = load
        self.dead_letter_url = dead_letter_url


# ------------------------------------------------------------------------------------------- indexer

class ChunkIndexer:
    """Indexes chunks with one client; keeps no state between chunks except the prepared client.

    Sending is pipelined: a helper thread loads the chunks (read, sha256, gunzip), splits lines and builds the
    batches, at most :data:`PREP_QUEUE_DEPTH` batches ahead (so memory stays bounded), while sending threads run
    ``streaming_bulk`` on up to ``options.max_workers`` batches at once and the calling thread inspects every
    item, retries and dead-letters, batch by batch in order. So the preparation of batch *k+1* — including the
    first batch of the next chunk — overlaps the server's work on batch *k*; with ``max_workers=1`` the server
    sees one request at a time (as with any single-connection client). All results, retries, sleeps and
    exceptions stay on the calling thread in batch order.
    """

    def __init__(self, client: Any, *, engine: str = "auto", options: BulkOptions | None = None,
                 sleep: Callable[[float], None] = time.sleep, rand: Callable[[], float] = random.random) -> None:
        self.engine = resolve_engine(client, engine)
        self.options = options or BulkOptions()
        self.sleep = sleep
        self.rand = rand
        o = self.options
        if self.engine == "elasticsearch":
            from elasticsearch.helpers import streaming_bulk

            self._client = _with_fast_serializers(
                client.options(request_timeout=o.es_timeout, max_retries=0, retry_on_timeout=False))
            self._bulk_kwargs: dict[str, Any] = {}
            self._text = False
        else:
            from opensearchpy.helpers import streaming_bulk  # type: ignore[no-redef]

            self._client = _without_transport_retries(client)
            self._bulk_kwargs = {"request_timeout": o.es_timeout}
            self._text = True    # opensearch-py's helper joins str lines
        self._streaming_bulk = streaming_bulk
        self._bulk_kwargs["filter_path"] = "errors,items.*.status,items.*.error"
        #: what every chunk this indexer touched added up to (finished, failed or cut short), for a total
        #: that accounts for every document even when a chunk raised
        self.totals: Stats = empty()

    # ---- public

    def index_chunk(self, url: str, expected: ChunkInfo | None = None, *, verify: bool = True) -> Stats:
        """Index one staged chunk (verified against its manifest entry unless ``verify=False``)."""
        return list(self.iter_chunks([(url, expected)], verify=verify))[0][1]

    def iter_chunks(self, chunks: Iterable[tuple[str, ChunkInfo | None]], *,
                    verify: bool = True) -> Iterator[tuple[str, Stats]]:
        """Index staged chunks in order, yielding ``(url, stats)`` as each completes.

        The next chunk is read and prepared while the current one is being sent. A failing chunk raises (with
        its stats on the exception) after the chunks before it were yielded; with ``max_workers=1`` nothing of a
        later chunk has been sent by then (with more, at most ``max_workers - 1`` later batches may have been).
        Closing the generator early stops the preparing and sending threads.
        """
        def job(url: str, info: ChunkInfo | None) -> _Job:
            def load() -> Sequence[bytes]:
                expected = chunk_info(url) if info is None and verify else info
                return read_chunk_lines(url, expected)
            return _Job(url, load, url + DEAD_LETTER_SUFFIX)

        return self._pipeline(job(url, info) for url, info in chunks)

    def index_lines(self, lines: Sequence[bytes], *, name: str = "<lines>",
                    dead_letter_url: str | None = None) -> Stats:
        """Index bulk-ready NDJSON lines; the dead letter goes to ``dead_letter_url`` (if any)."""
        return list(self._pipeline([_Job(name, lambda: lines, dead_letter_url)]))[0][1]

    # ---- pipeline

    def _pipeline(self, jobs: Iterable[_Job]) -> Iterator[tuple[str, Stats]]:
        """Run the preparing thread and the send pipeline; yields each chunk's stats in order.

        Batch *k+1* is handed to a sending thread as soon as it is prepared: that thread runs
        ``streaming_bulk`` on it, whose per-document chunking happens while earlier batches are still on the
        server, and then waits at its :class:`_Gate` — the helper sends only once it has consumed all actions.
        The gate opens once fewer than ``max_workers`` earlier requests are in flight: the oldest ones are
        completed first (results, then their retries, here on the calling thread, in batch order). So at most
        ``max_workers`` requests (a retry counting as one) are out at once, ``max_workers + 1`` sending threads
        exist, and with ``max_workers=1`` batch *k+1* goes out once batch *k* (with its retries) is done.
        """
        limit = self.options.max_workers
        q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=PREP_QUEUE_DEPTH)
        stop = threading.Event()
        worker = threading.Thread(target=self._produce, args=(jobs, q, stop), name=PREP_THREAD_NAME, daemon=True)
        worker.start()
        pool = ThreadPoolExecutor(max_workers=limit + 1, thread_name_prefix=SEND_THREAD_NAME)
        pending: deque[_Send | _Run] = deque()    # in order: sends not yet completed, chunks not yet finished
        in_flight = 0                             # sends in ``pending`` whose gate is open
        run: _Run | None = None
        current: _Run | None = None               # the chunk whose results are being handled
        try:
            while True:
                kind, obj = q.get()
                if kind == "batch":
                    assert run is not None
                    for p, reason in obj.bad:
                        run.dead(p, None, reason, None)
                    if not obj.actions:
                        continue
                    send = _Send(obj, run)
                    send.future = pool.submit(self._request, obj.actions, send.gate)
                    pending.append(send)
                    # the new batch is being chunked meanwhile; complete the oldest sends until it may go, and
                    # finish the chunks they end (with max_workers=1: everything before it)
                    while in_flight >= limit or isinstance(pending[0], _Run):
                        head = pending.popleft()
                        if isinstance(head, _Send):
                            in_flight -= 1
                            current = head.run
                            self._complete(head)
                        else:
                            current = head
                            yield head.name, self._finish(head)
                    send.gate.open()
                    in_flight += 1
                    # Let the sending thread serialise and write its request before this thread (and, through
                    # the queue, the preparing one) start more Python work: they would take the GIL from it.
                    if send.gate.passed.wait(SEND_HEADSTART):
                        time.sleep(SEND_HEADSTART)
                elif kind == "start":
                    run = obj
                    run.t0 = time.monotonic()
                elif kind == "end":
                    assert run is not None
                    pending.append(run)
                else:
                    while pending:
                        head = pending.popleft()
                        if isinstance(head, _Send):
                            current = head.run
                            self._complete(head)
                        else:
                            current = head
                            yield head.name, self._finish(head)
                    if kind == "error":
                        raise obj
                    return
        except IndexingError as e:
            # account for every document before giving up: answers of requests already on the wire are
            # counted (not retried), the rest of the chunk is not_attempted
            self._drain(pending)
            if current is not None:
                current.seconds = time.monotonic() - current.t0
                e.stats = dict(current.stats())
                self._count(current)
            raise
        finally:
            stop.set()
            for item in pending:
                if isinstance(item, _Send):
                    item.gate.cancel()      # a batch waiting at its gate is never sent
            pool.shutdown(wait=True)
            with contextlib.suppress(queue.Empty):
                while True:
                    q.get_nowait()
            worker.join()

    def _produce(self, jobs: Iterable[_Job], q: queue.Queue[tuple[str, Any]], stop: threading.Event) -> None:
        """The preparing thread: everything up to ready ``(action, source)`` pairs, in order, into ``q``."""
        def put(kind: str, obj: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put((kind, obj), timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        o = self.options
        try:
            for job in jobs:
                if stop.is_set():
                    return
                lines = job.load()
                if not put("start", _Run(job.name, lines, job.dead_letter_url)):
                    return
                for batch in _prepare(lines, o.batch_size, o.max_chunk_bytes, self._text):
                    if not put("batch", batch):
                        return
                if not put("end", None):
                    return
            put("done", None)
        except BaseException as e:  # handed to the calling thread, which raises it
            put("error", e)

    # ---- sending

    def _request(self, actions: list[tuple[Any, Any]],
                 gate: _Gate | None = None) -> tuple[list[tuple[bool, Any]], BaseException | None]:
        """One ``_bulk`` request through ``streaming_bulk``: its per-item results and the exception, if any.

        With a ``gate``, the helper chunks all actions first and then waits for the gate before sending.
        """
        results: list[tuple[bool, Any]] = []
        try:
            results.extend(self._streaming_bulk(
                self._client, actions if gate is None else _gated(actions, gate), chunk_size=len(actions) + 1,
                max_chunk_bytes=1 << 62, raise_on_error=False, raise_on_exception=True, max_retries=0,
                yield_ok=True, expand_action_callback=_identity, **self._bulk_kwargs))
        except _Cancelled:
            raise
        except Exception as e:
            return results, e
        return results, None

    def _complete(self, send: _Send) -> None:
        """Handle a pipelined batch's results (waiting for them), then its retries, synchronously."""
        run = send.run
        try:
            results, exc = send.future.result()
            todo = self._handle(send.batch, run, results, exc)
            if todo:
                self._retry(todo, run)
        except (RetriesExhausted, BulkRequestRejected) as e:
            run.seconds = time.monotonic() - run.t0
            self._write_dead_letter(run)
            e.stats = run.stats()
            raise

    def _count(self, run: _Run) -> None:
        """Add a chunk's books to :attr:`totals` (once)."""
        if not run.counted:
            run.counted = True
            self.totals = add(self.totals, run.stats())

    def _drain(self, pending: deque[_Send | _Run]) -> None:
        """After a failure: drop the batches not yet sent, count the answers of those already sent."""
        for item in pending:
            if isinstance(item, _Send):
                item.gate.cancel()
        for item in pending:
            if not isinstance(item, _Send) or item.future is None or not item.gate.passed.is_set():
                continue
            try:
                results, exc = item.future.result()
            except Exception:  # noqa: BLE001 - the request never came back: its documents stay not_attempted
                continue
            if exc is not None:
                continue
            run = item.run
            for ok, info in results:
                if ok:
                    run.indexed += 1
                    run.created += sum(1 for d in info.values() if d.get("status") == 201)
                else:
                    run.failed_retriable += 1
        for item in pending:
            run = item.run if isinstance(item, _Send) else item
            run.seconds = time.monotonic() - run.t0
            self._count(run)

    def _finish(self, run: _Run) -> Stats:
        run.seconds = time.monotonic() - run.t0
        self._write_dead_letter(run)
        self._count(run)
        stats = run.stats()
        allowed = self.options.allowed_failures(run.docs)
        if run.dead_lettered > allowed:
            url = run.dead_letter_url
            where = f"; see {url}" if url and self.options.dead_letter else ""
            raise FailureThresholdExceeded(
                f"chunk {run.name}: {run.dead_lettered} of {run.docs} document(s) were rejected, more than the "
                f"failure threshold allows ({allowed}, failure_threshold={self.options.failure_threshold}){where}",
                run.name, dict(stats), run.samples)
        log.info("indexed %s: %s", run.name, stats)
        return stats

    def _retry(self, todo: tuple[_Batch, str], run: _Run) -> None:
        """Resend what :meth:`_handle` left, with backoff, up to ``es_retry_count`` times."""
        o = self.options
        attempt = 0
        while todo:
            todo_batch, reason = todo
            n = len(todo_batch.actions)
            if attempt >= o.es_retry_count:
                for action, _ in todo_batch.actions:
                    run.failed_retriable += 1
                    run.sample(_action_id(action), None, reason)
                raise RetriesExhausted(
                    f"chunk {run.name}: {n} document(s) still failing after {o.es_retry_count} "
                    f"retr{'y' if o.es_retry_count == 1 else 'ies'} ({reason}); rerun the chunk — ids are "
                    f"deterministic, so indexed documents are overwritten, not duplicated",
                    run.name, None, run.samples)
            attempt += 1
            delay = min(o.max_backoff, o.initial_backoff * 2 ** (attempt - 1)) * (0.5 + 0.5 * self.rand())
            log.warning("chunk %s: retrying %d document(s) in %.2fs (attempt %d of %d): %s",
                        run.name, n, delay, attempt, o.es_retry_count, reason)
            self.sleep(delay)
            run.retries += n
            results, exc = self._request(todo_batch.actions)
            todo = self._handle(todo_batch, run, results, exc)

    def _handle(self, batch: _Batch, run: _Run, results: list[tuple[bool, Any]],
                exc: BaseException | None) -> tuple[_Batch, str] | None:
        """Count, dead-letter or keep for a resend each document; returns what to resend and why, or ``None``."""
        actions = batch.actions
        if exc is not None:
            if results:        # failed half-way through the answer: not a state we can reason about
                raise exc
            if not _retriable_exception(exc):
                status = status_of(exc)
                run.failed_retriable += len(actions)   # sent and refused: failed, not "not attempted"
                raise BulkRequestRejected(
                    f"chunk {run.name}: bulk request of {len(actions)} document(s) refused"
                    f"{f' with HTTP {status}' if status else ''}: {_short(exc)}", run.name, None,
                    run.samples) from exc
            return batch, f"{type(exc).__name__}: {_short(exc)}"
        if len(results) != len(actions):
            raise BulkRequestRejected(f"chunk {run.name}: the server answered {len(results)} item(s) for a bulk "
                                      f"request of {len(actions)}", run.name, None, run.samples)
        retry: list[int] = []
        reason = ""
        failed = 0
        created = 0
        for k, (ok, info) in enumerate(results):
            if ok:
                # 201: a new document; 200: it overwrote one with the same _id (a rerun, or a collision)
                for detail in info.values():
                    if detail.get("status") == 201:
                        created += 1
                continue
            failed += 1
            _, detail = info.popitem()
            status = detail.get("status")
            error = detail.get("error")
            if status in RETRIABLE_STATUSES:
                retry.append(k)
                reason = f"HTTP {status} {_error_type(error)}"
            else:
                run.dead(batch.pos[k], status, _error_type(error), error, _action_id(actions[k][0]))
        run.indexed += len(results) - failed
        run.created += created
        return (batch.subset(retry), reason) if retry else None

    def _write_dead_letter(self, run: _Run) -> None:
        url = run.dead_letter_url
        if url is None or not self.options.dead_letter:
            return
        fs, path = filesystem(url)
        if run.dead_lines:
            run.dead_lines.sort(key=_first)     # line order, whatever the order of discovery
            with fs.open(path, "wb") as f:
                f.write(b"".join(entry for _, entry in run.dead_lines))
        elif fs.exists(path):
            fs.rm(path)     # a clean rerun must not leave the previous run's dead letter behind


def _first(pair: tuple[int, bytes]) -> int:
    return pair[0]


class _Cancelled(Exception):
    """Raised inside ``streaming_bulk``'s action iterator so that a gated batch is never sent."""


class _Gate:
    """Lets a pipelined batch be sent (``open``) or drops it (``cancel``); see :meth:`ChunkIndexer._pipeline`."""

    __slots__ = ("_event", "_cancelled", "passed")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._cancelled = False
        self.passed = threading.Event()

    def open(self) -> None:
        self._event.set()

    def cancel(self) -> None:
        self._cancelled = True
        self._event.set()

    def wait(self) -> None:
        self._event.wait()
        if self._cancelled:
            raise _Cancelled
        self.passed.set()


def _gated(actions: list[tuple[Any, Any]], gate: _Gate) -> Iterator[tuple[Any, Any]]:
    """The actions, then a wait at ``gate`` before the iterator ends — i.e. before the helper sends them."""
    yield from actions
    gate.wait()


class _Send:
    """A batch handed to a sending thread: the future of its :meth:`ChunkIndexer._request` and its gate."""

    __slots__ = ("batch", "run", "gate", "future")

    def __init__(self, batch: _Batch, run: _Run) -> None:
        self.batch = batch
        self.run = run
        self.gate = _Gate()
        self.future: Future[tuple[list[tuple[bool, Any]], BaseException | None]] | None = None


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
    """An OpenSearch client sharing ``client``'s connections whose transport does not retry (ours does) and
    parses JSON answers with ``orjson`` (a bulk answer has an item per document)."""
    transport = getattr(client, "transport", None)
    if transport is None:
        return client
    t = copy.copy(transport)
    t.max_retries = 0
    deserializer = getattr(transport, "deserializer", None)
    if isinstance(getattr(deserializer, "serializers", None), dict):
        d = copy.copy(deserializer)
        d.serializers = {mt: _OrjsonLoads(ser) if mt.endswith("json") else ser
                         for mt, ser in deserializer.serializers.items()}
        if getattr(d, "default", None) is not None and str(getattr(d.default, "mimetype", "")).endswith("json"):
            d.default = _OrjsonLoads(d.default)
        t.deserializer = d
    c = copy.copy(client)
    c.transport = t
    return c


def _with_fast_serializers(client: Any) -> Any:
    """``client`` (an ``Elasticsearch.options()`` copy, used for our bulk requests only) with a transport copy
    whose NDJSON body is one ``b"\\n".join`` and whose JSON answers are parsed with ``orjson``.

    Both run on the sending thread between two requests, i.e. while the server waits. The join is exact for
    our lines (bytes, none ending in a newline); anything else goes to the library's own serializer.
    """
    transport = getattr(client, "_transport", None)
    collection = getattr(transport, "serializers", None)
    if not isinstance(getattr(collection, "serializers", None), dict):
        return client

    def wrap(mt: str, ser: Any) -> Any:
        if "ndjson" in mt:
            return _JoinedNdjson(ser)
        return _OrjsonLoads(ser) if mt.endswith("json") else ser

    sc = copy.copy(collection)
    sc.serializers = {mt: wrap(mt, ser) for mt, ser in collection.serializers.items()}
    default = collection.default_serializer
    sc.default_serializer = next((sc.serializers[mt] for mt, ser in collection.serializers.items() if ser is default),
                                 default)
    t = copy.copy(transport)
    t.serializers = sc
    client._transport = t
    return client


class _OrjsonLoads:
    """A serializer whose ``loads`` is ``orjson`` (falling back to the wrapped one); everything else delegates."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def dumps(self, data: Any) -> Any:
        return self._inner.dumps(data)

    def loads(self, data: Any) -> Any:
        try:
            return orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError):
            return self._inner.loads(data)


class _JoinedNdjson(_OrjsonLoads):
    """An NDJSON serializer whose ``dumps`` of a list of newline-free bytes lines is one C-level join."""

    def dumps(self, data: Any) -> Any:
        if isinstance(data, list):
            try:
                return b"\n".join(data) + b"\n"
            except TypeError:
                pass
        return self._inner.dumps(data)

    def loads(self, data: Any) -> Any:
        return self._inner.loads(data)


class _Run:
    """Counters and the dead letter of one chunk (touched by the calling thread only, once handed over)."""

    __slots__ = ("name", "lines", "dead_letter_url", "docs", "bytes", "indexed", "created", "dead_lettered",
                 "failed_retriable", "retries", "seconds", "t0", "dead_lines", "samples", "counted")

    def __init__(self, name: str, lines: Sequence[bytes], dead_letter_url: str | None = None) -> None:
        self.name = name
        self.lines = lines
        self.dead_letter_url = dead_letter_url
        self.docs = len(lines)
        nbytes = getattr(lines, "nbytes", None)     # a ChunkLines knows it without a pass over its lines
        self.bytes = nbytes if nbytes is not None else sum(map(len, lines))
        self.indexed = 0
        self.created = 0
        self.counted = False      # added to ChunkIndexer.totals
        self.dead_lettered = 0
        self.failed_retriable = 0
        self.retries = 0
        self.seconds = 0.0
        self.t0 = time.monotonic()
        self.dead_lines: list[tuple[int, bytes]] = []
        self.samples: list[dict[str, Any]] = []

    def sample(self, doc_id: str | None, status: int | None, reason: str) -> None:
        if len(self.samples) < _MAX_ERROR_SAMPLES:
            self.samples.append({"_id": doc_id, "status": status, "reason": reason})

    def dead(self, p: int, status: int | None, reason: str, error: Any, doc_id: str | None = None) -> None:
        """Dead-letter line ``p`` of the chunk."""
        self.dead_lettered += 1
        self.sample(doc_id, status, reason)
        head = orjson.dumps({"reason": reason, "status": status, "error": error, "_id": doc_id})
        body = self.lines[p].rstrip(b"\r\n")
        try:
            orjson.loads(body)
            entry = head[:-1] + b',"doc":' + body + b"}\n"
        except orjson.JSONDecodeError:
            entry = head[:-1] + b',"raw":' + orjson.dumps(body.decode("utf-8", "replace")) + b"}\n"
        self.dead_lines.append((p, entry))

    def stats(self) -> Stats:
        """The chunk's books: ``docs == indexed + failed + dead_lettered + not_attempted`` (see
        :class:`~rds_slowlog.stats.Stats`); whatever was not answered for is ``not_attempted``."""
        done = self.indexed + self.failed_retriable + self.dead_lettered
        return Stats(docs=self.docs, indexed=self.indexed, created=self.created, updated=self.indexed - self.created,
                     failed=self.failed_retriable, dead_lettered=self.dead_lettered,
                     not_attempted=max(0, self.docs - done), retries=self.retries,
                     seconds=round(self.seconds, 3), bytes=self.bytes)


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
    return list(indexer.iter_chunks([(join(base, info.name), info) for info in read_manifest(base).chunks]))


__all__ = ["BulkOptions", "ChunkIndexer", "index_chunk", "index_staging", "split_line", "parse_threshold",
           "RETRIABLE_STATUSES", "DEAD_LETTER_SUFFIX"]
