#!/usr/bin/env python3
"""Parse + fingerprint/classify one log and nothing else (the issue's "parse+fingerprint throughput"),
for ``bench/run.py`` to time as a child process like the anchor tools.

    bench/stage.py FILE [--engine mysql|postgres|auto]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from rds_slowlog.pipeline import Classifiers, classified, read_path  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--engine", default="auto")
    args = ap.parse_args()
    run, stream = read_path(args.file, args.engine)
    with stream:
        n = 0
        ids = set()
        for _, qc in classified(run, Classifiers()):
            n += 1
            ids.add(qc.query_id)
    print(f"{run.engine} entries={n} classes={len(ids)} quarantined_lines={run.stats.quarantined_lines}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
