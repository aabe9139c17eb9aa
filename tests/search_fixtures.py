"""Real Elasticsearch / OpenSearch servers for tests (session scope), plus small helpers.

A server comes from ES_URL / OPENSEARCH_URL, else from an already running ``scripts/search-engine.sh`` server,
else it is started with that script and stopped at the end of the session. A server that cannot be started
FAILS the tests with the script's message: indexing must be proven against a real server, never skipped.

Import the fixtures into a test module with ``from search_fixtures import es_url, os_url, ...``.
"""
from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "search-engine.sh"
SAMPLE_LOGS = ROOT / "include" / "sample_logs"
URL_VAR = {"elasticsearch": "ES_URL", "opensearch": "OPENSEARCH_URL"}


def _server(engine: str) -> Iterator[str]:
    var = URL_VAR[engine]
    if os.environ.get(var):
        yield os.environ[var]
        return
    status = subprocess.run([str(SCRIPT), "status", engine], capture_output=True, text=True, timeout=60)
    if status.returncode == 0:              # someone else's server: use it, leave it running
        yield status.stdout.strip().split("=", 1)[1]
        return
    proc = subprocess.run([str(SCRIPT), "start", engine], capture_output=True, text=True, timeout=400)
    if proc.returncode != 0:
        pytest.fail(f"could not start {engine} with {SCRIPT} (set {var} to use a running server):\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)
    try:
        yield proc.stdout.strip().split("=", 1)[1]
    finally:
        subprocess.run([str(SCRIPT), "stop", engine], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    yield from _server("elasticsearch")


@pytest.fixture(scope="session")
def os_url() -> Iterator[str]:
    yield from _server("opensearch")


@pytest.fixture(scope="session", params=["elasticsearch", "opensearch"])
def engine_url(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(engine, URL) for each engine; the servers start lazily, once per session."""
    engine = request.param
    return engine, request.getfixturevalue("es_url" if engine == "elasticsearch" else "os_url")


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A unique index prefix per test (indices deleted afterwards by :func:`delete_indices`)."""
    return f"t-{uuid.uuid4().hex[:10]}"


def make_client(engine: str, url: str, **kw: Any) -> Any:
    from rds_slowlog.search import build_client

    kw.setdefault("http_compress", False)
    return build_client(engine, url, **kw)


def delete_indices(client: Any, engine: str, prefix: str) -> None:
    from rds_slowlog.search import raw_request

    status, body = raw_request(client, engine, "GET", f"/_cat/indices/{prefix}-*", params={"format": "json"})
    names = [r["index"] for r in body] if status == 200 else []
    if names:
        raw_request(client, engine, "DELETE", "/" + ",".join(names))
    raw_request(client, engine, "DELETE", f"/_index_template/{prefix}")
    for suffix in ("settings", "mappings", "mappings-mysql", "mappings-postgresql"):
        raw_request(client, engine, "DELETE", f"/_component_template/{prefix}-{suffix}")


def count(client: Any, engine: str, prefix: str) -> int:
    from rds_slowlog.search import raw_request

    raw_request(client, engine, "POST", f"/{prefix}-*/_refresh")
    status, body = raw_request(client, engine, "GET", f"/{prefix}-*/_count")
    assert status == 200, body
    return body["count"]


def stage_logs(paths: list[Path], base: str, prefix: str, *, chunk_size: int = 5000,
               per_file_instance: bool = False) -> int:
    """Parse ``paths`` into staged chunks under ``base``; returns the number of entries."""
    from rds_slowlog.documents import DocumentBuilder
    from rds_slowlog.pipeline import Classifiers, classified, read_path
    from rds_slowlog.staging import ChunkWriter

    writer = ChunkWriter(base, chunk_size=chunk_size)
    classifiers = Classifiers()
    builder = DocumentBuilder("test-db", index_prefix=prefix, ingest_run_id="run-1")
    n = 0
    for path in paths:
        if per_file_instance:
            builder = DocumentBuilder(f"db-{path.name}", index_prefix=prefix, ingest_run_id="run-1")
        run, stream = read_path(path)
        with stream:
            for e, qc in classified(run, classifiers):
                writer.add(orjson.dumps(builder.action(e, qc), option=orjson.OPT_APPEND_NEWLINE))
                n += 1
    writer.close()
    return n
