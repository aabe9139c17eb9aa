"""``rds-slowlog`` — the seed's local debug run, grown up: parse, digest, and (later) index/download.

Everything here is a thin shell over the core pipeline; the Airflow tasks call the same functions. One module per
subcommand (``add_arguments(parser)`` and ``run(args) -> exit status``): :mod:`~rds_slowlog.cli.parse`,
:mod:`~rds_slowlog.cli.digest`, :mod:`~rds_slowlog.cli.index`, :mod:`~rds_slowlog.cli.download`; what they share
is in :mod:`~rds_slowlog.cli.common`. ``rds-emulator`` is :func:`rds_slowlog.testing.rds_emulator.main`.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rds_slowlog import __version__
from rds_slowlog.cli import digest, download, index, parse
from rds_slowlog.cli.common import EXIT_OK, EXIT_USAGE

#: ``name: (module, help)`` in the order ``--help`` lists them.
SUBCOMMANDS = {
    "parse": (parse, "one JSON document per entry (NDJSON)"),
    "digest": (digest, "per-class report like pt-query-digest"),
    "index": (index, "parse, stage and bulk-index local log files into Elasticsearch/OpenSearch"),
    "download": (download, "download a window's log files from the RDS API (same code as the DAG)"),
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rds-slowlog", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text))
    # Handled in main() before argparse so that its own options (--logs, --fault, …) pass through.
    sub.add_parser("rds-emulator", help="serve log files through an emulated RDS API (tests, demo); "
                   "see `rds-slowlog rds-emulator --help`", add_help=False)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "rds-emulator":
        from rds_slowlog.testing import rds_emulator

        return int(rds_emulator.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except BrokenPipeError:
        # the reader went away (``| head``): not an error, and no traceback at exit either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand ``args`` were parsed for; its exit status."""
    entry = SUBCOMMANDS.get(args.command)
    return entry[0].run(args) if entry else EXIT_USAGE


__all__ = ["main", "build_parser", "dispatch", "SUBCOMMANDS"]
