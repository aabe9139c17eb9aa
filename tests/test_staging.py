from __future__ import annotations

import gzip
import pickle

import orjson
import pytest

from rds_slowlog.staging import ChunkMismatch, ChunkWriter, StagingError, chunk_info, chunk_urls, read_chunk, read_manifest


def _line(i: int) -> bytes:
    return orjson.dumps({"_id": str(i), "_index": "x", "n": i}, option=orjson.OPT_APPEND_NEWLINE)


def test_chunks_close_by_count_and_bytes_and_manifest_commits(tmp_path) -> None:
    base = str(tmp_path / "stage")
    w = ChunkWriter(base, chunk_size=4)
    for i in range(10):
        w.add(_line(i))
    assert not (tmp_path / "stage" / "manifest.json").exists()   # nothing committed before close
    m = w.close(source="f.log")
    assert [c.docs for c in m.chunks] == [4, 4, 2] and m.docs == 10 and m.meta == {"source": "f.log"}
    urls = chunk_urls(base)
    lines = [line for u in urls for line in read_chunk(u, chunk_info(u))]
    assert [orjson.loads(x)["n"] for x in lines] == list(range(10))

    w = ChunkWriter(base, chunk_size=1000, max_chunk_mb=100 / (1024 * 1024))  # 100 bytes
    for i in range(10):
        w.add(_line(i))
    m = w.close()
    assert len(m.chunks) > 1 and all(c.bytes <= 100 + len(_line(9)) for c in m.chunks)
    assert len(chunk_urls(base)) == len(m.chunks)             # the earlier run's chunks are gone


def test_tampered_or_uncommitted_chunks_are_refused(tmp_path) -> None:
    base = str(tmp_path / "s")
    with pytest.raises(StagingError, match="no manifest"):
        read_manifest(base)
    w = ChunkWriter(base, chunk_size=3)
    for i in range(3):
        w.add(_line(i))
    w.close()
    url = chunk_urls(base)[0]
    path = tmp_path / "s" / "chunk-00000.ndjson.gz"
    path.write_bytes(gzip.compress(_line(0) + _line(1)))
    with pytest.raises(ChunkMismatch, match="sha256") as err:
        list(read_chunk(url, chunk_info(url)))
    assert err.value.url == url and isinstance(err.value, StagingError)       # repairable: the index task
    assert pickle.loads(pickle.dumps(err.value)).url == url                    # re-stages it by that url
    path.unlink()
    with pytest.raises(ChunkMismatch, match="listed in its manifest but missing"):
        list(read_chunk(url, chunk_info(url)))
    with pytest.raises(StagingError, match="not listed"):
        chunk_info(str(tmp_path / "s" / "chunk-00099.ndjson.gz"))


def test_memory_threshold_flushes_early(tmp_path) -> None:
    w = ChunkWriter(str(tmp_path / "m"), chunk_size=10_000, memory_threshold_mb=1)  # any process is above 1 MB
    for i in range(600):
        w.add(_line(i))
    m = w.close()
    assert len(m.chunks) >= 2 and m.docs == 600


def test_pending_lines_are_copied_not_held(tmp_path) -> None:
    """orjson's output keeps the capacity it reserved (~8x its length), so a writer holding the line objects
    until a run is compressed held ~32 KiB per 4 KiB document. Lines are copied into one buffer instead: under
    1 MiB of pending text costs about that much."""
    import tracemalloc

    w = ChunkWriter(str(tmp_path / "p"), chunk_size=100_000, max_chunk_mb=1000)
    doc = {"_id": "x", "_index": "i", "query": "SELECT " + "x" * 4000}
    lines = 240          # 240 x ~4 KiB: below the 1 MiB run fed to the compressor, so all of it is pending
    probe = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        reserved = tracemalloc.get_traced_memory()[0]
        one = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
        reserved = tracemalloc.get_traced_memory()[0] - reserved
        del one
        for _ in range(lines):
            w.add(orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    text = lines * len(probe)
    assert text < 1 << 20
    # the premise: one line's allocation is several times its length (if orjson trims it, the test still holds)
    assert reserved >= len(probe)
    assert held < 2 * text, (held, text, reserved)
    m = w.close()
    assert m.docs == lines and [orjson.loads(x) for x in read_chunk(chunk_urls(str(tmp_path / "p"))[0])] == \
        [doc] * lines


def test_chunk_lines_keep_the_compressed_bytes_not_the_text(tmp_path) -> None:
    """What an index task holds per chunk (the one being sent and the next one): the compressed bytes, ~1/8
    of the text for documents; iterating decompresses again, ``[p]`` (a dead letter's line) works, and the
    manifest's count is still checked before any line is handed out."""
    import dataclasses
    import tracemalloc

    from rds_slowlog.staging import ChunkLines, read_chunk_lines

    base = str(tmp_path / "c")
    w = ChunkWriter(base, chunk_size=10_000, max_chunk_mb=1000)
    lines = [orjson.dumps({"_id": str(i), "_index": "x", "query": f"SELECT * FROM t WHERE id = {i} " * 40},
                          option=orjson.OPT_APPEND_NEWLINE) for i in range(3000)]
    for line in lines:
        w.add(line)
    w.close()
    [url] = chunk_urls(base)
    text = sum(map(len, lines))
    tracemalloc.start()
    try:
        got = read_chunk_lines(url, chunk_info(url))
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert isinstance(got, ChunkLines) and len(got) == 3000 and got.nbytes == text
    assert held < text / 4, (held, text)
    assert list(got) == lines and list(got) == lines          # iterable again
    assert got[0] == lines[0] and got[2999] == lines[2999] and got[-1] == lines[-1]
    info = dataclasses.replace(chunk_info(url), docs=2999)   # same bytes, a manifest that counts otherwise
    with pytest.raises(ChunkMismatch, match="has 3000 documents, manifest says 2999"):
        read_chunk_lines(url, info)
