#!/usr/bin/env python3
"""Conformance: our MySQL slow-log parser against pt-query-digest on Percona Toolkit's own sample logs.

For every file in ``../shared/conformance/percona-slowlogs`` this runs
``pt-query-digest --output json --limit 100%`` and compares, with what :class:`MySQLSlowLogParser` yields:

* the number of events (pt's ``global.query_count``, the "Overall: N total" of its report),
* the sums of ``Query_time``, ``Lock_time``, ``Rows_sent`` and ``Rows_examined`` (pt's ``global.metrics``).

Where we differ on purpose the difference is listed in :data:`EXPECTED_DIFFERENCES` with its reason;
everything else must be equal. Prints a table and exits 1 on any unexplained difference.

    bench/mysql_conformance.py [--corpus DIR] [--jobs N] [FILE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from rds_slowlog.logfile import open_log  # noqa: E402
from rds_slowlog.parsers.mysql import MySQLSlowLogParser  # noqa: E402

CORPUS = ROOT.parent / "shared" / "conformance" / "percona-slowlogs"
METRICS = ("Query_time", "Lock_time", "Rows_sent", "Rows_examined")


@dataclass(frozen=True)
class Expected:
    """A deliberate, named difference: what pt reports, what we report, and why."""

    pt_count: int
    our_count: int
    reason: str
    pt_sums: dict[str, float] | None = field(default_factory=dict)  # None: pt varies, must agree with ours
    our_sums: dict[str, float] = field(default_factory=dict)


EXPECTED_DIFFERENCES: dict[str, Expected] = {
    "slow017.txt": Expected(
        pt_count=0,
        our_count=1,
        reason=(
            "'# Query_time: 18446744073708.796870.000036' is a MySQL bug (a negative time printed unsigned, "
            "two numbers run together). pt-query-digest's aggregator fails to compile ('Failed to compile "
            "Query_time handler code') and reports no event at all; we keep the entry with duration=None, "
            "the raw text in attrs['Query_time'] and the flag 'bad_query_time', so it is not lost silently."
        ),
        # pt's half-finished aggregation prints a varying subset of the other metrics (Perl hash order
        # decides which handlers compiled before the failure): each one it prints must equal ours
        pt_sums=None,
        our_sums={"Lock_time": 0.000036, "Rows_sent": 1, "Rows_examined": 127},
    ),
    "slow019.txt": Expected(
        pt_count=3,
        our_count=3,
        reason=(
            "pt-query-digest zeroes Rows_sent/Rows_examined of '# administrator command:' events (its report "
            "shows 0 for the two Quit events that logged Rows_sent 5+9, Rows_examined 3+2); we keep the "
            "values the server wrote. Counts, Query_time and Lock_time agree."
        ),
        pt_sums={"Query_time": 0.019700, "Lock_time": 0.009453, "Rows_sent": 0, "Rows_examined": 3},
        our_sums={"Query_time": 0.019700, "Lock_time": 0.009453, "Rows_sent": 14, "Rows_examined": 8},
    ),
}


@dataclass
class Result:
    name: str
    count: int
    sums: dict[str, float]
    note: str = ""


def _decompressed(path: Path) -> bytes | None:
    """Bytes to feed pt on stdin when the file is compressed (pt reads plain files only)."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        with open_log(path) as fh:
            return fh.read()
    return None


def run_pt(path: Path, exe: str = "pt-query-digest") -> Result:
    """pt-query-digest's event count and metric sums for one file."""
    data = _decompressed(path)
    cmd = [exe, "--output", "json", "--limit", "100%", "--no-version-check"]
    proc = subprocess.run(
        cmd + (["-"] if data is not None else [str(path)]),
        input=data if data is not None else b"",
        capture_output=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout.decode("utf-8", "replace")
    i = out.find("{")
    note = " ".join(proc.stderr.decode("utf-8", "replace").split())[:160]
    if i < 0:  # pt prints nothing at all for a file without events
        return Result(path.name, 0, {}, note)
    doc = json.loads(out[i:])
    glob = doc["global"]
    sums = {m: float(glob["metrics"][m]["sum"]) for m in METRICS if m in glob.get("metrics", {})}
    return Result(path.name, int(glob.get("query_count", 0)), sums, note)


def run_ours(path: Path) -> Result:
    """Our entry count and metric sums for one file (entries without the metric add nothing, as in pt)."""
    parser = MySQLSlowLogParser(path.name)
    sums = dict.fromkeys(METRICS, 0.0)
    seen = dict.fromkeys(METRICS, False)
    count = 0
    with open_log(path) as fh:
        for e in parser.parse(fh):
            count += 1
            for m in METRICS:
                v = e.attrs.get(m)
                if v.__class__ in (int, float):
                    sums[m] += v  # type: ignore[operator]
                    seen[m] = True
    s = parser.stats
    note = f"lines={s.lines} noise={s.noise_lines} quarantined={s.quarantined_lines}"
    return Result(path.name, count, {m: v for m, v in sums.items() if seen[m]}, note)


def close(a: float, b: float) -> bool:
    """pt prints sums rounded to 6 decimals."""
    return abs(a - b) <= 1e-6 + 1e-9 * abs(b)


def sums_equal(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)


def compare(path: Path, pt_exe: str = "pt-query-digest") -> tuple[Result, Result, str]:
    """(pt, ours, verdict) where verdict is 'ok', 'expected: …' or 'DIFF: …'."""
    pt, ours = run_pt(path, pt_exe), run_ours(path)
    exp = EXPECTED_DIFFERENCES.get(path.name)
    if exp is not None:
        pt_ok = sums_equal(pt.sums, exp.pt_sums) if exp.pt_sums is not None else all(
            k in ours.sums and close(v, ours.sums[k]) for k, v in pt.sums.items()
        )
        if (pt.count, ours.count) == (exp.pt_count, exp.our_count) and pt_ok and sums_equal(ours.sums, exp.our_sums):
            return pt, ours, "expected: " + exp.reason
        return pt, ours, f"DIFF: expected difference changed (pt {pt.count}, ours {ours.count})"
    problems = []
    if pt.count != ours.count:
        problems.append(f"count pt={pt.count} ours={ours.count}")
    for m in sorted(set(pt.sums) | set(ours.sums)):
        a, b = pt.sums.get(m), ours.sums.get(m)
        if a is None or b is None or not close(a, b):
            problems.append(f"{m} pt={a} ours={b}")
    return pt, ours, ("DIFF: " + "; ".join(problems)) if problems else "ok"


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.is_file())


def run_all(files: list[Path], jobs: int = 2, pt_exe: str = "pt-query-digest") -> list[tuple[Result, Result, str]]:
    # pt is the slow side (a Perl process per file); big files first keeps the pool busy
    order = sorted(files, key=lambda p: -p.stat().st_size)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = dict(zip(order, pool.map(lambda p: compare(p, pt_exe), order)))
    return [results[p] for p in files]


def print_table(rows: list[tuple[Result, Result, str]]) -> None:
    print(f"{'file':24} {'pt n':>6} {'ours n':>6} {'pt Query_time':>15} {'ours Query_time':>15}  verdict")
    for pt, ours, verdict in rows:
        print(
            f"{pt.name:24} {pt.count:6} {ours.count:6} {pt.sums.get('Query_time', 0.0):15.6f} "
            f"{ours.sums.get('Query_time', 0.0):15.6f}  {verdict[:100]}"
        )
    ok = sum(v == "ok" for _, _, v in rows)
    exp = sum(v.startswith("expected") for _, _, v in rows)
    diff = [r for r in rows if r[2].startswith("DIFF")]
    print(f"\n{len(rows)} files: {ok} equal, {exp} expected differences, {len(diff)} unexplained")
    print(f"events: pt {sum(r[0].count for r in rows)}, ours {sum(r[1].count for r in rows)}")
    for pt, ours, verdict in rows:
        if verdict != "ok":
            print(f"- {pt.name}: {verdict}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    args = ap.parse_args(argv)
    exe = shutil.which("pt-query-digest")
    if exe is None:
        print("pt-query-digest is not installed (apt-get install percona-toolkit)", file=sys.stderr)
        return 2
    files = args.files or corpus_files(args.corpus)
    rows = run_all(files, args.jobs, exe)
    print_table(rows)
    return 1 if any(v.startswith("DIFF") for _, _, v in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
