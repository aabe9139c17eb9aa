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
    incomplete_entries: int = 0  # entries the stream may have ended inside (flag ``incomplete``)
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


#: Default size of one read in :func:`iter_blocks` (the block handed to a parser is about this long).
DEFAULT_BLOCK_BYTES = 1 << 20


def iter_blocks(
    stream: BinaryIO, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(offset, data, span)``: runs of whole lines, or one oversize line, never holding more than the caps.

    When ``span`` is 0, ``data`` is one or more complete physical lines (each ends with ``\n`` except
    possibly the very last line of the stream) and none is longer than ``max_line_bytes``. When ``span`` is
    positive, ``data`` is the first ``max_line_bytes`` bytes of a single longer line that really spanned
    ``span`` bytes (its rest was read in pieces and dropped). Offsets count every byte, dropped ones too.

    Why blocks: a parser that matches whole entries with one regex over a block, or splits a block with one
    C call, pays per block instead of a generator step plus a ``readline`` per line.
    """
    # Lines wholly inside one read are at most ``step`` long, so only a line that continues an earlier
    # read (the carried-over head of ``data``) can exceed the cap; that one is checked explicitly.
    step = max(1, min(block_bytes, max_line_bytes))
    read = stream.read
    offset = 0
    carry = b""
    while True:
        chunk = read(step)
        if not chunk:
            if carry:
                yield offset, carry, 0
            return
        data = carry + chunk if carry else chunk
        first = data.find(b"\n")
        if first < 0 and len(data) <= max_line_bytes:
            carry = data
            continue
        if first < 0 or first >= max_line_bytes:
            # the head line is longer than the cap: keep its prefix, drop the rest up to its newline
            head = data[:max_line_bytes]
            if first >= 0:
                span = first + 1
            else:
                span = len(data)
                while True:
                    chunk = read(step)  # not more: lines after the newline must stay within the cap
                    if not chunk:
                        break
                    nl = chunk.find(b"\n")
                    if nl >= 0:
                        span += nl + 1
                        data = chunk
                        first = nl
                        break
                    span += len(chunk)
            yield offset, head, span
            offset += span
            if first < 0:
                return  # the oversize line ran to the end of the stream
            data = data[first + 1:]
            if not data:
                carry = b""
                continue
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data  # shorter than one read, hence within the cap
            continue
        if cut == len(data):
            carry = b""
            yield offset, data, 0
        else:
            carry = data[cut:]
            yield offset, data[:cut], 0
        offset += cut


def iter_lines(stream: BinaryIO, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, bytes, bool]]:
    """Yield ``(offset, line, oversize)`` for each physical line, never holding more than the cap.

    Built on :func:`iter_blocks`: each block is split with one C call (``splitlines`` when it has no
    ``\r``, which it would also split on), so the per-line cost is one generator step.
    """
    for offset, data, span in iter_blocks(stream, max_line_bytes):
        if span:
            yield offset, data, True
            continue
        if b"\r" in data:
            lines = data.split(b"\n")
            last = lines.pop()
            lines = [x + b"\n" for x in lines]
            if last:
                lines.append(last)
        else:
            lines = data.splitlines(True)
        for line in lines:
            yield offset, line, False
            offset += len(line)


def decode(raw: bytes) -> tuple[str, bool]:
    """Decode log bytes; invalid UTF-8 is kept recoverable via ``surrogateescape``. Returns (text, valid)."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape"), False
