"""Fetch an instance's slow-log files for a time window into a directory (``rds-slowlog download``'s core).

This is the RDS source without the rest of the pipeline: useful to look at what RDS actually serves, to keep a
copy before the 24 h retention deletes it, and to compare the complete-file and portion methods. Each file lands
under the output directory with its RDS name (``slowquery/mysql-slowquery.log.2024-03-01.10``), written to
``.part`` and renamed when done, and the per-file row says how it was read and what, if anything, was lost.
The command line (options, the table, exit codes) is :mod:`rds_slowlog.cli.download`.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rds_slowlog.sources.base import LogFileRef, LogSource

__all__ = ["download_files", "describe_error"]


def _target(out: Path, name: str) -> Path:
    """Where a file goes under ``out``; RDS names are relative POSIX paths and must stay inside ``out``."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or not rel.parts or any(part in ("", ".", "..") for part in rel.parts):
        raise ValueError(f"refusing unsafe log file name {name!r}")
    return out.joinpath(*rel.parts)


def download_files(source: LogSource, refs: Iterable[LogFileRef],
                   out: Path) -> tuple[list[dict[str, Any]], bool]:
    """Download each of ``refs`` under ``out``: ``(one row per file in order, whether any file failed)``.

    A row has ``name``, ``listed_size``, ``path`` (or ``error``: one bad file does not stop the others, and leaves
    no ``.part`` behind), the stream's report (``bytes``, ``method``, ``calls``, ``retries``, ``losses``, …) and
    ``seconds``.
    """
    rows: list[dict[str, Any]] = []
    failed = False
    for ref in refs:
        row: dict[str, Any] = {"name": ref.name, "listed_size": ref.size}
        t0 = time.monotonic()
        part: Path | None = None
        stream = None
        try:
            target = _target(out, ref.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            stream = source.open(ref)
            with open(part, "wb") as f:
                shutil.copyfileobj(stream, f, 1 << 20)
            os.replace(part, target)
            row["path"] = str(target)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            failed = True
            row["error"] = describe_error(exc)
            if part is not None and part.exists():
                part.unlink()
        finally:
            if stream is not None:
                row.update(stream.report.as_dict())
                stream.close()
        row["seconds"] = round(time.monotonic() - t0, 3)
        rows.append(row)
    return rows, failed


def describe_error(exc: BaseException) -> str:
    """One line for a failed RDS call: the endpoint that cannot be reached, RDS's error code and message, or
    the exception."""
    from rds_slowlog.sources.aws import describe_unreachable, is_unreachable

    if is_unreachable(exc):  # refused, no route, DNS, connect timeout: name the endpoint, say why
        return describe_unreachable(exc, "the RDS endpoint") + "; check --endpoint-url and --region"
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code')}: {err.get('Message')}"
    return f"{type(exc).__name__}: {exc}"
