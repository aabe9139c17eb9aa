#!/usr/bin/env python3
"""Conformance: our PostgreSQL log parser against pgBadger on pgBadger's own test fixtures.

For every fixture in ``../shared/conformance/pgbadger-fixtures`` this runs
``pgbadger -q -j 1 -f stderr --prefix PREFIX -o out.json FILE`` and compares, with what
:class:`PostgresLogParser` yields (same prefix):

* the number of queries — pgBadger's ``overall_stat.queries_number`` (``statement:`` and ``execute``
  events; the "Number of queries" of its report),
* their total duration in ms — ``overall_stat.postgres.queries_duration.execute`` (pgBadger files every
  query's duration under ``execute``; ``prepare`` and ``bind`` hold the parse/bind phases),
* the parse and bind phase totals — ``queries_duration.prepare`` / ``.bind`` against the sums of our
  ``attrs["parse_ms"]`` / ``attrs["bind_ms"]``.

Not compared, printed for information: error counts. pgBadger's ``errors_number`` counts every event it
files under ``error_info``, which also takes some LOG-level lines ("database system was shut down at …"
in rds/light, "process … still waiting for AccessShareLock" in queryid); ours (``stats.errors``) counts
ERROR/FATAL/PANIC severities only, so pgBadger is higher by exactly those lines (3/2, 1/0, 4/3).

Each fixture's ``log_line_prefix`` is not recorded in the fixture itself; :data:`FIXTURES` gives the one
that reproduces pgBadger's own test expectations (``light.postgres.log.bz2`` → 629 queries, as its
``t/03_consistency.t`` asserts) and explains how it was read off the lines. Deliberate differences go in
:data:`EXPECTED_DIFFERENCES` with their reason (there are none today); everything else must be equal.
Prints a table with timings and exits 1 on any unexplained difference.

    bench/postgres_conformance.py [--corpus DIR] [--jobs N] [FILE ...]
    bench/postgres_conformance.py --speed 6      # throughput on ~106 MiB (rds.log x 6)
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from rds_slowlog.logfile import open_log  # noqa: E402
from rds_slowlog.parsers.postgres import RDS_LOG_LINE_PREFIX, PostgresLogParser  # noqa: E402

CORPUS = ROOT.parent / "shared" / "conformance" / "pgbadger-fixtures"

#: fixture → its log_line_prefix (and how we know)
FIXTURES: dict[str, tuple[str, str]] = {
    "rds.log.bz2": (RDS_LOG_LINE_PREFIX, "RDS's fixed prefix (corpus README)"),
    "pg-timezones.log": (RDS_LOG_LINE_PREFIX, "RDS shape; %r printed without a port"),
    "light.postgres.log.bz2": ("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
                               "read off the lines; pgBadger's t/03_consistency.t expects 629 queries"),
    "begin_end.log": ("%t [%p]: db=%d,user=%u,app=%a,client=%h ", "as pgBadger's own tests pass it"),
    "multiline_param.log": ("%m [%p] user=%u,db=%d ", "read off the lines (ms timestamps)"),
    "postgresql_param_range.log": ("%t [%p]: [%l-1] [%x] usr=%u,db=%d,appli=%a ",
                                   "read off the lines ([0] is the transaction id %x)"),
    "queryid.log.gz": ("%m [%p] [queryid=%Q] %u@%d ", "read off the lines (%Q: PostgreSQL 14+ query id)"),
    "stmt_type.log": ("%m [%p] ", "read off the lines"),
}


@dataclass(frozen=True)
class Expected:
    """A deliberate, named difference: what pgBadger reports, what we report, and why."""

    pgbadger: tuple[int, float]
    ours: tuple[int, float]
    reason: str


#: None today: every fixture agrees on count, duration and phase sums. A future one must say why here.
EXPECTED_DIFFERENCES: dict[str, Expected] = {}

#: Durations are printed with 3 decimals and summed in different orders.
TOLERANCE_MS = 0.01


@dataclass(frozen=True)
class Result:
    name: str
    count: int
    duration_ms: float
    parse_ms: float
    bind_ms: float
    seconds: float
    extra: str = ""


def run_pgbadger(path: Path, prefix: str, exe: str = "pgbadger") -> Result:
    with tempfile.TemporaryDirectory(prefix="pgb-conf-") as tmp:
        out = Path(tmp) / "out.json"
        t0 = time.monotonic()
        proc = subprocess.run(
            # own pid dir: pgBadger refuses to start (rc 3) while another run holds /tmp/pgbadger.pid
            [exe, "-q", "-j", "1", "-f", "stderr", "--prefix", prefix, "--pid-dir", tmp, "-o", str(out), str(path)],
            capture_output=True, text=True, timeout=300, check=False,
        )
        seconds = time.monotonic() - t0
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"pgbadger failed on {path.name} (rc={proc.returncode}): {proc.stderr[-500:]}")
        data = json.loads(out.read_text())
    overall = data["overall_stat"]
    qd = overall.get("postgres", {}).get("queries_duration", {})
    return Result(path.name, int(overall["queries_number"]), float(qd.get("execute") or 0),
                  float(qd.get("prepare") or 0), float(qd.get("bind") or 0), seconds,
                  f"errors={overall.get('errors_number', 0)}")


def run_ours(path: Path, prefix: str) -> Result:
    parser = PostgresLogParser(path.name, log_line_prefix=prefix)
    count, dur, parse_ms, bind_ms = 0, 0.0, 0.0, 0.0
    t0 = time.monotonic()
    with open_log(path) as fh:
        for e in parser.parse(fh):
            count += 1
            dur += (e.duration or 0.0) * 1000.0
            parse_ms += float(e.attrs.get("parse_ms", 0.0))
            bind_ms += float(e.attrs.get("bind_ms", 0.0))
    seconds = time.monotonic() - t0
    st = parser.stats
    return Result(path.name, count, dur, parse_ms, bind_ms, seconds,
                  f"errors={st.errors} noise={st.noise_lines} quarantined={st.quarantined_lines}")


def verdict(pgb: Result, ours: Result) -> str:
    same = (pgb.count == ours.count and abs(pgb.duration_ms - ours.duration_ms) <= TOLERANCE_MS
            and abs(pgb.parse_ms - ours.parse_ms) <= TOLERANCE_MS and abs(pgb.bind_ms - ours.bind_ms) <= TOLERANCE_MS)
    exp = EXPECTED_DIFFERENCES.get(pgb.name)
    if exp is None:
        return "equal" if same else "DIFF (unexplained)"
    if (pgb.count, round(pgb.duration_ms, 3)) == exp.pgbadger and (ours.count, round(ours.duration_ms, 3)) == exp.ours:
        return f"expected: {exp.reason}"
    return "DIFF (named exception no longer matches: revisit it)"


def corpus_files(corpus: Path) -> list[Path]:
    return [corpus / name for name in FIXTURES if (corpus / name).exists()]


def run_all(files: list[Path], jobs: int = 2, pgbadger_exe: str = "pgbadger") -> list[tuple[Result, Result, str]]:
    def one(path: Path) -> tuple[Result, Result, str]:
        prefix = FIXTURES[path.name][0]
        pgb = run_pgbadger(path, prefix, pgbadger_exe)
        ours = run_ours(path, prefix)
        return pgb, ours, verdict(pgb, ours)

    # the biggest file first, so the pool is not left waiting on it at the end
    files = sorted(files, key=lambda p: -p.stat().st_size)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, files))


def print_table(rows: list[tuple[Result, Result, str]]) -> None:
    head = (f"{'fixture':<28} {'pgB n':>7} {'ours n':>7} {'pgB ms':>12} {'ours ms':>12} "
            f"{'pgB parse/bind':>15} {'ours parse/bind':>15} {'pgB s':>6} {'ours s':>7}  verdict")
    print(head)
    print("-" * len(head))
    for pgb, ours, v in rows:
        print(f"{pgb.name:<28} {pgb.count:>7} {ours.count:>7} {pgb.duration_ms:>12.3f} {ours.duration_ms:>12.3f} "
              f"{pgb.parse_ms:>7.3f}/{pgb.bind_ms:<7.3f} {ours.parse_ms:>7.3f}/{ours.bind_ms:<7.3f} "
              f"{pgb.seconds:>6.2f} {ours.seconds:>7.3f}  {v}")
        print(f"{'':<28} pgBadger {pgb.extra}; ours {ours.extra}")
    tp = sum(p.seconds for p, _, _ in rows)
    to = sum(o.seconds for _, o, _ in rows)
    print(f"total time: pgBadger {tp:.1f} s, ours {to:.2f} s")


def speed(corpus: Path, copies: int = 6) -> dict[str, float]:
    """Parser and normaliser throughput on ``rds.log.bz2`` decompressed ``copies`` times (~18 MB each).

    Parses from memory so disk and decompression are not measured; reports wall and CPU time (the CPU
    figure is the one to trust on a shared machine).
    """
    import io

    from rds_slowlog.fingerprint import postgres as fp

    with open_log(corpus / "rds.log.bz2") as fh:
        one = fh.read()
    data = one * copies
    parser = PostgresLogParser("speed")
    w0, c0 = time.perf_counter(), time.process_time()
    queries = [e.query for e in parser.parse(io.BytesIO(data))]
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    mib = len(data) / 2**20
    distinct = list(dict.fromkeys(queries))
    c1 = time.process_time()
    for q in distinct:
        fp._normalize(q)  # uncached
    per_distinct = (time.process_time() - c1) / max(1, len(distinct))
    c2 = time.process_time()
    for q in queries:
        fp.normalize(q)  # through the LRU cache, as the pipeline calls it
    per_entry = (time.process_time() - c2) / max(1, len(queries))
    out = {"MiB": mib, "entries": float(len(queries)), "wall_s": wall, "cpu_s": cpu,
           "MiB_per_s_wall": mib / wall, "MiB_per_s_cpu": mib / cpu,
           "normalize_uncached_us": per_distinct * 1e6, "normalize_cached_us": per_entry * 1e6,
           "distinct_queries": float(len(distinct)),
           "classes": float(len({fp.normalize(q) for q in distinct}))}
    for k, v in out.items():
        print(f"{k:>24}: {v:,.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("files", nargs="*", help="fixture names (default: all known)")
    ap.add_argument("--speed", type=int, metavar="COPIES", default=0,
                    help="only measure throughput on rds.log x COPIES (6 ≈ 106 MiB)")
    args = ap.parse_args(argv)
    if args.speed:
        speed(args.corpus, args.speed)
        return 0
    exe = shutil.which("pgbadger")
    if exe is None:
        print("pgbadger is not installed (apt-get install pgbadger)", file=sys.stderr)
        return 2
    files = [args.corpus / f for f in args.files] if args.files else corpus_files(args.corpus)
    rows = run_all(files, jobs=args.jobs, pgbadger_exe=exe)
    print_table(rows)
    return 1 if any(v.startswith("DIFF") for _, _, v in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
