"""rds_slowlog.indexing: unit tests of the pure parts, then the indexer against real Elasticsearch and OpenSearch."""
from __future__ import annotations

import gzip
import pickle
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from search_fixtures import (SAMPLE_LOGS, count, delete_indices, engine_url, es_url, make_client,  # noqa: F401
                             os_url, prefix, stage_logs)

from rds_slowlog.digest import Digest
from rds_slowlog.exceptions import (BulkRequestRejected, FailureThresholdExceeded, IndexingError,
                                    RetriesExhausted)
from rds_slowlog.indexing import (DEAD_LETTER_SUFFIX, PREP_THREAD_NAME, BulkOptions, ChunkIndexer, _prepare,
                                  index_chunk, index_staging, parse_threshold, split_line)
from rds_slowlog.pipeline import Classifiers, classified, read_path
from rds_slowlog.search import raw_request
from rds_slowlog.stats import unaccounted
from rds_slowlog.staging import ChunkWriter, StagingError, chunk_urls
from rds_slowlog.testing.fault_proxy import FaultProxy

SAMPLES = sorted(SAMPLE_LOGS.glob("*.log"))


# ------------------------------------------------------------------------------------------- pure parts

def test_split_line_fast_path_and_fallback() -> None:
    line = b'{"a":{"_id":"nested"},"q":"x\\",\\"_id\\":\\"evil","_id":"abc123","_index":"p-mysql-2024.01.01"}\n'
    index, doc_id, source = split_line(line)
    assert (index, doc_id) == (b"p-mysql-2024.01.01", b"abc123")
    assert orjson.loads(source) == {"a": {"_id": "nested"}, "q": 'x","_id":"evil'}
    # other key order: the JSON fallback
    index, doc_id, source = split_line(b'{"_index":"i","x":1,"_id":"d"}')
    assert (index, doc_id, orjson.loads(source)) == (b"i", b"d", {"x": 1})
    for bad in (b"not json\n", b"[1,2]\n", b'{"x":1}\n', b'{"_id":"","_index":"i"}\n'):
        with pytest.raises(ValueError):
            split_line(bad)


def test_threshold_parsing_and_allowed_failures() -> None:
    assert parse_threshold("5%") == pytest.approx(0.05)
    assert parse_threshold("0.02") == pytest.approx(0.02)
    assert parse_threshold("10") == 10
    with pytest.raises(ValueError):
        parse_threshold("-1")
    assert BulkOptions(failure_threshold=0.01).allowed_failures(1000) == 10
    assert BulkOptions(failure_threshold=0.01).allowed_failures(99) == 0
    assert BulkOptions(failure_threshold=3).allowed_failures(10) == 3
    assert BulkOptions(failure_threshold=0).allowed_failures(10**6) == 0
    with pytest.raises(ValueError):
        BulkOptions(batch_size=0)
    assert BulkOptions().max_workers == 2
    with pytest.raises(ValueError):
        BulkOptions(max_workers=0)


def test_exceptions_pickle_with_their_fields() -> None:
    e = RetriesExhausted("chunk c: 3 document(s) still failing", "c", {"docs": 5, "indexed": 2},
                         [{"_id": "x", "status": 429, "reason": "r"}])
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is RetriesExhausted and isinstance(back, IndexingError)
    assert (str(back), back.chunk, back.stats, back.errors) == (str(e), "c", e.stats, e.errors)


def test_batches_are_bounded_by_docs_and_bytes() -> None:
    lines = [orjson.dumps({"q": "x" * n, "_id": f"id{i}", "_index": "i"}) + b"\n"
             for i, n in enumerate([1, 1, 1, 1, 60, 60, 1, 200, 1])]
    batches = list(_prepare(lines, 3, 160, False))
    # action + source + 2 newlines: 47 bytes for n=1, 106 for n=60, 246 for n=200
    assert [[orjson.loads(a)["index"]["_id"] for a, _ in b.actions] for b in batches] == [
        ["id0", "id1", "id2"], ["id3", "id4"], ["id5", "id6"], ["id7"], ["id8"]]
    assert [b.pos for b in batches] == [[0, 1, 2], [3, 4], [5, 6], [7], [8]]
    a, src = batches[0].actions[0]
    assert len(a) + len(src) + 2 == 47 and orjson.loads(src) == {"q": "x"}
    assert sum(len(a) + len(s) + 2 for a, s in batches[1].actions) == 47 + 106


def test_prepare_keeps_bad_lines_and_positions_and_escapes_slow_path_ids() -> None:
    lines = [b'{"x":1,"_id":"a","_index":"i"}\n', b"garbage\n",
             b'{"_index":"i","_id":"q\\"uote","x":2}\n',        # slow path: an id that needs escaping
             b'{"x":"\xc3\xa9","_id":"c","_index":"i"}\n']
    (b,) = _prepare(lines, 10, 1 << 20, False)
    assert b.pos == [0, 2, 3] and [p for p, _ in b.bad] == [1] and "not a bulk-ready" in b.bad[0][1]
    assert orjson.loads(b.actions[1][0]) == {"index": {"_index": "i", "_id": 'q"uote'}}
    (t,) = _prepare(lines, 10, 1 << 20, True)      # text mode (opensearch-py): same documents as str
    assert all(isinstance(a, str) and isinstance(s, str) for a, s in t.actions)
    assert t.actions[2][1] == '{"x":"é"}' and [p for p, _ in t.bad] == [1]
    # a batch made only of bad lines still carries them (so they are dead-lettered, in order)
    assert [(x.pos, [p for p, _ in x.bad]) for x in _prepare([b"a\n", b"b\n"], 10, 100, False)] == [([], [0, 1])]


# ------------------------------------------------------------------------------------------- helpers

def _stage(tmp_path: Path, prefix: str, paths: list[Path] = SAMPLES, **kw: Any) -> tuple[str, int]:
    base = str(tmp_path / "stage")
    return base, stage_logs(paths, base, prefix, **kw)


@pytest.fixture
def target(engine_url: tuple[str, str], prefix: str):  # noqa: F811
    engine, url = engine_url
    client = make_client(engine, url)
    from rds_slowlog.templates import install_templates

    install_templates(client, prefix=prefix, engine=engine)
    yield engine, url, client, prefix
    delete_indices(client, engine, prefix)


# ------------------------------------------------------------------------------------------- real servers

def test_sample_logs_count_equals_entries_and_rerun_is_idempotent(target, tmp_path: Path) -> None:
    engine, _, client, prefix = target
    base, entries = _stage(tmp_path, prefix, chunk_size=150)
    assert entries > 300
    results = index_staging(client, base, engine=engine, options=BulkOptions(batch_size=64))
    assert len(results) == 3
    assert sum(s["indexed"] for _, s in results) == entries
    assert all(s["failed"] == 0 and s["dead_lettered"] == 0 and s["bytes"] > 0 for _, s in results)
    assert count(client, engine, prefix) == entries
    first = chunk_urls(base)[0]
    again = index_chunk(client, first, engine=engine)
    assert again["indexed"] == again["docs"] == 150
    assert count(client, engine, prefix) == entries       # same ids: overwritten, not duplicated
    # the overflowed MariaDB counter (Bytes_sent: 18446744073709551508) is indexed, kept as a flag
    status, body = raw_request(client, engine, "POST", f"/{prefix}-*/_search",
                               {"query": {"term": {"slowlog.flags": "counter_overflow"}}, "size": 1})
    assert status == 200 and body["hits"]["hits"], body
    assert body["hits"]["hits"][0]["_source"]["slowlog"]["overflow"] == [
        "mysql.slowlog.bytes_sent=18446744073709551508"]


def test_percona_corpus_count(target, tmp_path: Path, percona_corpus: Path) -> None:
    engine, _, client, prefix = target
    paths = sorted(p for p in percona_corpus.iterdir() if p.is_file())
    base, entries = _stage(tmp_path, prefix, paths, per_file_instance=True)
    results = index_staging(client, base, engine=engine)
    assert sum(s["indexed"] for _, s in results) == entries
    assert count(client, engine, prefix) == entries


def test_mapping_conflict_goes_to_dead_letter_and_the_rest_is_indexed(target, tmp_path: Path) -> None:
    engine, _, client, prefix = target
    base = str(tmp_path / "stage")
    writer = ChunkWriter(base)
    good = [{"event": {"duration": i}, "rds": {"instance": "x"}, "_id": f"good{i}", "_index": f"{prefix}-mysql-x"}
            for i in range(20)]
    bad = {"event": "not an object", "_id": "bad", "_index": f"{prefix}-mysql-x"}
    for doc in good[:10] + [bad] + good[10:]:
        writer.add(orjson.dumps(doc) + b"\n")
    writer.add(b"this line is not a document\n")
    writer.close()
    url = chunk_urls(base)[0]
    stats = index_chunk(client, url, engine=engine, options=BulkOptions(failure_threshold=2))
    assert (stats["docs"], stats["indexed"], stats["dead_lettered"], stats["failed"]) == (22, 20, 2, 0)
    assert stats["created"] == 20 and stats["updated"] == 0 and unaccounted(stats) == 0
    assert count(client, engine, prefix) == 20
    dead = [orjson.loads(x) for x in Path(url + DEAD_LETTER_SUFFIX).read_bytes().splitlines()]
    assert [d["_id"] for d in dead] == ["bad", None]              # chunk line order
    assert dead[0]["status"] == 400 and "parsing" in dead[0]["reason"] and dead[0]["doc"]["_id"] == "bad"
    assert dead[1]["raw"] == "this line is not a document" and "not a bulk-ready document" in dead[1]["reason"]
    # over the threshold: a clear, picklable failure, and the dead letter is still written
    Path(url + DEAD_LETTER_SUFFIX).unlink()
    with pytest.raises(FailureThresholdExceeded) as ei:
        index_chunk(client, url, engine=engine, options=BulkOptions(failure_threshold=0.05))
    assert "2 of 22 document(s) were rejected" in str(ei.value) and ei.value.stats["indexed"] == 20
    assert pickle.loads(pickle.dumps(ei.value)).stats == ei.value.stats
    assert Path(url + DEAD_LETTER_SUFFIX).exists()


def test_tampered_chunk_is_refused(target, tmp_path: Path) -> None:
    engine, _, client, prefix = target
    base, _ = _stage(tmp_path, prefix, SAMPLES[:1])
    url = chunk_urls(base)[0]
    Path(url).write_bytes(gzip.compress(b'{"x":1,"_id":"a","_index":"i"}\n'))
    with pytest.raises(StagingError):
        index_chunk(client, url, engine=engine)
    assert count(client, engine, prefix) == 0


def _pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("rds-slowlog-bulk", PREP_THREAD_NAME))]


def test_pipelined_chunks_yield_in_order_and_a_bad_later_chunk_sends_nothing(target, tmp_path: Path) -> None:
    engine, _, client, prefix = target
    base, entries = _stage(tmp_path, prefix, chunk_size=150)
    urls = chunk_urls(base)
    assert len(urls) == 3
    Path(urls[2]).write_bytes(gzip.compress(b'{"x":1,"_id":"a","_index":"i"}\n'))   # read ahead, refused
    indexer = ChunkIndexer(client, engine=engine, options=BulkOptions(batch_size=40))
    seen: list[str] = []
    with pytest.raises(StagingError):
        for url, stats in indexer.iter_chunks((u, None) for u in urls):
            seen.append(url)
            assert stats["indexed"] == stats["docs"] == 150
    assert seen == urls[:2]
    assert count(client, engine, prefix) == 300           # nothing of the tampered chunk went out
    assert _pipeline_threads() == []                        # preparing and sending threads are gone
    gen = indexer.iter_chunks([(urls[0], None), (urls[1], None)])
    assert next(gen)[0] == urls[0]
    gen.close()                                             # abandoned early: the gated batch is dropped
    assert _pipeline_threads() == []


def test_aggregation_equals_cli_digest(target, tmp_path: Path) -> None:
    engine, _, client, prefix = target
    base, entries = _stage(tmp_path, prefix)
    index_staging(client, base, engine=engine)
    assert count(client, engine, prefix) == entries
    digest = Digest()
    classifiers = Classifiers()
    for path in SAMPLES:
        run, stream = read_path(path)
        with stream:
            digest.add_all(classified(run, classifiers))
    ranked = digest.ranked()
    status, body = raw_request(client, engine, "POST", f"/{prefix}-*/_search", {
        "size": 0, "aggs": {"q": {
            "terms": {"field": "slowlog.query_id", "size": 10000,
                      "order": [{"d": "desc"}, {"_count": "desc"}, {"_key": "asc"}]},
            "aggs": {"d": {"sum": {"field": "event.duration"}}}}}})
    assert status == 200, body
    buckets = body["aggregations"]["q"]["buckets"]
    assert len(buckets) == len(ranked) > 20
    assert [b["key"] for b in buckets[:20]] == [c.qc.query_id for c in ranked[:20]]
    by_id = {c.qc.query_id: c for c in ranked}      # beyond the top 20, equal totals may tie in any order
    for b in buckets:
        c = by_id[b["key"]]
        assert b["doc_count"] == c.count
        assert b["d"]["value"] / 1e9 == pytest.approx(c.query_time.total, rel=1e-9, abs=1e-6 * c.count)


# ------------------------------------------------------------------------------------------- outages

# FaultProxy (rds_slowlog.testing.fault_proxy) sits in front of the real server: outages, 429 items, delays.


@pytest.fixture
def proxied(target):
    engine, url, client, prefix = target
    proxy = FaultProxy(url)
    try:
        yield engine, make_client(engine, proxy.url(url), timeout=10), client, prefix, proxy
    finally:
        proxy.close()


def test_only_retriable_items_are_resent(proxied, tmp_path: Path) -> None:
    engine, pclient, client, prefix, proxy = proxied
    base, entries = _stage(tmp_path, prefix, SAMPLES[:1])
    proxy.item_429 = 3
    sleeps: list[float] = []
    opts = BulkOptions(batch_size=50, initial_backoff=2.0, max_workers=1)     # one in flight: exact request order
    stats = index_staging(pclient, base, engine=engine, options=opts, sleep=sleeps.append, rand=lambda: 0.5)[0][1]
    assert stats["indexed"] == entries and stats["retries"] == 3 and stats["failed"] == 0
    assert proxy.bulk_ids[1] == proxy.bulk_ids[0][:3]          # the resend holds exactly the 429 items
    assert sleeps == [2.0 * 0.75]                                # backoff × jitter factor (0.5 + 0.5·rand)
    assert count(client, engine, prefix) == entries


def test_outage_mid_run_is_retried_then_completes(proxied, tmp_path: Path) -> None:
    engine, pclient, client, prefix, proxy = proxied
    base, entries = _stage(tmp_path, prefix)
    proxy.down_after_bulks = 2
    sleeps: list[float] = []

    def sleep(s: float) -> None:           # the server comes back during the second backoff
        sleeps.append(s)
        if len(sleeps) == 2:
            proxy.down_after_bulks = None
            proxy.down = False

    opts = BulkOptions(batch_size=100, es_retry_count=4, initial_backoff=1.0, max_backoff=1.5, max_workers=1)
    results = index_staging(pclient, base, engine=engine, options=opts, sleep=sleep, rand=lambda: 0.999)
    stats = results[0][1]
    assert stats["indexed"] == entries and stats["failed"] == 0
    assert stats["retries"] == 200                               # one batch of 100, resent twice
    assert sleeps == [pytest.approx(1.0 * 0.9995), pytest.approx(1.5 * 0.9995)]    # capped by max_backoff
    assert count(client, engine, prefix) == entries


def test_server_stays_down_fails_clearly_and_rerun_completes_exactly(proxied, tmp_path: Path) -> None:
    engine, pclient, client, prefix, proxy = proxied
    base, entries = _stage(tmp_path, prefix)
    proxy.down_after_bulks = 1
    sleeps: list[float] = []
    with pytest.raises(RetriesExhausted) as ei:
        index_staging(pclient, base, engine=engine, options=BulkOptions(batch_size=100, es_retry_count=2,
                                                                                    max_workers=1),
                      sleep=sleeps.append)
    err = ei.value
    assert len(sleeps) == 2 and "still failing after 2 retries" in str(err) and "rerun the chunk" in str(err)
    assert err.stats["indexed"] == 100 and err.stats["failed"] == 100
    # every document accounted for: the batches after the failing one were never sent
    assert err.stats["not_attempted"] == entries - 200 and unaccounted(err.stats) == 0
    assert pickle.loads(pickle.dumps(err)).stats == err.stats
    assert count(client, engine, prefix) == 100
    assert _pipeline_threads() == []
    results = index_staging(client, base, engine=engine)           # the rerun, server healthy
    assert sum(s["indexed"] for _, s in results) == entries
    assert count(client, engine, prefix) == entries


def test_non_retriable_request_error_is_raised_at_once(proxied, tmp_path: Path) -> None:
    engine, pclient, client, prefix, proxy = proxied
    base, _ = _stage(tmp_path, prefix, SAMPLES[:1])
    proxy.force_status = 401               # e.g. credentials revoked: a resend cannot fix it
    sleeps: list[float] = []
    with pytest.raises(BulkRequestRejected) as ei:
        index_staging(pclient, base, engine=engine, sleep=sleeps.append)
    assert sleeps == [] and "refused with HTTP 401" in str(ei.value)
    assert count(client, engine, prefix) == 0


# ------------------------------------------------------------------------------------------- several in flight

def _ids(lines: list[bytes]) -> list[str]:
    return [orjson.loads(x)["_id"] for x in lines]


def test_parallel_requests_are_bounded_and_count_is_exact_and_rerun_idempotent(proxied, tmp_path: Path) -> None:
    engine, pclient, client, prefix, proxy = proxied
    base, entries = _stage(tmp_path, prefix, chunk_size=150)
    proxy.bulk_delay = 0.05                 # each request lasts long enough for the next ones to overlap it
    for workers in (2, 3, 1):
        proxy.peak = 0
        proxy.bulk_ids.clear()
        opts = BulkOptions(batch_size=40, max_workers=workers)
        results = index_staging(pclient, base, engine=engine, options=opts)
        assert [s["docs"] for _, s in results] == [150, 150, entries - 300]
        assert all(s["indexed"] == s["docs"] and s["failed"] == s["retries"] == 0 for _, s in results)
        assert proxy.peak == workers                      # that many requests in flight, never more
        sent = [i for ids in proxy.bulk_ids for i in ids]
        assert len(sent) == len(set(sent)) == entries     # every document exactly once
        assert count(client, engine, prefix) == entries   # reruns overwrite: same count
        assert _pipeline_threads() == []


def test_parallel_429_items_alone_are_resent(proxied, tmp_path: Path) -> None:
    engine, pclient, client, prefix, proxy = proxied
    base, entries = _stage(tmp_path, prefix, SAMPLES[:1])
    proxy.bulk_delay = 0.02
    proxy.item_429 = 3                     # the first answer back (whichever of the requests in flight)
    sleeps: list[float] = []
    opts = BulkOptions(batch_size=20, initial_backoff=2.0, max_workers=2)
    stats = index_staging(pclient, base, engine=engine, options=opts, sleep=sleeps.append, rand=lambda: 0.5)[0][1]
    assert stats["indexed"] == entries and stats["retries"] == 3 and stats["failed"] == 0
    assert sleeps == [2.0 * 0.75]
    assert proxy.peak == 2
    resends = [k for k, ids in enumerate(proxy.bulk_ids) if len(ids) == 3]
    assert len(resends) == 1
    k = resends[0]
    assert any(ids[:3] == proxy.bulk_ids[k] for ids in proxy.bulk_ids[:k])   # exactly the 429 items of one batch
    sent = [i for ids in proxy.bulk_ids for i in ids]
    assert len(sent) == entries + 3 and len(set(sent)) == entries
    assert count(client, engine, prefix) == entries


def test_parallel_outage_raises_retries_exhausted_and_rerun_is_exact(proxied, tmp_path: Path) -> None:
    engine, pclient, client, prefix, proxy = proxied
    base, entries = _stage(tmp_path, prefix)
    proxy.down_after_bulks = 1             # exactly one request gets through, then the server is gone
    sleeps: list[float] = []
    with pytest.raises(RetriesExhausted) as ei:
        index_staging(pclient, base, engine=engine, options=BulkOptions(batch_size=100, es_retry_count=2,
                                                                        max_workers=2), sleep=sleeps.append)
    err = ei.value
    assert len(sleeps) == 2 and "100 document(s) still failing after 2 retries" in str(err)
    # results are handled in batch order, and the answer of the request that was already on the wire when the
    # other one failed for good is still counted: the books match the index whichever got through
    assert err.stats["failed"] == 100 and err.stats["indexed"] == 100 and err.stats["docs"] == entries
    assert err.stats["not_attempted"] == entries - 200 and unaccounted(err.stats) == 0
    assert len(proxy.bulk_ids) == 1 and count(client, engine, prefix) == 100
    assert _pipeline_threads() == []                 # the other request in flight was awaited, threads are gone
    results = index_staging(client, base, engine=engine, options=BulkOptions(batch_size=100, max_workers=2))
    assert sum(s["indexed"] for _, s in results) == entries
    assert count(client, engine, prefix) == entries


def test_parallel_dead_letter_in_line_order_and_threshold_over_the_chunk(proxied, tmp_path: Path) -> None:
    engine, pclient, client, prefix, proxy = proxied
    base = str(tmp_path / "stage")
    writer = ChunkWriter(base)
    lines = []
    for i in range(40):
        if i in (3, 18, 37):
            doc: dict[str, Any] = {"event": "not an object", "_id": f"bad{i}", "_index": f"{prefix}-mysql-x"}
        else:
            doc = {"event": {"duration": i}, "_id": f"good{i}", "_index": f"{prefix}-mysql-x"}
        lines.append(orjson.dumps(doc) + b"\n")
    lines.insert(25, b"not a document\n")
    for line in lines:
        writer.add(line)
    writer.close()
    url = chunk_urls(base)[0]
    proxy.bulk_delay = 0.02
    opts = BulkOptions(batch_size=4, max_workers=3, failure_threshold=4)
    stats = index_chunk(pclient, url, engine=engine, options=opts)
    assert (stats["docs"], stats["indexed"], stats["dead_lettered"], stats["failed"]) == (41, 37, 4, 0)
    assert unaccounted(stats) == 0
    assert proxy.peak == 3
    dead = [orjson.loads(x) for x in Path(url + DEAD_LETTER_SUFFIX).read_bytes().splitlines()]
    assert [d["_id"] for d in dead] == ["bad3", "bad18", None, "bad37"]      # chunk line order
    assert dead[2]["raw"] == "not a document" and all(d["status"] == 400 for d in dead if d["_id"])
    assert count(client, engine, prefix) == 37
    # the threshold is judged over the whole chunk, after every batch was answered
    with pytest.raises(FailureThresholdExceeded) as ei:
        index_chunk(pclient, url, engine=engine, options=BulkOptions(batch_size=4, max_workers=3,
                                                                     failure_threshold=3))
    assert "4 of 41 document(s) were rejected" in str(ei.value)
    assert ei.value.stats["indexed"] == 37 and ei.value.stats["dead_lettered"] == 4
    assert [d["_id"] for d in map(orjson.loads, Path(url + DEAD_LETTER_SUFFIX).read_bytes().splitlines())] == [
        "bad3", "bad18", None, "bad37"]
    assert _pipeline_threads() == []


def test_parallel_early_close_and_bad_later_chunk_leave_no_threads(target, tmp_path: Path) -> None:
    engine, _, client, prefix = target
    base, entries = _stage(tmp_path, prefix, chunk_size=150)
    urls = chunk_urls(base)
    indexer = ChunkIndexer(client, engine=engine, options=BulkOptions(batch_size=20, max_workers=3))
    gen = indexer.iter_chunks((u, None) for u in urls)
    url0, stats0 = next(gen)
    assert url0 == urls[0] and stats0["indexed"] == stats0["docs"] == 150
    gen.close()                            # abandoned with requests in flight: awaited, the gated one dropped
    assert _pipeline_threads() == []
    assert 150 <= count(client, engine, prefix) < entries
    results = list(indexer.iter_chunks((u, None) for u in urls))
    assert [u for u, _ in results] == urls and count(client, engine, prefix) == entries
    assert _pipeline_threads() == []


def test_odd_values_never_cost_the_document(target, tmp_path: Path) -> None:
    """A non-numeric counter, a wrapped one and a zone-less entry go into the real index, flagged."""
    import io

    from rds_slowlog.stage import StageInput, stage_window

    engine, _, client, prefix = target
    log = (b"# Time: 2026-11-27T14:00:00.000001Z\n# User@Host: app[app] @  [10.0.0.1]  Id: 7\n"
           b"# Query_time: 0.5  Lock_time: 0.0 Rows_sent: x1  Rows_examined: 2  Bytes_sent: 18446744073709551508\n"
           b"# Full_scan: maybe  Filesort: No\nSET timestamp=1795788000;\nSELECT * FROM t WHERE id = 1;\n")
    base = str(tmp_path / "stage")
    result = stage_window([StageInput("odd.log", io.BufferedReader(io.BytesIO(log)), "mysql")], base,
                          instance="db-1", index_prefix=prefix)
    stats = index_chunk(client, chunk_urls(base)[0], engine=engine, options=BulkOptions(failure_threshold=0))
    assert result.stats["docs"] == 1 and stats["indexed"] == 1 and stats["dead_lettered"] == 0
    assert count(client, engine, prefix) == 1
