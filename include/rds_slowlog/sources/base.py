"""What every log source hands to the rest of the pipeline: file references, byte streams and a download report.

A source (the RDS API, CloudWatch Logs, an object store, a local directory) answers two questions: *which files
can hold entries written in a window* (``list_files``) and *what are the bytes of one of them* (``open``). The
parsers only ever see a readable binary stream, so a file read through the RDS API and the same file read from
disk parse identically. The stream carries a :class:`DownloadReport` because remote reads can lose data (RDS
truncates oversized portions) and the loss must travel with the bytes rather than vanish in a log line.
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "SETTLE_SECONDS",
    "WINDOW_SLACK",
    "DownloadReport",
    "LINE_OVER_CAP",
    "LogFileRef",
    "LogSource",
    "Loss",
    "Resume",
    "SourceStream",
    "StreamRaw",
]

SourceKind = Literal["rds", "cloudwatch", "objectstore", "local"]

#: Seconds by which a window's caller widens ``list_files`` (the sources answer exactly what they are
#: asked). RDS rotates a little after the hour (the previous file holds the first seconds of the window),
#: MariaDB's ``# Time:`` goes back and forth between adjacent seconds across a rotation (the next file
#: holds the last ones), and CloudWatch event times trail write times; the stage keeps only entries written
#: inside the window, so reading a neighbour costs time, never correctness.
WINDOW_SLACK = 300.0
#: A file still written to within this many seconds of its listing is ``growing``: its last entry may be cut
#: short (a writer idle for longer has finished its entry).
SETTLE_SECONDS = 60.0


@dataclass(frozen=True)
class LogFileRef:
    """One log file as a source lists it; hashable so it can key maps and cross process boundaries.

    ``name`` is the source's own name for the file (the RDS ``LogFileName``, keeping its slashes) and is what
    parsers record as the entries' provenance. ``last_written`` is epoch seconds (RDS reports milliseconds).
    ``size`` is the size at listing time; the file RDS is still appending to may be larger when read.
    """

    kind: SourceKind
    instance: str
    name: str
    size: int | None = None
    last_written: float | None = None
    engine: str | None = None
    uri: str | None = None
    #: Source-specific details (for RDS: ``first_written`` when the name tells the hour). Not hashed.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: The file is still being appended (the current one, written to within :data:`SETTLE_SECONDS`): the
    #: stage leaves its possibly cut last entry out (the next run reads it whole).
    growing: bool = field(default=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (XCom carries references, never log data)."""
        return {"kind": self.kind, "instance": self.instance, "name": self.name, "size": self.size,
                "last_written": self.last_written, "engine": self.engine, "uri": self.uri,
                "extra": dict(self.extra), "growing": self.growing}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LogFileRef:
        return cls(kind=d["kind"], instance=d["instance"], name=d["name"], size=d.get("size"),
                   last_written=d.get("last_written"), engine=d.get("engine"), uri=d.get("uri"),
                   extra=dict(d.get("extra") or {}), growing=bool(d.get("growing")))


@dataclass(frozen=True)
class Resume:
    """Where to continue a download: an opaque source marker and the stream offset it corresponds to.

    For RDS portions ``marker`` is the ``Marker`` returned after the portion ending at ``offset``;
    ``marker=None`` means "from the start, skipping ``offset`` bytes" (works for any method).
    """

    marker: str | None
    offset: int = 0


#: Why bytes were lost when asking again cannot bring them back: RDS cut a single line at its response cap.
LINE_OVER_CAP = "line longer than the portion cap (RDS truncated it)"


class Loss(NamedTuple):
    """Bytes that never reached the stream: where (offset in the stream), about how many, and why."""

    offset: int
    approx_bytes: int | None
    reason: str

    @property
    def permanent(self) -> bool:
        """True when a later download cannot do better (one line above RDS's cap); every other loss — the
        walk ended before the listed size, a complete-file body came short — may be read whole by a retry."""
        return self.reason == LINE_OVER_CAP


@dataclass
class DownloadReport:
    """How one file was read; updated while the stream is consumed, final once it returns EOF.

    ``method`` is ``complete`` (one streamed HTTP response) or ``portions`` (the marker walk). ``calls`` counts
    API calls the source made, ``retries`` the attempts repeated by botocore or by the source itself.
    ``truncations`` counts portions that came back cut at the response cap (most are re-fetched with fewer
    lines and lose nothing); ``losses`` lists what could not be recovered. ``complete`` is true only when the
    stream reached the end of the file with no loss. ``marker`` is the last portion marker (for resuming).
    """

    name: str
    bytes: int = 0
    method: str = "portions"
    calls: int = 0
    retries: int = 0
    truncations: int = 0
    losses: list[Loss] = field(default_factory=list)
    complete: bool = False
    marker: str | None = None
    #: Why the preferred method was abandoned (``complete`` → ``portions``), if it was.
    fallback: str | None = None
    #: Set when the stream stopped on an error that was raised to the reader.
    error: str | None = None

    @property
    def lost_bytes(self) -> int:
        return sum(loss.approx_bytes or 0 for loss in self.losses)

    @property
    def short(self) -> list[Loss]:
        """Losses a retry may recover (see :attr:`Loss.permanent`): the file must not be staged as complete."""
        return [loss for loss in self.losses if not loss.permanent]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "bytes": self.bytes, "method": self.method, "calls": self.calls,
            "retries": self.retries, "truncations": self.truncations,
            "losses": [loss._asdict() for loss in self.losses], "complete": self.complete,
            "marker": self.marker, "fallback": self.fallback, "error": self.error,
        }


class StreamRaw(io.RawIOBase):
    """Base for a source's unbuffered reader: keeps the report and the offset so ``tell()`` works unseekable."""

    def __init__(self, name: str, report: DownloadReport, offset: int = 0) -> None:
        super().__init__()
        self.name = name
        self.report = report
        self.start_offset = offset
        self._offset = offset
        self._buf = b""      # the current page/portion: never more than one held
        self._pos = 0

    def readable(self) -> bool:
        return True

    def _serve(self, b: Any) -> int | None:
        """Copy buffered bytes into ``b``, counting offset and report; None when the buffer is used up."""
        if self._pos >= len(self._buf):
            return None
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        self._offset += n
        self.report.bytes += n
        return n

    def tell(self) -> int:
        return self._offset

    def resume_point(self, consumed: int) -> Resume:
        """Where to restart so that the bytes from ``consumed`` on come again (default: skip from the start)."""
        return Resume(None, consumed)


class SourceStream(io.BufferedReader):
    """A buffered binary stream (``read``/``readline``/``peek``) over a source's raw reader, plus its report.

    ``name`` is the file's name in the source (provenance for the parsers); ``tell()`` is the offset of the next
    byte the caller will read, counted from the start of the file (resumed streams start at their offset).
    """

    raw: StreamRaw

    def __init__(self, raw: StreamRaw, buffer_size: int = 1 << 16) -> None:
        super().__init__(raw, buffer_size)

    @property
    def report(self) -> DownloadReport:
        return self.raw.report

    @property
    def start_offset(self) -> int:
        return self.raw.start_offset

    def checkpoint(self) -> Resume:
        """A :class:`Resume` for what the caller has read so far: persist it only after staging that data.

        The resumed stream starts at ``checkpoint().offset``, which may be a little before ``tell()`` (the
        last portion boundary); the caller drops the overlap.
        """
        return self.raw.resume_point(self.tell())


@runtime_checkable
class LogSource(Protocol):
    """Lists the files that can hold entries of a window and opens one as a byte stream."""

    def list_files(self, start: float, end: float) -> list[LogFileRef]:
        """Files that may hold entries written in ``[start, end)`` (epoch seconds), oldest first."""
        ...

    def open(self, ref: LogFileRef, *, resume: Resume | None = None) -> SourceStream:
        """Stream the file's bytes without holding the whole file; ``resume`` continues a partial read."""
        ...
