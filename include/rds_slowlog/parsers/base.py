"""What every parser shares: bounded line reading, per-file counters and the quarantine.

Memory stays bounded because no line is ever read whole past ``max_line_bytes``: the rest of an oversize
line is read in 1 MiB pieces and dropped, and the kept prefix is flagged as truncated.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import BinaryIO

#: Default cap on one physical line; a 100 MB single line keeps only this much.
DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
#: Default cap on the query text of one entry (multi-line queries add up).
DEFAULT_MAX_QUERY_BYTES = 16 * 1024 * 1024
#: RDS appends this when DownloadDBLogFilePortion's 1 MB cap cut the data.
RDS_TRUNCATION_MARKER = b" [Your log message was truncated]"
#: Quarantine samples kept per file (counts are always exact).
MAX_QUARANTINE_SAMPLES = 100


@dataclass(slots=True)
class Quarantined:
    """A piece of input that is not part of any entry and is not known noise."""

    source: str
    offset: int
    line: int
    reason: str
    sample: bytes  # first bytes of the offending line (at most 200)


@dataclass(slots=True)
class ParseStats:
    """Per-file counters. Every input line lands in exactly one bucket, so nothing is lost silently."""

    source: str = "<stream>"
    bytes: int = 0
    lines: int = 0
    entries: int = 0
    noise_lines: int = 0        # known non-query lines: server banners, LOG noise, connection lines
    quarantined_lines: int = 0  # lines that belong to no entry and are not known noise
    truncated_entries: int = 0
    oversize_lines: int = 0
    invalid_utf8_entries: int = 0
    samples: list[Quarantined] = field(default_factory=list)

    def quarantine(self, offset: int, line_no: int, reason: str, raw: bytes) -> None:
        self.quarantined_lines += 1
        if len(self.samples) < MAX_QUARANTINE_SAMPLES:
            self.samples.append(Quarantined(self.source, offset, line_no, reason, bytes(raw[:200])))

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["samples"] = [
            {**asdict(s), "sample": s.sample.decode("utf-8", "replace")} for s in self.samples
        ]
        return d


QuarantineHook = Callable[[Quarantined], None]


def iter_lines(stream: BinaryIO, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, bytes, bool]]:
    """Yield ``(offset, line, oversize)`` for each physical line, never holding more than the cap.

    ``readline(limit)`` runs in C, so this costs one generator step per line; the tail of an oversize
    line is consumed and dropped in 1 MiB reads.
    """
    offset = 0
    readline = stream.readline
    while True:
        line = readline(max_line_bytes)
        if not line:
            return
        n = len(line)
        if n == max_line_bytes and line[-1:] != b"\n":
            dropped = 0
            while True:
                more = readline(1 << 20)
                if not more:
                    break
                dropped += len(more)
                if more[-1:] == b"\n":
                    break
            if dropped:
                yield offset, line, True
                offset += n + dropped
                continue
        yield offset, line, False
        offset += n


def decode(raw: bytes) -> tuple[str, bool]:
    """Decode log bytes; invalid UTF-8 is kept recoverable via ``surrogateescape``. Returns (text, valid)."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape"), False
