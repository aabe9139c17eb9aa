"""What bench/profile_mysql.py and bench/profile_postgres.py share: the line-splitting floor, timing a set
of stages by CPU (best of N), cProfile of one stage, and the CPU of an anchor tool run as a child."""
from __future__ import annotations

import cProfile
import os
import pstats
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from rds_slowlog.logfile import open_log
from rds_slowlog.parsers.base import iter_lines

Stage = Callable[[str], int]


def stage_lines(path: str) -> int:
    """Lines only: the floor that line splitting sets for every parser."""
    with open_log(path) as f:
        return sum(1 for _ in iter_lines(f))


def child_cpu(cmd: Sequence[str]) -> float:
    """CPU seconds (user + sys) of one child process, from its own ``wait4`` rusage."""
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(list(cmd), stdout=null, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def run_stages(path: str, stages: dict[str, Stage], names: str, repeat: int, profile: str | None,
               title: str = "") -> None:
    """Print CPU s, MB/s and entries/s per stage (best of ``repeat``), or cProfile ``profile`` alone."""
    size_mb = os.path.getsize(path) / 1e6
    if profile:
        prof = cProfile.Profile()
        prof.runcall(stages[profile], path)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    print(f"{path}: {size_mb:.1f} MB{title}")
    print(f"{'stage':<10} {'cpu s':>8} {'MB/s':>8} {'entries/s':>10}")
    for name in names.split(","):
        fn = stages[name]
        best = float("inf")
        count = 0
        for _ in range(repeat):
            t0 = time.process_time()
            count = fn(path)
            best = min(best, time.process_time() - t0)
        unit = "lines/s" if name == "lines" else ""
        print(f"{name:<10} {best:8.2f} {size_mb / best:8.1f} {count / best:10.0f} {unit}")


def print_anchor(label: str, cpu: float | None, path: str) -> None:
    if cpu is None:
        print(f"{label}: not installed")
    else:
        print(f"{label:<10} {cpu:8.2f} {os.path.getsize(path) / 1e6 / cpu:8.1f}")


def pipeline_stages(engine: str, make_parser: Callable[[str], Any],
                    reset: Callable[[], None] = lambda: None) -> dict[str, Stage]:
    """``lines``, ``parse``, ``classify`` and ``digest`` stages for one engine's parser; each re-reads the file
    and adds one step, so the difference between two rows is what that step costs. ``reset`` clears caches
    that would otherwise carry over from an earlier stage."""
    from rds_slowlog.digest import Digest
    from rds_slowlog.pipeline import Classifiers, LogRun, classified

    def run(path: str, f: Any) -> LogRun:
        p = make_parser(path)
        return LogRun(source=path, engine=engine, stats=p.stats, entries=p.parse(f))

    def parse(path: str) -> int:
        with open_log(path) as f:
            return sum(1 for _ in make_parser(path).parse(f))

    def classify(path: str) -> int:
        reset()
        with open_log(path) as f:
            return sum(1 for _ in classified(run(path, f), Classifiers()))

    def digest(path: str) -> int:
        reset()
        with open_log(path) as f:
            r = run(path, f)
            d = Digest()
            d.add_all(classified(r, Classifiers()))
            d.as_pt_json()
        return r.stats.entries

    return {"lines": stage_lines, "parse": parse, "classify": classify, "digest": digest}
