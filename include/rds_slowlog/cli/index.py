"""``rds-slowlog index LOG... --target URL``: parse, stage and bulk-index local log files in one go.

The same steps the Airflow tasks run (stage → index per chunk), for one-off loads without Airflow. Chunks go to
``--staging DIR`` (kept) or a temporary directory (removed); per-chunk stats are printed as one JSON line each
on stdout, the same dicts the Airflow index task returns. Credentials come from the URL
(``http://user:password@host:9200``, like ``ES_URL``) or from ``ES_USERNAME``/``ES_PASSWORD``/``ES_API_KEY``;
they are never printed — the target is echoed with the password masked.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import orjson

from rds_slowlog.cli.common import EXIT_INDEX, EXIT_INPUT, EXIT_OK, EXIT_USAGE, parse_time, time_zone
from rds_slowlog.documents import DEFAULT_INDEX_PREFIX, DEFAULT_MAX_QUERY_CHARS
from rds_slowlog.exceptions import IndexingError
from rds_slowlog.stage import StageInput
from rds_slowlog.stats import Stats, add, peak_rss_mb
from rds_slowlog.target import TargetRefused, detect_target_type, redact, refusal


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rds-slowlog index``."""
    from rds_slowlog.indexing import BulkOptions, parse_threshold

    d = BulkOptions()
    p.add_argument("logs", nargs="+", metavar="LOG", help="log files (plain, .gz, .bz2 or .xz)")
    p.add_argument("--target", required=True, metavar="URL",
                   help="http(s)://[user:password@]host:port of Elasticsearch/OpenSearch (like ES_URL)")
    p.add_argument("--target-type", choices=("auto", "elasticsearch", "opensearch"), default="auto",
                   help="server kind (default: asked from the server)")
    p.add_argument("--engine", choices=("auto", "mysql", "postgres"), default="auto",
                   help="log format (default: detected from the first 64 KiB of each file)")
    p.add_argument("--log-line-prefix", default="%t:%r:%u@%d:[%p]:", help="PostgreSQL log_line_prefix")
    p.add_argument("--index-prefix", default=DEFAULT_INDEX_PREFIX,
                   help="indices are <prefix>-<engine>-YYYY.MM.DD (default %(default)s)")
    p.add_argument("--instance", default="local", help="RDS instance id recorded in the documents (and ids)")
    p.add_argument("--since", type=parse_time, help="only entries written at or after this time (a window)")
    p.add_argument("--until", type=parse_time, help="only entries written before this time")
    p.add_argument("--growing", action="store_true",
                   help="the logs are still being written: leave out a last entry that may be cut short")
    p.add_argument("--log-time-zone", metavar="ZONE", type=time_zone,
                   help="zone of MySQL/MariaDB zone-less '# Time:' values (UTC, +05:30, Europe/Berlin); "
                        "default: inferred from SET timestamp")
    p.add_argument("--rerun", action="store_true",
                   help="these logs were indexed before: overwriting documents is expected (no warning)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="documents per bulk request")
    p.add_argument("--max-chunk-bytes", type=int, default=d.max_chunk_bytes, help="bytes per bulk request")
    p.add_argument("--max-workers", type=int, default=d.max_workers,
                   help="bulk requests in flight at once (default %(default)s; 1 sends one at a time)")
    p.add_argument("--chunk-size", type=int, default=5000, help="documents per staged chunk")
    p.add_argument("--staging", metavar="DIR", help="keep staged chunks (and dead letters) here")
    p.add_argument("--es-timeout", type=float, default=d.es_timeout, help="seconds per bulk request")
    p.add_argument("--es-retry-count", type=int, default=d.es_retry_count,
                   help="resends of retriable failures (429/502/503/504, connection errors)")
    p.add_argument("--failure-threshold", type=parse_threshold, default=d.failure_threshold,
                   help="rejected documents tolerated per chunk: fraction (0.01), percentage (1%%) or count (10)")
    p.add_argument("--no-http-compress", dest="http_compress", action="store_false",
                   help="do not gzip request bodies (faster on loopback)")
    p.add_argument("--no-verify-certs", dest="verify_certs", action="store_false",
                   help="do not verify the server's TLS certificate (never do this in production)")
    p.add_argument("--ca-certs", metavar="PEM", help="CA bundle to verify the server with")
    p.add_argument("--no-templates", action="store_true", help="do not install/update the index templates")
    p.add_argument("--max-query-chars", type=int, default=DEFAULT_MAX_QUERY_CHARS)
    p.add_argument("--fingerprint-only", action="store_true",
                   help="PII-safe: store only fingerprints, never the query text or parameters")


def _inputs(args: argparse.Namespace, report: list[dict[str, Any]]) -> Iterator[StageInput]:
    """The LOG files as stage inputs, opened one at a time; an unreadable one is reported, not raised."""
    from rds_slowlog.logfile import open_log

    for path in args.logs:
        try:
            stream = open_log(path)
        except OSError as e:
            print(f"rds-slowlog: {path}: {e.strerror or e}", file=sys.stderr)
            report.append({"source": str(path), "error": str(e)})
            continue
        with stream:
            yield StageInput(str(path), stream, args.engine, growing=args.growing)


def _stage(args: argparse.Namespace, base: str) -> tuple[Stats, list[dict[str, Any]]]:
    """Parse every LOG into one staging directory with one document builder (one window's worth)."""
    from rds_slowlog.stage import stage_window

    report: list[dict[str, Any]] = []
    result = stage_window(_inputs(args, report), base, instance=args.instance, since=args.since,
                          until=args.until, index_prefix=args.index_prefix, max_query_chars=args.max_query_chars,
                          store_query=not args.fingerprint_only, chunk_size=args.chunk_size,
                          log_line_prefix=args.log_line_prefix, log_time_zone=args.log_time_zone)
    return result.stats, result.files + report


def run(args: argparse.Namespace) -> int:
    """Stage and index; prints one JSON stats line per chunk and a total.

    Exit 0 ok; 2 usage (bad options, a malformed or unreachable target); 3 an input could not be read;
    4 indexing failed, or the server refused the credentials (401/403).
    """
    from rds_slowlog.indexing import BulkOptions, ChunkIndexer
    from rds_slowlog.search import build_client, is_connection_failure, refused_status
    from rds_slowlog.staging import join, read_manifest
    from rds_slowlog.templates import TemplateInstallError, install_templates

    username = os.environ.get("ES_USERNAME")
    password = os.environ.get("ES_PASSWORD")
    api_key = os.environ.get("ES_API_KEY")
    target = args.target
    try:
        options = BulkOptions(batch_size=args.batch_size, max_chunk_bytes=args.max_chunk_bytes,
                              es_timeout=args.es_timeout, es_retry_count=args.es_retry_count,
                              failure_threshold=args.failure_threshold, max_workers=args.max_workers)
        kind = args.target_type
        if kind == "auto":
            kind = detect_target_type(target, username=username, password=password, api_key=api_key,
                                      verify_certs=args.verify_certs, ca_certs=args.ca_certs)
        client = build_client(kind, target, username=username, password=password, api_key=api_key,
                              verify_certs=args.verify_certs, ca_certs=args.ca_certs,
                              http_compress=args.http_compress, timeout=args.es_timeout)
    except TargetRefused as e:  # 401/403 exit EXIT_INDEX on every path: detection, templates, bulk
        print(f"rds-slowlog index: {e}", file=sys.stderr)
        return EXIT_INDEX
    except (ValueError, ConnectionError) as e:  # malformed (no scheme, …) or unreachable target: usage
        print(f"rds-slowlog index: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"# target {redact(target)} ({kind})", file=sys.stderr)

    tmp = None
    base = args.staging
    if base is None:
        tmp = base = tempfile.mkdtemp(prefix="rds-slowlog-index-")
    started = time.monotonic()
    failed = False
    try:
        staged, report = _stage(args, base)
        if not args.no_templates:
            try:
                installed = install_templates(client, prefix=args.index_prefix, engine=kind)
            except Exception as e:  # the first request of an explicit --target-type: no traceback
                status = refused_status(e)
                if status is not None:
                    print(f"rds-slowlog index: {refusal(status, target)} (installing templates)", file=sys.stderr)
                    return EXIT_INDEX
                if is_connection_failure(e):
                    print(f"rds-slowlog index: cannot reach {redact(target)}: {str(e)[:300]}", file=sys.stderr)
                    return EXIT_USAGE
                if isinstance(e, TemplateInstallError):
                    print(f"rds-slowlog index: {str(e)[:500]}", file=sys.stderr)
                    return EXIT_INDEX
                raise
            print(f"# templates: {installed}", file=sys.stderr)
        indexer = ChunkIndexer(client, engine=kind, options=options)
        chunks = [(join(base, info.name), info) for info in read_manifest(base).chunks]
        try:
            # pipelined: the next chunk is read and prepared while the current one is on the server
            for url, stats in indexer.iter_chunks(chunks):
                print(orjson.dumps({"chunk": url.rsplit("/", 1)[-1], **stats}).decode())
        except IndexingError as e:
            chunk = (e.chunk or "").rsplit("/", 1)[-1]
            status = refused_status(e)
            print(f"rds-slowlog index: {refusal(status, target) + f' (bulk request, {chunk})' if status else e}",
                  file=sys.stderr)
            print(orjson.dumps({"chunk": chunk, "error": type(e).__name__, **e.stats}).decode())
            failed = True
        # the books: what was staged, and what the indexer answered for (chunks it never reached included)
        total = add(staged, indexer.totals)
        for k in ("entries", "docs", "incomplete", "truncated", "quarantined", "bytes"):
            total[k] = staged[k]  # type: ignore[literal-required]
        total["not_attempted"] = total["docs"] - total["indexed"] - total["failed"] - total["dead_lettered"]
        if total["updated"] and not args.rerun:
            print(f"# warning: {total['updated']} document(s) replaced one with the same _id already in the index "
                  "(expected when the same logs were indexed before; pass --rerun to say so)", file=sys.stderr)
        if total["incomplete"]:
            print(f"# {total['incomplete']} entr(y/ies) left out: the file is still being written and they may "
                  "be cut short (index again once they are complete)", file=sys.stderr)
        total["seconds"] = round(time.monotonic() - started, 3)
        total["peak_rss_mb"] = round(peak_rss_mb(), 1)
        print(orjson.dumps({"total": True, **total}).decode())
        if args.staging is None and (failed or total.get("dead_lettered")):
            print("# dead letters are removed with the temporary staging directory; pass --staging DIR to keep "
                  "them", file=sys.stderr)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        return EXIT_INDEX
    return EXIT_INPUT if any("error" in r for r in report) else EXIT_OK

