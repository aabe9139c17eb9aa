#!/usr/bin/env python3
"""Benchmark: our end-to-end chunk indexing (docs/s) against a raw ``_bulk`` of the same NDJSON, same server, same run.

*Ours* = :func:`rds_slowlog.indexing.index_staging` on staged gzip chunks: read + sha256-verify each chunk,
decompress, split the ``_id``/``_index`` tail off every line, batch by docs and bytes, send through the client
library's ``streaming_bulk``, inspect every item. *Raw* = the same bulk bodies, built before the clock starts,
POSTed one after the other with ``http.client`` on one keep-alive connection (one request in flight); the
only check is ``"errors":false`` in the response. Ours runs twice per round: with ``max_workers=1`` (one
request in flight — like with like against raw) and with ``--max-workers`` (default: ``BulkOptions``'s, several
requests in flight, like ``parallel_bulk`` — not like with like: raw stays one sequential connection). Same
documents, same batch size, same server, compression on all sides or none (``--http-compress``); every run
starts from deleted indices (with the templates installed), a warm-up round is not counted, and the order of
the sides rotates so server warm-up, merges and other load on the machine hit all alike. Each round prints the
figures side by side, the machine's busy CPU (other processes on a small machine skew single rounds) and our
CPU time.

Input: the first ``--docs`` entries of the benchmark MariaDB log made by ``bench/make_logs.py`` (real server
output) when it exists, else the bundled sample logs replicated under distinct instance ids.

    bench/index_bench.py [--engine elasticsearch|opensearch] [--docs N] [--rounds N] [--batch-size N]
                         [--http-compress] [--max-workers N]

The server comes from ES_URL / OPENSEARCH_URL or is started (and stopped) with scripts/search-engine.sh.
"""
from __future__ import annotations

import argparse
import base64
import gzip
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

import orjson  # noqa: E402

from rds_slowlog.documents import DocumentBuilder  # noqa: E402
from rds_slowlog.indexing import BulkOptions, index_staging, split_line  # noqa: E402
from rds_slowlog.pipeline import Classifiers, classified, read_path  # noqa: E402
from rds_slowlog.search import build_client, raw_request  # noqa: E402
from rds_slowlog.staging import ChunkWriter, read_chunk, read_manifest  # noqa: E402
from rds_slowlog.templates import install_templates  # noqa: E402

BENCH_LOG = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rds-slowlog" / "bench" / \
    "mysql-slowquery.log"
PREFIX = "rds-bench"
URL_VAR = {"elasticsearch": "ES_URL", "opensearch": "OPENSEARCH_URL"}


def server_url(engine: str) -> tuple[str, bool]:
    """(URL, whether we started it)."""
    var = URL_VAR[engine]
    if os.environ.get(var):
        return os.environ[var], False
    out = subprocess.run([str(ROOT / "scripts" / "search-engine.sh"), "start", engine], capture_output=True,
                         text=True)
    if out.returncode != 0:
        sys.exit(f"could not start {engine}: {out.stderr.strip()}")
    return out.stdout.strip().split("=", 1)[1], True


def stage(docs: int, base: str) -> tuple[int, str]:
    """Stage ``docs`` documents into ``base``; returns (count, description of the input)."""
    writer = ChunkWriter(base, chunk_size=5000)
    classifiers = Classifiers()
    n = 0
    if BENCH_LOG.exists():
        source = f"{BENCH_LOG} (first {docs} entries)"
        builder = DocumentBuilder("bench", index_prefix=PREFIX)
        run, stream = read_path(BENCH_LOG)
        with stream:
            for e, qc in classified(run, classifiers):
                writer.add(orjson.dumps(builder.action(e, qc), option=orjson.OPT_APPEND_NEWLINE))
                n += 1
                if n >= docs:
                    break
    else:
        source = "include/sample_logs/*.log replicated under distinct instance ids"
        k = 0
        while n < docs:
            builder = DocumentBuilder(f"bench-{k}", index_prefix=PREFIX)
            k += 1
            for path in sorted((ROOT / "include" / "sample_logs").glob("*.log")):
                run, stream = read_path(path)
                with stream:
                    for e, qc in classified(run, classifiers):
                        if n >= docs:
                            break
                        writer.add(orjson.dumps(builder.action(e, qc), option=orjson.OPT_APPEND_NEWLINE))
                        n += 1
    writer.close()
    return n, source


def raw_bodies(base: str, batch_size: int) -> list[bytes]:
    """The same documents as ready ``_bulk`` bodies (built outside the timed section)."""
    bodies: list[bytes] = []
    lines: list[bytes] = []
    for info in read_manifest(base).chunks:
        for line in read_chunk(f"{base}/{info.name}", info):
            index, doc_id, source = split_line(line)
            lines.append(b'{"index":{"_index":"' + index + b'","_id":"' + doc_id + b'"}}\n' + source + b"\n")
            if len(lines) == batch_size:
                bodies.append(b"".join(lines))
                lines.clear()
    if lines:
        bodies.append(b"".join(lines))
    return bodies


def raw_bulk(url: str, bodies: list[bytes], compress: bool = False, filter_path: str = "errors") -> float:
    """POST every body on one keep-alive connection (gzipped in the timed loop when ``compress``, as the
    client libraries do per request); seconds taken."""
    u = urlsplit(url)
    headers = {"Content-Type": "application/x-ndjson"}
    if compress:
        headers["Content-Encoding"] = "gzip"
    if u.username is not None:
        cred = f"{unquote(u.username)}:{unquote(u.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(u.hostname, u.port, timeout=120)
    t0 = time.monotonic()
    for body in bodies:
        conn.request("POST", f"/_bulk?filter_path={filter_path}", body=gzip.compress(body) if compress else body,
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200 or b'"errors":false' not in data:
            raise RuntimeError(f"raw bulk failed: HTTP {resp.status} {data[:300]!r}")
    elapsed = time.monotonic() - t0
    conn.close()
    return elapsed


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, our process's CPU seconds) — to show contention per round."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    except OSError:
        busy = float("nan")
    return busy, time.process_time()


def reset(client, engine: str) -> None:
    status, body = raw_request(client, engine, "GET", f"/_cat/indices/{PREFIX}-*", params={"format": "json",
                                                                                          "h": "index"})
    names = [r["index"] for r in body] if status == 200 else []
    if names:
        raw_request(client, engine, "DELETE", "/" + ",".join(names))
    install_templates(client, prefix=PREFIX, engine=engine)


def count(client, engine: str) -> int:
    raw_request(client, engine, "POST", f"/{PREFIX}-*/_refresh")
    return raw_request(client, engine, "GET", f"/{PREFIX}-*/_count")[1]["count"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=("elasticsearch", "opensearch"), default="elasticsearch")
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--http-compress", action="store_true",
                    help="gzip the requests of both sides (ours through the client library, raw with gzip.compress)")
    ap.add_argument("--raw-filter-path", default="errors",
                    help="filter_path of the raw requests; 'errors,items.*.status,items.*.error' makes the server "
                         "render the per-item answer ours asks for (default: errors, the minimal client)")
    ap.add_argument("--max-workers", type=int, default=BulkOptions().max_workers,
                    help="requests in flight for the second 'ours' column (default %(default)s)")
    args = ap.parse_args()

    url, started = server_url(args.engine)
    try:
        client = build_client(args.engine, url, http_compress=args.http_compress, timeout=120)
        with tempfile.TemporaryDirectory(prefix="rds-index-bench-") as tmp:
            n, source = stage(args.docs, tmp)
            bodies = raw_bodies(tmp, args.batch_size)
            mb = sum(map(len, bodies)) / 1e6
            print(f"# {args.engine}: {n} docs, {mb:.1f} MB of bulk NDJSON, batch {args.batch_size}, "
                  f"http_compress={args.http_compress}; raw filter_path={args.raw_filter_path}; input: {source}")
            workers = args.max_workers
            options = {side: BulkOptions(batch_size=args.batch_size, max_chunk_bytes=100 * 1024 * 1024,
                                         es_timeout=120, max_workers=w)
                       for side, w in (("ours1", 1), ("oursN", workers))}
            sides = ("raw", "ours1", "oursN")
            secs_all: dict[str, list[float]] = {side: [] for side in sides}
            ratios: dict[str, list[float]] = {"ours1": [], "oursN": []}
            wn, rn = f"ours w={workers}", f"w={workers}/raw"
            print(f"  {'round':<8} {'raw 1 conn':>11} {'ours w=1':>10} {wn:>10} {'w=1/raw':>8} {rn:>8}   machine CPU "
                  f"busy (of {os.cpu_count()} cores) raw / w=1 / w={workers}   our CPU s w=1 / w={workers}")
            # round 0 warms the JVM and the page cache for all sides and is not counted; the order of the sides
            # rotates so drift (merges, other load on the machine) hits all alike
            for r in range(-1, args.rounds):
                secs: dict[str, float] = {}
                busy: dict[str, float] = {}
                cpu: dict[str, float] = {}
                k = r % len(sides)
                for side in sides[k:] + sides[:k]:
                    reset(client, args.engine)
                    b0, c0 = machine_busy()
                    if side == "raw":
                        secs[side] = raw_bulk(url, bodies, args.http_compress, args.raw_filter_path)
                    else:
                        t0 = time.monotonic()
                        stats = index_staging(client, tmp, engine=args.engine, options=options[side])
                        secs[side] = time.monotonic() - t0
                        if sum(s["indexed"] for _, s in stats) != n:
                            raise RuntimeError(f"{side} indexed {sum(s['indexed'] for _, s in stats)} of {n}")
                    b1, c1 = machine_busy()
                    busy[side] = (b1 - b0) / secs[side]
                    cpu[side] = c1 - c0
                    got = count(client, args.engine)
                    if got != n:
                        raise RuntimeError(f"{side}: {got} documents in the index, expected {n}")
                if r >= 0:
                    for side in sides:
                        secs_all[side].append(secs[side])
                    for side in ratios:
                        ratios[side].append(secs["raw"] / secs[side])
                print(f"  {'warm-up' if r < 0 else f'round {r + 1}':<8} {n / secs['raw']:11.0f} "
                      f"{n / secs['ours1']:10.0f} {n / secs['oursN']:10.0f} {secs['raw'] / secs['ours1']:8.3f} "
                      f"{secs['raw'] / secs['oursN']:8.3f}   {busy['raw']:5.2f} / {busy['ours1']:5.2f} / "
                      f"{busy['oursN']:5.2f}{'':26}{cpu['ours1']:.2f} / {cpu['oursN']:.2f}")
            med = {side: statistics.median(v) for side, v in secs_all.items()}
            print(f"median of {args.rounds}: raw (1 sequential connection) {n / med['raw']:.0f} docs/s | "
                  f"ours w=1 {n / med['ours1']:.0f} docs/s (ratio of medians {med['raw'] / med['ours1']:.3f}, "
                  f"median paired {statistics.median(ratios['ours1']):.3f}) | ours w={workers} "
                  f"{n / med['oursN']:.0f} docs/s (ratio of medians {med['raw'] / med['oursN']:.3f}, median paired "
                  f"{statistics.median(ratios['oursN']):.3f}) (target >= 0.9)")
            reset(client, args.engine)
            raw_request(client, args.engine, "DELETE", f"/_index_template/{PREFIX}")
    finally:
        if started:
            subprocess.run([str(ROOT / "scripts" / "search-engine.sh"), "stop", args.engine], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
