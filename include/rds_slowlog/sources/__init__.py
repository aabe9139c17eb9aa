"""Where log bytes come from: a :class:`LogSource` lists the files of a window and streams each one.

``rds`` reads through the RDS API (botocore is imported only when a client is built or a call is made).
"""
from __future__ import annotations

from rds_slowlog.sources.base import DownloadReport, LogFileRef, LogSource, Loss, Resume, SourceStream
from rds_slowlog.sources.rds import Pacer, RdsLogSource, make_rds_client

__all__ = [
    "DownloadReport",
    "LogFileRef",
    "LogSource",
    "Loss",
    "Pacer",
    "RdsLogSource",
    "Resume",
    "SourceStream",
    "make_rds_client",
]
