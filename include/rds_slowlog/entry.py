"""The one record every parser yields and every later stage consumes.

Entries are created once per log event on the hot path, so the class is slotted and holds plain values:
epoch seconds instead of ``datetime`` objects (converted only when a document is built) and the query as
``str`` decoded with ``surrogateescape`` so that invalid UTF-8 bytes survive the round trip
(``entry.query.encode("utf-8", "surrogateescape")`` gives the original bytes back).
"""
from __future__ import annotations

from typing import Any

#: Attribute values as typed by the parsers: ``Yes``/``No`` → bool, integers → int, decimals → float.
AttrValue = int | float | bool | str


def in_window(end_time: float | None, since: float | None, until: float | None) -> bool:
    """Whether an entry written at ``end_time`` belongs to ``[since, until)`` (open ends allowed).

    Membership is by write time, the rule the hourly windows use, so every entry lands in exactly one
    window; an entry whose write time is unknown belongs to no bounded window.
    """
    if since is not None and (end_time is None or end_time < since):
        return False
    return not (until is not None and (end_time is None or end_time >= until))


class Entry:
    """One slow-log event (a MySQL entry or a PostgreSQL ``duration:`` query).

    ``end_time`` is the moment the entry was written to the log (MySQL ``# Time:``, PostgreSQL's line
    timestamp) and decides window membership; ``start_time`` is when the statement began
    (``SET timestamp=`` for MySQL, ``end_time - duration`` otherwise). Either may be ``None`` when the log
    does not say (an entry before the first ``# Time:`` line).
    """

    __slots__ = (
        "engine", "query", "duration", "end_time", "start_time", "attrs", "user", "host", "ip", "db",
        "thread_id", "source", "offset", "line", "length", "truncated", "flags",
    )

    def __init__(
        self,
        engine: str,
        query: str,
        duration: float | None = None,
        end_time: float | None = None,
        start_time: float | None = None,
        attrs: dict[str, AttrValue] | None = None,
        user: str | None = None,
        host: str | None = None,
        ip: str | None = None,
        db: str | None = None,
        thread_id: int | None = None,
        source: str = "<stream>",
        offset: int = 0,
        line: int = 0,
        length: int = 0,
        truncated: bool = False,
        flags: tuple[str, ...] = (),
    ) -> None:
        self.engine = engine          # "mysql" | "postgres"
        self.query = query            # statement text, surrogateescape-decoded
        self.duration = duration      # seconds (MySQL Query_time, PostgreSQL duration / 1000)
        self.end_time = end_time      # epoch seconds, write time
        self.start_time = start_time  # epoch seconds
        self.attrs = attrs if attrs is not None else {}
        self.user = user
        self.host = host
        self.ip = ip
        self.db = db
        self.thread_id = thread_id    # MySQL thread id / PostgreSQL pid
        self.source = source          # provenance: source name (file path, s3 key, rds file name)
        self.offset = offset          # byte offset of the entry's first byte in the source
        self.line = line              # 1-based line number of the entry's first line
        self.length = length          # bytes the entry spans in the source
        self.truncated = truncated    # cut by RDS's "[Your log message was truncated]" or a size cap
        self.flags = flags            # other conditions worth keeping (e.g. "invalid_utf8", "no_time")

    def query_bytes(self) -> bytes:
        """The query exactly as it was in the log, invalid UTF-8 included."""
        return self.query.encode("utf-8", "surrogateescape")

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return (
            f"Entry({self.engine!r}, {self.query[:60]!r}, duration={self.duration!r}, "
            f"end_time={self.end_time!r}, source={self.source!r}, offset={self.offset})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and self.as_dict() == other.as_dict()
