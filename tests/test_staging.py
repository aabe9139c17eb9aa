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
