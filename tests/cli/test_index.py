"""``rds-slowlog index``: parse + stage + bulk-index against real servers; credentials never echoed."""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from refusing_server import RefusingServer
from search_fixtures import (SAMPLE_LOGS, count, delete_indices, engine_url, es_url, make_client,  # noqa: F401
                             os_url, prefix)

from rds_slowlog.cli import index

SAMPLES = [str(p) for p in sorted(SAMPLE_LOGS.glob("*.log"))]


def _run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    index.add_arguments(p)
    return index.run(p.parse_args(argv))


def test_index_auto_detects_and_prints_chunk_stats(engine_url, prefix: str, tmp_path: Path,  # noqa: F811
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
        # a first load creates every document and overwrites none
        assert total["created"] == total["docs"] == total["entries"] and total["updated"] == 0
        assert "warning" not in err
        # rerun: same ids, same count; every document overwritten, which a run not marked --rerun warns about
        assert _run([*SAMPLES, "--target", url, "--index-prefix", prefix, "--no-http-compress"]) == 0
        out, err = capsys.readouterr()
        again = orjson.loads(out.splitlines()[-1])
        assert again["created"] == 0 and again["updated"] == again["indexed"] == total["entries"]
        assert f"warning: {total['entries']} document(s) replaced one with the same _id" in err
        assert count(client, engine, prefix) == total["entries"]
        assert _run([*SAMPLES, "--target", url, "--index-prefix", prefix, "--no-http-compress", "--rerun"]) == 0
        assert "warning" not in capsys.readouterr().err
    finally:
        delete_indices(client, engine, prefix)


def test_a_failed_run_accounts_for_every_document(es_url: str, prefix: str, tmp_path: Path,  # noqa: F811
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """RetriesExhausted half-way: the failing chunk and the total still add up (docs = indexed + failed +
    dead_lettered + not_attempted), and the parse-time counts (truncated, quarantined) are in the total."""
    from rds_slowlog.testing.fault_proxy import FaultProxy

    from rds_slowlog.stats import unaccounted

    client = make_client("elasticsearch", es_url)
    proxy = FaultProxy(es_url)
    try:
        proxy.down_after_bulks = 3        # chunk 1 (2 requests) and the first request of chunk 2 get through
        odd = tmp_path / "odd.log"        # one entry cut by RDS's portion cap, one line that is no entry
        odd.write_bytes(b"not a slow log line\n# Time: 2026-11-27T14:00:00.000001Z\n"
                        b"# User@Host: app[app] @  [10.0.0.1]  Id: 7\n# Query_time: 0.5  Lock_time: 0.0\n"
                        b"SELECT 'xxxxxxxx [Your log message was truncated]\n")
        logs = [str(odd), *SAMPLES]
        rc = _run([*logs, "--target", proxy.url(es_url), "--target-type", "elasticsearch", "--index-prefix",
                   prefix, "--chunk-size", "100", "--batch-size", "50", "--max-workers", "1", "--es-retry-count",
                   "1", "--no-http-compress", "--staging", str(tmp_path)])
        out, err = capsys.readouterr()
        assert rc == index.EXIT_INDEX and "still failing after 1 retry" in err
        lines = [orjson.loads(x) for x in out.splitlines()]
        failed_chunk, total = lines[-2], lines[-1]
        assert failed_chunk["error"] == "RetriesExhausted"
        assert (failed_chunk["docs"], failed_chunk["indexed"], failed_chunk["failed"],
                failed_chunk["not_attempted"]) == (100, 50, 50, 0)
        assert unaccounted(failed_chunk) == 0
        assert total["indexed"] == 150 and total["failed"] == 50 and total["dead_lettered"] == 0
        assert total["not_attempted"] == total["docs"] - 200 > 0 and unaccounted(total) == 0
        assert total["docs"] == total["entries"] - total["incomplete"]
        assert count(client, "elasticsearch", prefix) == 150
        parsed = [orjson.loads(x) for x in subprocess.run(
            [sys.executable, "-m", "rds_slowlog.cli", "parse", *logs, "--stats", "--out", os.devnull],
            capture_output=True, text=True, check=True).stderr.splitlines() if x.startswith("{")]
        assert total["truncated"] == sum(p["truncated_entries"] for p in parsed) == 1
        assert total["quarantined"] == sum(p["quarantined_lines"] for p in parsed) == 1
    finally:
        proxy.close()
        delete_indices(client, "elasticsearch", prefix)


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
        assert u.password not in out + err and f"# target http://***@127.0.0.1:{u.port} (elasticsearch)" in err
        # wrong password: a clear failure, exit code 4, still no password in the output
        monkeypatch.setenv("ES_PASSWORD", "wrong-secret")
        assert _run([SAMPLES[0], "--target", bare, "--index-prefix", prefix, "--target-type", "elasticsearch",
                     "--no-templates"]) == 4
        out, err = capsys.readouterr()
        assert "wrong-secret" not in out + err
        assert f"authentication failed (401) for http://127.0.0.1:{u.port} (bulk request, chunk-00000" in err
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_bad_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([SAMPLES[0], "--target", "ftp://x:secret@host"]) == 2
    assert _run([SAMPLES[0], "--target", "http://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach" in err and "secret" not in err


# ------------------------------------------------------------------------------------------ bad targets

def _wrong(es_url: str, password: str = "wr@ng:pa/ss#1") -> str:
    u = urlsplit(es_url)
    if u.password is None:
        pytest.fail("the test Elasticsearch must run with security on (scripts/search-engine.sh does)")
    return f"http://{u.username}:{password}@127.0.0.1:{u.port}"


@pytest.fixture()
def closed_port() -> Iterator[int]:
    """A port bound by nobody listening on it: connecting is refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def test_scheme_less_target_is_a_usage_error_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    try:
        for kind in ("auto", "elasticsearch", "opensearch"):
            assert _run([SAMPLES[0], "--target", f"user:SECRET@127.0.0.1:{port}", "--target-type", kind]) == 2
            out, err = capsys.readouterr()
            assert f"target ***@127.0.0.1:{port} has no scheme" in err and "SECRET" not in out + err
        with pytest.raises(TimeoutError):
            listener.accept()  # no request was made
    finally:
        listener.close()


def test_password_with_at_sign_is_redacted_when_unreachable(closed_port: int,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    for kind in ("auto", "elasticsearch", "opensearch"):
        rc = _run([SAMPLES[0], "--target", f"http://u:SEC@RET@127.0.0.1:{closed_port}", "--target-type", kind,
                   "--es-retry-count", "0"])
        out, err = capsys.readouterr()
        assert rc == 2, err
        assert f"cannot reach http://***@127.0.0.1:{closed_port}" in err
        assert "SEC" not in out + err and "RET" not in out + err


@pytest.mark.parametrize("extra", [[], ["--target-type", "elasticsearch"],
                                   ["--target-type", "elasticsearch", "--no-templates"]],
                         ids=["auto", "explicit", "explicit-no-templates"])
def test_wrong_password_says_authentication_failed(es_url: str, prefix: str, extra: list[str],  # noqa: F811
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    target = _wrong(es_url)
    port = urlsplit(es_url).port
    assert _run([SAMPLES[0], "--target", target, "--index-prefix", prefix, *extra]) == 4
    out, err = capsys.readouterr()
    assert f"rds-slowlog index: authentication failed (401) for http://***@127.0.0.1:{port}" in err
    assert "neither" not in err and "wr@ng" not in out + err and "pa/ss" not in out + err


@pytest.mark.parametrize("extra", [[], ["--target-type", "elasticsearch"],
                                   ["--target-type", "elasticsearch", "--no-templates"]],
                         ids=["auto", "explicit", "explicit-no-templates"])
def test_wrong_api_key_says_authentication_failed(es_url: str, prefix: str, extra: list[str], monkeypatch,  # noqa: F811
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    key = "d3JvbmctaWQ6d3Jvbmcta2V5LXZhbHVl"  # base64("wrong-id:wrong-key-value"): the real server checks it
    monkeypatch.setenv("ES_API_KEY", key)
    port = urlsplit(es_url).port
    assert _run([SAMPLES[0], "--target", f"http://127.0.0.1:{port}", "--index-prefix", prefix, *extra]) == 4
    out, err = capsys.readouterr()
    assert f"authentication failed (401) for http://127.0.0.1:{port}" in err
    assert key not in out + err and "wrong-key-value" not in out + err


@pytest.mark.parametrize("product_header,extra,last", [
    (False, [], r"GET /"),                                                        # detection refused
    (True, [], r"GET /_component_template/.*"),                                   # detected, templates refused
    (False, ["--target-type", "opensearch"], r"GET /_component_template/.*"),
    (False, ["--target-type", "opensearch", "--no-templates"], r"(PUT|POST) /_bulk.*"),
    (True, ["--target-type", "elasticsearch", "--no-templates"], r"(PUT|POST) /_bulk.*"),
])
def test_forbidden_says_not_authorised(product_header: bool, extra: list[str], last: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    server = RefusingServer(403, product_header)
    try:
        rc = _run([SAMPLES[0], "--target", f"http://user:SECRET@127.0.0.1:{server.port}", *extra,
                   "--es-retry-count", "0", "--no-http-compress"])
        out, err = capsys.readouterr()
        assert rc == 4, err
        assert f"not authorised (403) for http://***@127.0.0.1:{server.port}" in err and "SECRET" not in out + err
        detected = 1 if "--target-type" not in extra and product_header else 0   # GET / answered by a 403
        assert re.fullmatch(last, server.requests[-1]) and len(server.requests) == detected + 1  # nothing more
    finally:
        server.close()


def test_cli_prints_no_traceback_for_bad_targets(es_url: str, tmp_path: Path) -> None:  # noqa: F811
    """The issue's own commands, through the installed CLI: one line on stderr, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ES_")}
    port = urlsplit(es_url).port
    cases = [(["--target", "user:SECRET@127.0.0.1:9311"], 2, "has no scheme"),
             (["--target", _wrong(es_url, "SEC@RET"), "--target-type", "elasticsearch"], 4,
              f"authentication failed (401) for http://***@127.0.0.1:{port}"),
             (["--target", _wrong(es_url, "SEC@RET")], 4, "authentication failed (401)")]
    for argv, code, message in cases:
        proc = subprocess.run([sys.executable, "-m", "rds_slowlog.cli", "index", SAMPLES[0], *argv,
                               "--index-prefix", f"t-cli-{tmp_path.name[-8:].lower()}"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == code, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert "SEC" not in proc.stdout + proc.stderr and "RET" not in proc.stdout + proc.stderr
