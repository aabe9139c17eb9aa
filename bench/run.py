#!/usr/bin/env python3
"""Benchmark: our parse+fingerprint+digest throughput and peak RSS against the anchor tools, in one run.

Every command runs as a child process and is measured the same way (wall time with ``time.monotonic``,
peak RSS from that child's own ``wait4`` rusage), so the figures printed side by side are comparable.
The machine is shared and noisy: compare ratios within one run, and read medians.

    bench/run.py [--mysql FILE] [--postgres FILE] [--repeat N] [--ref-repeat N] [--gib-rss]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rds-slowlog" / "bench"
PY = sys.executable
OURS = [PY, "-m", "rds_slowlog.cli"]
RDS_PREFIX = "%t:%r:%u@%d:[%p]:"


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB, exit code) of one child process (VmHWM sampling, see testing/measure.py)."""
    from rds_slowlog.testing.measure import measure as run

    m = run(cmd, cwd=str(ROOT))
    return m.seconds, m.peak_rss_mb, m.returncode


def run_many(label: str, cmd: list[str], repeat: int) -> dict[str, float]:
    secs, rss = [], []
    for _ in range(repeat):
        s, r, rc = measure(cmd)
        if rc != 0:
            print(f"  {label}: exit code {rc} for {' '.join(cmd)}", file=sys.stderr)
        secs.append(s)
        rss.append(r)
    return {"seconds": statistics.median(secs), "all": secs, "rss": max(rss)}


def count_entries(engine: str, path: Path) -> int:
    sys.path.insert(0, str(ROOT / "include"))
    from rds_slowlog.pipeline import read_path

    run, stream = read_path(path, engine)
    with stream:
        n = sum(1 for _ in run.entries)
    return n


def row(name: str, r: dict[str, float], mib: float, entries: int, base: float | None) -> str:
    s = r["seconds"]
    ratio = f"{base / s:6.1f}x" if base else "     -"
    runs = ", ".join(f"{x:.1f}" for x in r["all"])
    return (f"  {name:<34} {s:8.1f} s {mib / s:8.1f} MiB/s {entries / s:10.0f} entries/s "
            f"{r['rss']:7.0f} MB  {ratio}   (runs: {runs})")


def bench_engine(engine: str, path: Path, repeat: int, ref_repeat: int) -> None:
    mib = path.stat().st_size / (1 << 20)
    entries = count_entries(engine, path)
    print(f"\n{engine}: {path} — {mib:.0f} MiB, {entries} entries")
    stage = run_many("ours", [PY, str(ROOT / "bench" / "stage.py"), "--engine", engine, str(path)], repeat)
    ours = run_many("ours", OURS + ["digest", "--engine", engine, "--output", "json", "--limit", "0",
                                    "--no-progress", str(path)], repeat)
    if engine == "mysql":
        tool = shutil.which("pt-query-digest")
        ref_name = "pt-query-digest --output json"
        ref_cmd = [tool, "--output", "json", "--limit", "100%", str(path)] if tool else None
    else:
        tool = shutil.which("pgbadger")
        ref_name = "pgbadger -j 1 -o out.json"
        out = tempfile.mktemp(suffix=".json")
        ref_cmd = [tool, "-j", "1", "-f", "stderr", "--prefix", RDS_PREFIX, "-q", "-o", out, str(path)] if tool else None
    print(f"  {'tool':<34} {'median':>10} {'throughput':>14} {'rate':>21} {'peak RSS':>10}  speed-up vs anchor")
    if ref_cmd is None:
        print(f"  {ref_name}: not installed (apt-get install percona-toolkit pgbadger)")
        print(row("rds-slowlog parse+fingerprint", stage, mib, entries, None))
        print(row("rds-slowlog digest --output json", ours, mib, entries, None))
        return
    ref = run_many(ref_name, ref_cmd, ref_repeat)
    print(row(ref_name, ref, mib, entries, None))
    print(row("rds-slowlog parse+fingerprint", stage, mib, entries, ref["seconds"]))
    print(row("rds-slowlog digest --output json", ours, mib, entries, ref["seconds"]))


def gib_rss(path: Path) -> None:
    """Peak RSS of our digest over a ≥ 1 GiB input: the bench log repeated through a pipe, never on disk."""
    size = path.stat().st_size
    times = max(1, -(-(1 << 30) // size))
    fifo_dir = tempfile.mkdtemp()
    fifo = Path(fifo_dir) / "big.log"
    os.mkfifo(fifo)
    feeder = subprocess.Popen(["bash", "-c", f"for i in $(seq {times}); do cat '{path}'; done > '{fifo}'"])
    s, rss, rc = measure(OURS + ["digest", "--engine", "mysql", "--output", "json", "--no-progress", str(fifo)])
    feeder.wait()
    shutil.rmtree(fifo_dir)
    print(f"\npeak RSS over {times * size / (1 << 30):.2f} GiB of MySQL slow log (fed through a FIFO): "
          f"{rss:.0f} MB in {s:.0f} s (target <= 256 MB), exit {rc}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mysql", type=Path, default=CACHE / "mysql-slowquery.log")
    ap.add_argument("--postgres", type=Path, default=CACHE / "postgresql.log")
    ap.add_argument("--repeat", type=int, default=3, help="runs of our tool (median reported)")
    ap.add_argument("--ref-repeat", type=int, default=1, help="runs of each anchor tool (they are slow)")
    ap.add_argument("--no-gib", action="store_true", help="skip the 1 GiB peak-RSS run")
    args = ap.parse_args()
    for f in (args.mysql, args.postgres):
        if not f.exists():
            print(f"missing {f}: run `make bench-logs` (bench/make_logs.py) first", file=sys.stderr)
            return 2
    print(f"rds-slowlog benchmark — {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"load {os.getloadavg()[0]:.2f}")
    bench_engine("mysql", args.mysql, args.repeat, args.ref_repeat)
    bench_engine("postgres", args.postgres, args.repeat, args.ref_repeat)
    if not args.no_gib:
        gib_rss(args.mysql)
    return 0


if __name__ == "__main__":
    sys.exit(main())
