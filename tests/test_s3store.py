"""S3Store against moto in server mode (real boto3 over HTTP), and staging written and read through it."""
from __future__ import annotations

import gzip
import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from botocore.config import Config

from rds_slowlog.s3store import MIN_PART_BYTES, ObjectWriter, S3Store
from rds_slowlog.staging import FILESYSTEM_RESOLVERS, ChunkWriter, chunk_info, chunk_urls, read_chunk
from rds_slowlog.testing.fault_proxy import FaultProxy
from tests.moto_server import KEY_ID, REGION, SECRET, moto_endpoint  # noqa: F401 - fixtures


def _client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                        aws_secret_access_key=SECRET,
                        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2,
                                      read_timeout=10))


@pytest.fixture
def bucket(moto_endpoint: str) -> Iterator[tuple[Any, str]]:  # noqa: F811
    client = _client(moto_endpoint)
    name = f"store-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    yield client, name


def test_whole_objects_listing_and_removal(bucket) -> None:
    client, b = bucket
    store = S3Store(client)
    store.makedirs(f"{b}/w/sub", exist_ok=True)            # no-op: S3 has no directories
    for key in ("w/chunk-00000.ndjson.gz", "w/chunk-00001.ndjson.gz", "w/manifest.json", "w/sub/chunk-9",
                "w2/chunk-00000.ndjson.gz"):
        store.pipe_file(f"{b}/{key}", key.encode())
    assert store.cat_file(f"{b}/w/manifest.json") == b"w/manifest.json"
    with pytest.raises(FileNotFoundError):
        store.cat_file(f"{b}/w/nothing")
    # "*" stays inside one path segment, as fsspec's glob; a name without magic matches itself only
    assert store.glob(f"{b}/w/chunk-*") == [f"{b}/w/chunk-00000.ndjson.gz", f"{b}/w/chunk-00001.ndjson.gz"]
    assert store.glob(f"{b}/w/manifest.json") == [f"{b}/w/manifest.json"]
    assert store.glob(f"{b}/w/manifest.jso") == [] and store.glob(f"{b}/w/chunk-0000?.ndjson.gz") == [
        f"{b}/w/chunk-00000.ndjson.gz", f"{b}/w/chunk-00001.ndjson.gz"]
    assert store.exists(f"{b}/w/manifest.json") and store.exists(f"{b}/w") and store.exists(f"{b}/w/sub")
    assert not store.exists(f"{b}/w/nothing") and not store.exists(f"{b}/w/su")
    store.rm(f"{b}/w/manifest.json")
    assert not store.exists(f"{b}/w/manifest.json")
    store.rm(f"{b}/w", recursive=True)                    # everything under w/, not w2/
    assert not store.exists(f"{b}/w")
    assert [o["Key"] for o in client.list_objects_v2(Bucket=b)["Contents"]] == ["w2/chunk-00000.ndjson.gz"]


def test_recursive_removal_of_more_than_one_delete_batch(bucket) -> None:
    client, b = bucket
    store = S3Store(client)
    for i in range(1003):                                 # DeleteObjects takes 1,000 keys at most
        client.put_object(Bucket=b, Key=f"many/{i:05d}", Body=b"")
    store.rm(f"{b}/many", recursive=True)
    assert client.list_objects_v2(Bucket=b, Prefix="many/")["KeyCount"] == 0


def test_writer_spools_then_uploads_whole(bucket) -> None:
    """Written to a temporary file, uploaded on close: one PutObject streamed from the file, or, past the
    single-PUT limit (S3's 5 GiB; lowered here), a multipart upload read from the file part by part. What is
    written is never held in memory."""
    import tracemalloc

    client, b = bucket
    data = os.urandom(2 * MIN_PART_BYTES + 12345)
    tracemalloc.start()
    try:
        w = S3Store(client).open(f"{b}/one.gz", "wb")
        base = tracemalloc.get_traced_memory()[0]
        for i in range(0, len(data), 1 << 20):
            w.write(data[i:i + (1 << 20)])
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held < 1 << 20, held
    assert client.list_objects_v2(Bucket=b, Prefix="one.gz")["KeyCount"] == 0      # nothing before close
    w.close()
    one = client.get_object(Bucket=b, Key="one.gz")
    assert one["Body"].read() == data and "-" not in one["ETag"]                    # a single PutObject
    with ObjectWriter(client, b, "parts.gz", MIN_PART_BYTES, single_put_bytes=MIN_PART_BYTES) as f:
        f.write(data)
    parts = client.get_object(Bucket=b, Key="parts.gz")
    assert parts["Body"].read() == data and parts["ETag"].strip('"').endswith("-3")  # 3 parts
    with S3Store(client).open(f"{b}/empty", "wb"):
        pass
    assert client.get_object(Bucket=b, Key="empty")["Body"].read() == b""
    with pytest.raises(ValueError, match="at least"):
        ObjectWriter(client, b, "k", MIN_PART_BYTES - 1)
    with pytest.raises(ValueError, match="'wb' only"):
        S3Store(client).open(f"{b}/one.gz", "rb")


def test_an_upload_that_fails_or_is_aborted_leaves_no_object(bucket) -> None:
    """The raw archive relies on this: a file read in part must not appear whole under its name."""
    client, b = bucket
    store = S3Store(client)
    with pytest.raises(RuntimeError, match="parse failed"):
        with store.open(f"{b}/cut.gz", "wb") as f:
            f.write(os.urandom(MIN_PART_BYTES + 1))
            raise RuntimeError("parse failed")
    assert not store.exists(f"{b}/cut.gz")
    assert not client.list_multipart_uploads(Bucket=b).get("Uploads")    # aborted, not left dangling
    store.pipe_file(f"{b}/kept.gz", b"previous run")
    w = store.open(f"{b}/kept.gz", "wb")
    w.write(os.urandom(MIN_PART_BYTES + 1))
    w.abort()
    w.close()                                             # closing an aborted writer writes nothing
    assert store.cat_file(f"{b}/kept.gz") == b"previous run"
    assert not client.list_multipart_uploads(Bucket=b).get("Uploads")
    with pytest.raises(ValueError, match="closed"):
        w.write(b"more")


def test_a_body_cut_mid_way_is_read_again(bucket, moto_endpoint: str) -> None:  # noqa: F811
    client, b = bucket
    body = os.urandom(3 << 20)
    client.put_object(Bucket=b, Key="obj", Body=body)
    with FaultProxy(moto_endpoint, flavor="s3") as proxy:
        store = S3Store(_client(proxy.endpoint_url))
        cut = proxy.arm("cut", count=2, method="GET", path=r"/obj$")
        assert store.cat_file(f"{b}/obj") == body
        assert cut.hits == 2
        proxy.arm("cut", count=3, method="GET", path=r"/obj$")
        with pytest.raises(Exception) as err:             # READ_ATTEMPTS reads, then botocore's error
            store.cat_file(f"{b}/obj")
        assert type(err.value).__module__.startswith("botocore")


def test_staging_round_trip_through_the_store(bucket) -> None:
    """The core's staging on ``s3://`` through a registered resolver, as the DAG's tasks use it: chunks and
    manifest written, verified on read, and a rerun replacing the earlier run's chunks."""
    client, b = bucket
    store = S3Store(client)

    def resolve(url: str) -> tuple[Any, str] | None:
        return (store, url.removeprefix("s3://")) if url.startswith(f"s3://{b}/") else None

    FILESYSTEM_RESOLVERS.insert(0, resolve)
    try:
        base = f"s3://{b}/staging/w1"
        lines = [orjson.dumps({"_id": str(i), "_index": "x", "n": i}, option=orjson.OPT_APPEND_NEWLINE)
                 for i in range(25)]
        w = ChunkWriter(base, chunk_size=10)
        for line in lines:
            w.add(line)
        m = w.close(run="first")
        assert [c.docs for c in m.chunks] == [10, 10, 5]
        urls = chunk_urls(base)
        assert [x for u in urls for x in read_chunk(u, chunk_info(u))] == lines
        raw = client.get_object(Bucket=b, Key="staging/w1/chunk-00000.ndjson.gz")["Body"].read()
        assert hashlib.sha256(raw).hexdigest() == m.chunks[0].sha256 and gzip.decompress(raw) == b"".join(lines[:10])
        w = ChunkWriter(base, chunk_size=100)          # a rerun: one chunk, the three earlier ones gone
        for line in lines[:3]:
            w.add(line)
        w.close(run="second")
        assert len(chunk_urls(base)) == 1 and len(store.glob(f"{b}/staging/w1/chunk-*")) == 1
    finally:
        FILESYSTEM_RESOLVERS.remove(resolve)
