"""``rds-slowlog index``: parse + stage + bulk-index against real servers; credentials never echoed."""
from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from search_fixtures import (SAMPLE_LOGS, count, delete_indices, engine_url, es_url, make_client,  # noqa: F401
                             os_url, prefix)

from rds_slowlog import index_command

SAMPLES = [str(p) for p in sorted(SAMPLE_LOGS.glob("*.log"))]


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    index_command.add_arguments(p)
    return index_command.run(p.parse_args(argv))


def test_index_command_auto_detects_and_prints_chunk_stats(engine_url, prefix: str, tmp_path: Path,  # noqa: F811
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    engine, url = engine_url
    client = make_client(engine, url)
    try:
        rc = _run([*SAMPLES, "--target", url, "--index-prefix", prefix, "--chunk-size", "200",
                   "--batch-size", "50", "--staging", str(tmp_path), "--no-http-compress"])
        out, err = capsys.readouterr()
        assert rc == 0, err
        lines = [orjson.loads(x) for x in out.splitlines()]
        chunks, total = lines[:-1], lines[-1]
        assert [c["chunk"] for c in chunks] == ["chunk-00000.ndjson.gz", "chunk-00001.ndjson.gz"]
        assert total["total"] and total["entries"] == total["indexed"] == sum(c["indexed"] for c in chunks)
        assert f"({engine})" in err
        assert count(client, engine, prefix) == total["entries"]
        # rerun: same ids, same count
        assert _run([*SAMPLES, "--target", url, "--index-prefix", prefix, "--no-http-compress"]) == 0
        assert count(client, engine, prefix) == total["entries"]
    finally:
        delete_indices(client, engine, prefix)


def test_credentials_from_env_are_never_echoed(es_url: str, prefix: str, monkeypatch,  # noqa: F811
                                               capsys: pytest.CaptureFixture[str]) -> None:
    u = urlsplit(es_url)
    if u.password is None:
        pytest.fail("the test Elasticsearch must run with security on (scripts/search-engine.sh does)")
    bare = f"http://127.0.0.1:{u.port}"
    client = make_client("elasticsearch", es_url)
    try:
        monkeypatch.setenv("ES_USERNAME", u.username)
        monkeypatch.setenv("ES_PASSWORD", u.password)
        assert _run([SAMPLES[0], "--target", bare, "--index-prefix", prefix]) == 0
        out, err = capsys.readouterr()
        assert u.password not in out + err
        # credentials in the URL: masked in the echo
        assert _run([SAMPLES[0], "--target", es_url, "--index-prefix", prefix, "--target-type",
                     "elasticsearch"]) == 0
        out, err = capsys.readouterr()
        assert u.password not in out + err and ":***@" in err
        # wrong password: a clear failure, exit code 4, still no password in the output
        monkeypatch.setenv("ES_PASSWORD", "wrong-secret")
        assert _run([SAMPLES[0], "--target", bare, "--index-prefix", prefix, "--target-type", "elasticsearch",
                     "--no-templates"]) == 4
        out, err = capsys.readouterr()
        assert "wrong-secret" not in out + err and "401" in err
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_bad_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([SAMPLES[0], "--target", "ftp://x:secret@host"]) == 2
    assert _run([SAMPLES[0], "--target", "http://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach" in err and "secret" not in err
