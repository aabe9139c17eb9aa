"""Engine detection and parser construction, so callers can say ``--engine auto``.

Detection reads only the first 64 KiB: a PostgreSQL stderr line starts with a timestamp and carries a
``LOG:``/``ERROR:`` severity; a MySQL slow log has ``# Time:``/``# User@Host:``/``# Query_time:`` headers.
"""
from __future__ import annotations

import re
from typing import Any, BinaryIO, Final

from rds_slowlog.parsers.base import ParseStats

ENGINES: Final = ("mysql", "postgres")
_PG_LINE = re.compile(
    rb"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d.*?\b(LOG|ERROR|STATEMENT|DETAIL|FATAL|WARNING|HINT|CONTEXT|PANIC|NOTICE|INFO|DEBUG\d?):  ",
    re.M,
)
_MYSQL_HEADER = re.compile(rb"^# (Time|User@Host|Query_time|Thread_id): ", re.M)
DETECT_BYTES: Final = 65536


def detect_engine(head: bytes, default: str = "mysql") -> str:
    """``mysql`` or ``postgres`` from the first bytes of a log; ``default`` when neither is recognisable."""
    pg = len(_PG_LINE.findall(head))
    my = len(_MYSQL_HEADER.findall(head))
    if pg == 0 and my == 0:
        return default
    return "postgres" if pg > my else "mysql"


def sniff(stream: BinaryIO) -> bytes:
    """The first bytes of a stream without consuming them (requires ``peek``, as buffered readers have)."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return b""
    head = peek(DETECT_BYTES)
    return head[:DETECT_BYTES]


class Parser:
    """What the pipeline needs from a parser (both engine parsers satisfy it)."""

    stats: ParseStats

    def parse(self, stream: BinaryIO):  # pragma: no cover - protocol
        raise NotImplementedError


def make_parser(engine: str, source: str = "<stream>", **kwargs: Any) -> Any:
    """A parser for ``engine`` (``mysql`` or ``postgres``); keyword arguments go to its constructor."""
    if engine == "mysql":
        from rds_slowlog.parsers.mysql import MySQLSlowLogParser

        kwargs.pop("log_line_prefix", None)
        return MySQLSlowLogParser(source, **kwargs)
    if engine == "postgres":
        from rds_slowlog.parsers.postgres import PostgresLogParser

        kwargs.pop("log_time_zone", None)  # PostgreSQL's prefix carries its zone on every line
        kwargs.pop("initial_time", None)   # and its time
        return PostgresLogParser(source, **kwargs)
    raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)} or 'auto'")
