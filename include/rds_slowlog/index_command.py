"""``rds-slowlog index LOG... --target URL``: parse, stage and bulk-index local log files in one go.

The same steps the Airflow tasks run (stage → index per chunk), for one-off loads without Airflow. Chunks go to
``--staging DIR`` (kept) or a temporary directory (removed); per-chunk stats are printed as one JSON line each
on stdout, the same dicts the Airflow index task returns. Credentials come from the URL
(``http://user:password@host:9200``, like ``ES_URL``) or from ``ES_USERNAME``/``ES_PASSWORD``/``ES_API_KEY``;
they are never printed — the target is echoed with the password masked.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

from rds_slowlog.documents import DEFAULT_INDEX_PREFIX, DEFAULT_MAX_QUERY_CHARS, DocumentBuilder
from rds_slowlog.exceptions import IndexingError
from rds_slowlog.stats import add, empty, peak_rss_mb

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_INDEX = 0, 2, 3, 4


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``index`` subcommand (cli.py wires them into its subparser)."""
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


def redact(url: str) -> str:
    """The URL with its password masked (for messages)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def detect_target_type(url: str, *, username: str | None, password: str | None, api_key: str | None,
                       verify_certs: bool = True, ca_certs: str | None = None, timeout: float = 10.0) -> str:
    """``elasticsearch`` or ``opensearch``, from one ``GET /`` (Elasticsearch marks every answer with an
    ``X-elastic-product`` header, even a 405; OpenSearch names itself in ``version.distribution``)."""
    import base64
    import ssl
    import urllib.error
    import urllib.request
    from urllib.parse import unquote, urlunsplit

    parts = urlsplit(url)
    if parts.username is not None:
        username, password = unquote(parts.username), unquote(parts.password or "")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    req = urllib.request.Request(urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/", "", "")))
    if api_key:
        req.add_header("Authorization", f"ApiKey {api_key}")
    elif username is not None:
        req.add_header("Authorization",
                       "Basic " + base64.b64encode(f"{username}:{password or ''}".encode()).decode())
    ctx = None
    if parts.scheme == "https":
        ctx = ssl.create_default_context(cafile=ca_certs)
        if not verify_certs:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            headers, body = resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        headers, body = e.headers, e.read()
    except (urllib.error.URLError, OSError) as e:
        raise ConnectionError(f"cannot reach {redact(url)}: {getattr(e, 'reason', e)}") from None
    if headers.get("X-elastic-product") == "Elasticsearch":
        return "elasticsearch"
    try:
        if json.loads(body).get("version", {}).get("distribution") == "opensearch":
            return "opensearch"
    except (ValueError, AttributeError):
        pass
    raise ValueError(f"{redact(url)} is neither Elasticsearch nor OpenSearch as far as GET / tells "
                     "(pass --target-type)")


def _stage(args: argparse.Namespace, base: str) -> tuple[int, int, list[dict[str, Any]]]:
    """Parse every LOG into one staging directory; (entries, quarantined lines, per-file report)."""
    from rds_slowlog.pipeline import Classifiers, classified, read_paths
    from rds_slowlog.staging import ChunkWriter

    builder = DocumentBuilder(args.instance, index_prefix=args.index_prefix, max_query_chars=args.max_query_chars,
                              store_query=not args.fingerprint_only)
    classifiers = Classifiers()
    writer = ChunkWriter(base, chunk_size=args.chunk_size)
    entries = quarantined = 0
    report: list[dict[str, Any]] = []
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for run, stream in read_paths(args.logs, args.engine, log_line_prefix=args.log_line_prefix, errors=report):
        with stream:
            add_line = writer.add
            for e, qc in classified(run, classifiers):
                add_line(dumps(builder.action(e, qc), option=opt))
        entries += run.stats.entries
        quarantined += run.stats.quarantined_lines
        report.append({"source": run.source, "engine": run.engine, "entries": run.stats.entries})
    writer.close(instance=args.instance, ingest_run_id=builder.ingest_run_id)
    return entries, quarantined, report


def run(args: argparse.Namespace) -> int:
    """Stage and index; prints one JSON stats line per chunk and a total. Exit 0 ok, 3 input, 4 indexing."""
    from rds_slowlog.indexing import BulkOptions, ChunkIndexer, build_client
    from rds_slowlog.staging import join, read_manifest
    from rds_slowlog.templates import install_templates

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
    except (ValueError, ConnectionError) as e:
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
        entries, quarantined, report = _stage(args, base)
        if not args.no_templates:
            installed = install_templates(client, prefix=args.index_prefix, engine=kind)
            print(f"# templates: {installed}", file=sys.stderr)
        indexer = ChunkIndexer(client, engine=kind, options=options)
        total = empty()
        total["entries"], total["quarantined"] = entries, quarantined
        chunks = [(join(base, info.name), info) for info in read_manifest(base).chunks]
        try:
            # pipelined: the next chunk is read and prepared while the current one is on the server
            for url, stats in indexer.iter_chunks(chunks):
                print(orjson.dumps({"chunk": url.rsplit("/", 1)[-1], **stats}).decode())
                total = add(total, stats)
        except IndexingError as e:
            print(f"rds-slowlog index: {e}", file=sys.stderr)
            chunk = (e.chunk or "").rsplit("/", 1)[-1]
            print(orjson.dumps({"chunk": chunk, "error": type(e).__name__, **e.stats}).decode())
            total = add(total, e.stats)  # type: ignore[arg-type]
            failed = True
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


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m rds_slowlog.index_command``) until cli.py wires ``index`` in."""
    p = argparse.ArgumentParser(prog="rds-slowlog index", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
