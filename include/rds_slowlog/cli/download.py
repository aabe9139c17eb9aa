"""``rds-slowlog download``: fetch an instance's slow-log files for a time window into a directory.

The options, the per-file table (or JSON) and the exit status; the download itself is
:func:`rds_slowlog.download.download_files`. Each file lands under ``--out`` with its RDS name
(``slowquery/mysql-slowquery.log.2024-03-01.10``), and the report says per file how it was read and what, if
anything, was lost.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from rds_slowlog.cli.common import parse_time
from rds_slowlog.download import describe_error, download_files

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``rds-slowlog download`` (credentials come from the standard AWS chain)."""
    p.add_argument("--instance", required=True, metavar="ID", help="DB instance identifier")
    p.add_argument("--since", required=True, type=parse_time, metavar="T",
                   help="window start: ISO 8601 (naive = UTC) or epoch seconds")
    p.add_argument("--until", type=parse_time, metavar="T", help="window end (default: now)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="directory to write the files under")
    p.add_argument("--endpoint-url", help="RDS endpoint (e.g. the rds-emulator's endpoint_url)")
    p.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    p.add_argument("--engine", choices=("mysql", "postgres"),
                   help="which logs to fetch (default: both kinds found on the instance)")
    p.add_argument("--method", choices=("auto", "complete", "portions"), default="auto",
                   help="auto: complete-file REST download, falling back to DownloadDBLogFilePortion "
                        "(default); complete: REST only; portions: portions only")
    p.add_argument("--api-version", choices=("v13", "v19"), default="v13",
                   help="path prefix of the complete-file endpoint (AWS retires v13 after 2027-03-01)")
    p.add_argument("--max-attempts", type=int, default=10, help="botocore attempts per call (adaptive mode)")
    p.add_argument("--pace", type=float, default=0.1, metavar="SECONDS",
                   help="minimum interval between API calls (default 0.1: under RDS's ~12 requests/s)")
    p.add_argument("--lines", type=int, default=10_000, help="largest NumberOfLines per portion")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--strict", action="store_true", help="exit 1 when any data was lost, not only on errors")


def run(args: argparse.Namespace, *, client: Any = None, out: TextIO | None = None) -> int:
    """Download every file of the window; print one line (or JSON object) per file. Returns the exit status.

    0: every file was read (any loss is flagged in the output); 1: a file or the listing failed, or data was
    lost and ``--strict`` was given; 2: bad arguments. ``client`` overrides the RDS client (tests).
    """
    from rds_slowlog.sources.rds import RdsLogSource, make_rds_client

    stdout = out or sys.stdout
    until = args.until if args.until is not None else time.time()
    if until <= args.since:
        print("rds-slowlog download: --until must be after --since", file=sys.stderr)
        return 2
    try:
        if client is None:
            client = make_rds_client(args.region, args.endpoint_url, max_attempts=args.max_attempts)
        source = RdsLogSource(
            client, args.instance, args.engine, complete_file=args.method != "portions",
            fallback=args.method == "auto", api_version=args.api_version, number_of_lines=args.lines,
            pace=args.pace,
        )
        refs = source.list_files(args.since, until)
    except Exception as exc:  # no credentials, unknown instance, endpoint down (fails in seconds): one line
        print(f"rds-slowlog download: listing {args.instance} failed: {describe_error(exc)}", file=sys.stderr)
        return 1

    started = time.monotonic()
    rows, failed = download_files(source, refs, args.out)
    lost = any(row.get("losses") for row in rows)
    if args.json:
        json.dump({"instance": args.instance, "since": args.since, "until": until, "files": rows,
                   "seconds": round(time.monotonic() - started, 3)}, stdout, indent=2)
        stdout.write("\n")
    else:
        _print_table(rows, stdout)
    if failed or (lost and args.strict):
        return 1
    return 0


def _print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    header = ("file", "bytes", "method", "calls", "retries", "trunc", "status")
    table = [header]
    notes: list[str] = []
    for r in rows:
        if r.get("error"):
            status = "FAILED"
            notes.append(f"{r['name']}: {r['error']}")
        elif r.get("losses"):
            status = f"LOSS x{len(r['losses'])}"
            for loss in r["losses"]:
                approx = "?" if loss["approx_bytes"] is None else loss["approx_bytes"]
                notes.append(f"{r['name']}: lost ~{approx} bytes at offset {loss['offset']}: {loss['reason']}")
        else:
            status = "ok"
        if r.get("fallback"):
            notes.append(f"{r['name']}: complete-file download unavailable ({r['fallback']}), used portions")
        table.append((r["name"], str(r.get("bytes", 0)), str(r.get("method", "-")), str(r.get("calls", 0)),
                      str(r.get("retries", 0)), str(r.get("truncations", 0)), status))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = [c.ljust(w) if i in (0, 2, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        out.write("  ".join(cells).rstrip() + "\n")
    if not rows:
        out.write("(no slow-log files in the window)\n")
    for note in notes:
        out.write(f"! {note}\n")
