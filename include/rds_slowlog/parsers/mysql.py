"""MySQL-family slow-log parser (MySQL 5.0–8.4, MariaDB 10.x/11.x, Percona Server, Aurora MySQL, RDS).

Bytes in, :class:`~rds_slowlog.entry.Entry` out, one pass, constant memory.

Why it looks the way it does:

* **Whole ordinary entries in one regex match.** The file is read in 1 MiB blocks of whole lines
  (:func:`~rds_slowlog.parsers.base.iter_blocks`); an entry of the usual shape (``[# Time:]``,
  ``# User@Host:``, ``# Key: value`` lines, ``use``/``SET`` lines, query lines, next entry) is matched at
  once, and what its header, ``use`` and ``SET`` lines mean is looked up by their exact bytes (a whole run
  of them repeats: same account, same ``Rows_*``, same second). Everything else goes line by line through
  the state machine below, which defines the semantics; the fast path only takes entries whose every line
  the state machine would treat the plain way, so it changes speed, never results (``fast_path = False``
  turns it off, which is how the two are compared).
* **Dispatch on the first byte.** A line starting with ``#`` is a header (or, rarely, a comment inside a
  query); anything else is query text. Header lines go through one precompiled ``findall`` and the parsed
  pairs are cached by the exact line bytes, because most of them repeat verbatim (``# QC_Hit: No
  Full_scan: No …``, ``#   InnoDB_IO_r_ops: 0 …``). Values are typed once per distinct byte string.
* **Bytes until an entry is complete.** Query lines are collected as bytes and decoded once per entry
  (``surrogateescape``: invalid UTF-8 survives and is flagged ``invalid_utf8``).
* **Entry boundaries are pt-query-digest's**, made stricter where pt guesses. An entry starts at the first
  header line after query text; ``# Time:``, ``# User@Host:`` and ``# Query_time:`` always start one, any
  other ``# Key: value`` line only when the previous query line ended with ``;`` (MySQL terminates every
  logged statement with ``;``), so a ``# note: …`` comment inside a multi-line query stays in the query.
* **What is not query text**: a lowercase ``use db;`` line before the query (MySQL writes it when the
  default database changes; it sets ``Entry.db`` and wins over ``Schema:`` as in pt), ``SET timestamp=N;``
  (→ ``start_time``) and ``SET insert_id=…``/``last_insert_id=…`` (→ ``attrs``), in any combination, before
  the query. An uppercase ``USE x`` is a statement the client ran and stays a query, as in pt.
  ``# administrator command: Quit;`` is the query ``administrator command: Quit``.

Times: ``# Time:`` in the old ``YYMMDD H:MM:SS[.frac]`` form (MariaDB, MySQL ≤ 5.6) carries no zone: it is
the server's local time, and RDS lets you set the server's ``time_zone``. ``SET timestamp=N`` is a UTC
epoch (the statement's start), so the log's offset is inferred per file from the entries of its first
block that carry both (write time − start − ``Query_time``, rounded to a quarter hour; the most common
value wins), unless ``log_time_zone`` names it (``UTC``, ``+05:30``, or an IANA zone such as
``America/Sao_Paulo``, which also follows DST); without either, zone-less times are UTC. ISO-8601 (MySQL
5.7+) honours ``Z`` or a ``±HH:MM`` offset and microseconds. MariaDB and old MySQL write ``# Time:`` only
when the second changes, so the last one seen is carried forward to the entries that follow. ``end_time``
is the ``# Time:`` value in UTC (or ``start_time + Query_time`` when the log never said); ``start_time`` is
``Start:`` of ``log_slow_extra`` when present, else ``SET timestamp=``, else ``end_time - Query_time``. An
entry whose start + ``Query_time`` is more than :data:`TIME_TOLERANCE` seconds away from its write time (a
client's own ``SET timestamp=1000000000``, a zone change inside the file) is flagged
``timestamp_mismatch``: its start becomes ``end_time - Query_time`` and the logged value is kept as
``attrs["set_timestamp"]``.

The end of the stream: MySQL ends every logged statement with ``;`` and a line end, so a last entry whose
statement lacks them, or that has no statement yet, may have been cut while being written: it is flagged
``incomplete``. With ``growing=True`` (a file still being appended: the current RDS file, a CloudWatch
window that reaches now) the last entry is flagged ``incomplete`` whatever it looks like, because a
multi-statement body may continue after a ``;``; a header block at the end of such a stream is counted in
``stats.incomplete_entries`` instead of being quarantined.

Bytes before an entry that are not text (NUL padding after a crash, a corrupted block) are quarantined; a
``# Time:``/``# User@Host:`` header that follows such bytes on the same line starts an entry there, flagged
``recovered``.

Everything else is counted, never raised: server banners (also the ones RDS re-inserts on flush) and blank
lines between entries are noise; query text with no header before it and header blocks with no query
after them are quarantined (pt-query-digest does not report them either).
"""
from __future__ import annotations

import calendar
import re
import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from rds_slowlog.entry import AttrValue, Entry
from rds_slowlog.parsers.base import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_QUERY_BYTES,
    DEFAULT_BLOCK_BYTES,
    RDS_TRUNCATION_MARKER,
    ParseStats,
    Quarantined,
    QuarantineHook,
    iter_blocks,
)

__all__ = ["MySQLParseStats", "MySQLSlowLogParser", "parse_mysql", "parse_time"]


@dataclass(slots=True)
class MySQLParseStats(ParseStats):
    """:class:`ParseStats` plus the lines that ended up in entries, so that every line has a bucket:
    ``lines == entry_lines + noise_lines + quarantined_lines``."""

    entry_lines: int = 0
    no_query_entries: int = 0   # entries whose only text was ``use db;`` / ``SET timestamp=`` (pt keeps them)
    timestamp_mismatch_entries: int = 0  # start + Query_time far from the write time (flag timestamp_mismatch)
    recovered_entries: int = 0  # entries found after non-text bytes on their first line (flag recovered)
    #: how zone-less ``# Time:`` values were read: "UTC+05:30 (inferred)", "America/Sao_Paulo", "UTC (no
    #: evidence)"; ``None`` when the log has none
    log_time_zone: str | None = None


# ``Key: value`` pairs of a header line. Values never contain blanks in any server's format; an empty
# value (``Schema: ``) is kept as "".
_PAIR: Final = re.compile(rb"(\w+): (\S*)")
# A line that looks like a header, for deciding whether a ``#`` line after query text starts an entry.
_HEADERISH: Final = re.compile(rb"#\s*\w+: ")
# ``# User@Host: priv_user[user] @ host [ip]  Id: 42`` (host and ip may be empty; ``# User:`` is 4.x/5.0).
_USER_HOST: Final = re.compile(
    rb"# User(?:@Host)?: (.*?)\[(.*?)\] @ (\S*)\s*\[(.*?)\](?:\s+Id:\s*(\d+))?"
)
# Lines after query text that always begin a new entry.
_STRONG: Final = (b"# Time: ", b"# User@Host: ", b"# Query_time: ", b"# User: ")
# Lines that open a new header block (the previous one, if complete, lost its query).
_NEW_BLOCK: Final = (b"# Time: ", b"# User@Host: ", b"# User: ")
_USER_LINES: Final = (b"# User@Host: ", b"# User: ")
_ADMIN: Final = b"# administrator command: "
_EXPLAIN: Final = b"# explain: "
_NO_INNODB: Final = b"# No InnoDB statistics"
_MARKERS: Final = (RDS_TRUNCATION_MARKER, RDS_TRUNCATION_MARKER + b"\n", RDS_TRUNCATION_MARKER + b"\r\n")
_SEMI: Final = (b";\n", b";\r\n", b";")
_BANNER_END: Final = (b"started with:\n", b"started with:\r\n", b"started with:")
_BANNER_PORT: Final = (b"Tcp port: ", b"TCP Port: ")
_BANNER_COLS: Final = (b"Time ", b"Time\t")
_SET_KEYS: Final = {b"timestamp": "timestamp", b"insert_id": "insert_id", b"last_insert_id": "last_insert_id"}
# One ordinary entry, for the fast path: [# Time:] [# User@Host:], other "# " header lines, use/SET lines
# (checked again in Python: only some SETs are metadata), query lines that do not start with '#' (the first
# one not blank, or an administrator command), and then the line that opens the next entry. Possessive
# repeats: no backtracking.
_FAST: Final = re.compile(
    rb"(?:# Time: ([^\n]*)\n)?"
    rb"("  # the lines that _template() digests, as one cache key
    rb"(# User(?:@Host)?: [^\n]*\n)?"
    rb"((?:# (?!Time: |User@Host: |User: |administrator command: |explain: )[^\n]*\n)*+)"
    rb"((?:(?:use |SET )[^\n]*;\n)*+)"
    rb")"
    rb"((?:# administrator command: |(?!#)[ \t\v\f]*[^\s])[^\n]*\n(?:(?!#)[^\n]*\n)*+)"
    rb"(?=# (?:Time|User@Host|Query_time|User): )"
)
# ``# Time:`` of MySQL 5.7+ in UTC: whole second, optional fraction, ``Z``.
_ISO_UTC: Final = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z\Z")
# Anything in query lines that the slow path might take for a server banner (over-approximated).
_BANNERISH: Final = re.compile(rb"started with:|T(?:cp|CP) (?:port|Port): |Argument")
_YES_NO: Final = {b"Yes": True, b"No": False, b"yes": True, b"no": False, b"YES": True, b"NO": False}
_NUM_START: Final = frozenset(b"0123456789-+.")
_MISSING: Final = object()
#: Seconds by which start + Query_time may differ from the write time (second resolution on both sides,
#: log write lag, MariaDB's ``# Time:`` going back and forth) before an entry is ``timestamp_mismatch``.
TIME_TOLERANCE: Final = 5.0
#: A zone offset is only ever inferred within this range (the world's zones span -12:00 to +14:00).
_MAX_ZONE_OFFSET: Final = 14 * 3600
#: Entries of the first block used to infer a zone-less log's offset.
_ZONE_EVIDENCE_ENTRIES: Final = 64
# An entry of the first block with its own zone-less # Time:, its Query_time and its SET timestamp; header
# lines include the bare "#" lines around MariaDB's explain (log_slow_verbosity=explain).
_ZONE_EVIDENCE: Final = re.compile(
    rb"^# Time: (\d{6} {1,2}\d{1,2}:\d\d:\d\d(?:\.\d+)?)\n(?:#(?: (?!Time: )[^\n]*)?\n){0,40}?"
    rb"# Query_time: (\d+(?:\.\d+)?) [^\n]*\n(?:#(?: [^\n]*)?\n){0,400}?(?:use [^\n]*\n)?"
    rb"SET (?:[^\n]*?,)?timestamp=(\d+(?:\.\d+)?)[,;]", re.M)
# Header lines that begin an entry, as looked for after non-text bytes in the middle of a line.
_RECOVERABLE: Final = (b"# Time: ", b"# User@Host: ")
# Bytes that never occur in a text log line (controls other than tab, CR, VT, FF; DEL).
_NON_TEXT: Final = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_CACHE_CAP: Final = 8192
_LINE_CACHE_MAX_LEN: Final = 256


def _typed(v: bytes) -> AttrValue:
    """``Yes``/``No`` → bool, integers → int, decimals → float, anything else → str (like pt)."""
    b = _YES_NO.get(v)
    if b is not None:
        return b
    if v and v[0] in _NUM_START and b"_" not in v:
        try:
            return int(v)
        except ValueError:
            try:
                f = float(v)
            except ValueError:
                pass
            else:
                if f == f and f not in (float("inf"), float("-inf")):
                    return f
    return v.decode("utf-8", "surrogateescape")


_DAY_CACHE: dict[tuple[int, int, int], int] = {}


def _day_epoch(y: int, mo: int, d: int) -> int:
    key = (y, mo, d)
    e = _DAY_CACHE.get(key)
    if e is None:
        e = calendar.timegm((y, mo, d, 0, 0, 0, 0, 0, 0))
        if not (1 <= mo <= 12 and 1 <= d <= 31):
            raise ValueError("bad date")
        if len(_DAY_CACHE) > 4096:
            _DAY_CACHE.clear()
        _DAY_CACHE[key] = e
    return e


def parse_time(raw: bytes) -> float | None:
    """Epoch seconds (UTC) of a ``# Time:`` value, ``Start:``/``End:`` value; ``None`` if unreadable.

    Accepts ``YYMMDD H:MM:SS[.frac]`` (no zone: taken as UTC) and ISO-8601 ``YYYY-MM-DDTHH:MM:SS[.frac]``
    with ``Z``, ``±HH:MM``/``±HHMM`` or no zone (UTC).
    """
    try:
        if raw[4:5] == b"-":  # ISO-8601
            base = _day_epoch(int(raw[0:4]), int(raw[5:7]), int(raw[8:10]))
            if raw[10:11] not in (b"T", b" ") or raw[13:14] != b":" or raw[16:17] != b":":
                return None
            h, mi, s = int(raw[11:13]), int(raw[14:16]), int(raw[17:19])
            rest = raw[19:]
            frac = 0.0
            if rest[:1] == b".":
                i = 1
                n = len(rest)
                while i < n and 48 <= rest[i] <= 57:
                    i += 1
                frac = float(rest[:i]) if i > 1 else 0.0
                rest = rest[i:]
            off = 0
            if rest in (b"", b"Z", b"z"):
                pass
            elif rest[:1] in (b"+", b"-") and len(rest) in (3, 5, 6):
                hh = int(rest[1:3])
                mm = int(rest[-2:]) if len(rest) > 3 else 0
                off = (hh * 3600 + mm * 60) * (1 if rest[:1] == b"+" else -1)
            else:
                return None
            if h > 23 or mi > 59 or s > 60:
                return None
            return base + h * 3600 + mi * 60 + s + frac - off
        date, _, clock = raw.partition(b" ")
        if len(date) != 6 or not date.isdigit():
            return None
        base = _day_epoch(2000 + int(date[0:2]), int(date[2:4]), int(date[4:6]))
        parts = clock.strip().split(b":")
        if len(parts) != 3:
            return None
        h, mi = int(parts[0]), int(parts[1])
        sec = float(parts[2]) if b"." in parts[2] else int(parts[2])
        if h > 23 or mi > 59 or not 0 <= sec < 61:
            return None
        return base + h * 3600 + mi * 60 + sec
    except (ValueError, IndexError, OverflowError):
        return None


def _is_naive(raw: bytes) -> bool:
    """Whether a ``# Time:`` value carries no zone (the old ``YYMMDD`` form, or ISO-8601 without one)."""
    if raw[4:5] != b"-":
        return True
    tail = raw[19:]
    return not (b"Z" in tail or b"z" in tail or b"+" in tail or b"-" in tail)


def _offset_name(seconds: float) -> str:
    sign = "-" if seconds < 0 else "+"
    m = int(round(abs(seconds))) // 60
    return f"UTC{sign}{m // 60:02d}:{m % 60:02d}"


def _recovery_point(line: bytes) -> int:
    """Where an entry header starts inside ``line`` after bytes that are not text, or -1.

    Only after non-text (control bytes or invalid UTF-8): a ``# Time:`` inside a query's string literal is
    query text, but after NUL padding or a corrupted block it is the next entry.
    """
    best = -1
    for marker in _RECOVERABLE:
        p = line.find(marker, 1)
        if p > 0 and (best < 0 or p < best):
            best = p
    if best < 0:
        return -1
    head = line[:best]
    if _NON_TEXT.search(head) is not None:
        return best
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return best
    return -1


def zone_converter(zone: str) -> Callable[[float], float]:
    """``naive epoch (the local clock read as if UTC) → UTC epoch`` for a zone name.

    ``UTC``/``Z``, fixed offsets (``+05:30``, ``-0300``, ``UTC+02:00``) and IANA names (``Europe/Berlin``,
    with its DST; an ambiguous local time is taken in its first, daylight-saving reading, as MySQL does).
    :raises ValueError: the name is none of these.
    """
    z = zone.strip()
    if z.upper() in ("UTC", "Z", "GMT", "UTC+00:00", "+00:00"):
        return lambda t: t
    m = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d\d):?(\d\d)?", z, re.IGNORECASE)
    if m is not None:
        off = (int(m.group(2)) * 3600 + int(m.group(3) or 0) * 60) * (1 if m.group(1) == "+" else -1)
        if abs(off) > _MAX_ZONE_OFFSET:
            raise ValueError(f"log_time_zone {zone!r}: offsets beyond ±14:00 do not exist")
        return lambda t: t - off
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        tz = ZoneInfo(z)
    except (ValueError, ZoneInfoNotFoundError, ImportError) as e:
        raise ValueError(f"log_time_zone {zone!r} is not UTC, a ±HH:MM offset or a known IANA zone") from e
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def convert(t: float) -> float:
        local = (epoch + timedelta(seconds=t)).replace(tzinfo=tz)
        return local.timestamp()

    return convert


def infer_zone_offset(block: bytes) -> float | None:
    """The offset of a zone-less log (seconds east of UTC), from the entries of ``block`` that carry their
    own ``# Time:``, a ``Query_time`` and ``SET timestamp``; ``None`` when no entry is evidence.

    Each entry suggests write time − (start + Query_time) rounded to a quarter hour, if it is that close to
    a quarter hour (``TIME_TOLERANCE``) and within ±14 h; the most frequent suggestion wins (a client's own
    ``SET timestamp`` cannot outvote the server), ties going to the one seen first.
    """
    votes: dict[int, int] = {}
    for k, m in enumerate(_ZONE_EVIDENCE.finditer(block)):
        if k >= _ZONE_EVIDENCE_ENTRIES:
            break
        naive = parse_time(m.group(1))
        if naive is None:
            continue
        diff = naive - (float(m.group(3)) + float(m.group(2)))
        q = round(diff / 900) * 900
        if abs(diff - q) <= TIME_TOLERANCE and abs(q) <= _MAX_ZONE_OFFSET:
            votes[q] = votes.get(q, 0) + 1
    if not votes:
        return None
    return float(max(votes, key=lambda q: votes[q]))


class MySQLSlowLogParser:
    """Stream a MySQL/MariaDB/Percona/Aurora slow log into entries, in constant memory.

    :param source: provenance name stored in every entry and quarantine sample.
    :param max_line_bytes: physical lines are cut here (the rest is dropped, the entry flagged truncated).
    :param max_query_bytes: query text is capped here (the entry is flagged truncated).
    :param base_offset: added to every offset, for streams that start mid-file (RDS portions).
    :param on_quarantine: called with every quarantined piece (``stats`` keeps only the first samples).
    :param log_time_zone: the zone of zone-less ``# Time:`` values (``UTC``, ``+05:30``, an IANA name);
        ``None`` infers the offset from ``SET timestamp`` (see the module docstring).
    :param growing: the stream is a file still being appended: its last entry is flagged ``incomplete``.
    :param initial_time: the last ``# Time:`` of the file before this one (UTC), for the entries at the
        start of this file that have none (MariaDB writes ``# Time:`` only when the second changes, across a
        rotation too); after :meth:`parse`, :attr:`last_time` holds this file's last one.
    """

    #: Bytes read per block (see :func:`~rds_slowlog.parsers.base.iter_blocks`); tests shrink it.
    block_bytes: int = DEFAULT_BLOCK_BYTES
    #: Use the whole-entry regex where it applies; ``False`` runs everything through the line-by-line
    #: state machine (same results, slower: for comparing the two).
    fast_path: bool = True

    def __init__(
        self,
        source: str = "<stream>",
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES,
        base_offset: int = 0,
        on_quarantine: QuarantineHook | None = None,
        log_time_zone: str | None = None,
        growing: bool = False,
        initial_time: float | None = None,
    ) -> None:
        if max_line_bytes < 1 or max_query_bytes < 1:
            raise ValueError(f"{source}: max_line_bytes and max_query_bytes must be positive")
        self.growing = growing
        self.log_time_zone = log_time_zone
        self.last_time = initial_time
        self._to_utc: Callable[[float], float] | None = None
        if log_time_zone is not None:
            self._to_utc = zone_converter(log_time_zone)
        self.source = source
        self.max_line_bytes = max_line_bytes
        self.max_query_bytes = max_query_bytes
        self.base_offset = base_offset
        self.on_quarantine = on_quarantine
        self.stats = MySQLParseStats(source=source)
        self._keys: dict[bytes, str] = {}
        self._values: dict[bytes, AttrValue] = {}
        self._lines: dict[bytes, tuple[tuple[str, AttrValue], ...]] = {}
        self._users: dict[bytes, tuple[Any, ...] | None] = {}
        self._sets: dict[bytes, tuple[tuple[str, AttrValue], ...] | None] = {}
        self._hdrs: dict[bytes, tuple[Any, ...]] = {}
        self._pres: dict[bytes, tuple[Any, ...]] = {}
        self._tpls: dict[bytes, tuple[Any, ...]] = {}

    # -- small helpers (not per line) ---------------------------------------------------------------

    def _quarantine(self, offset: int, line_no: int, reason: str, raw: bytes, nlines: int = 1) -> None:
        stats = self.stats
        stats.quarantine(offset, line_no, reason, raw)
        stats.quarantined_lines += nlines - 1
        if self.on_quarantine is not None:
            self.on_quarantine(Quarantined(self.source, offset, line_no, reason, bytes(raw[:200])))

    def _write_time(self, raw: bytes) -> float | None:
        """A ``# Time:`` value in UTC (zone-less values through the log's zone); ``None`` if unreadable."""
        t = parse_time(raw)
        if t is not None and self._to_utc is not None and _is_naive(raw):
            return self._to_utc(t)
        return t

    def _settle_zone(self, first_block: bytes) -> None:
        """Decide how zone-less times of this stream are read (once, from its first block)."""
        st = self.stats
        if self.log_time_zone is not None:
            st.log_time_zone = self.log_time_zone
            return
        i = first_block.find(b"# Time: ")
        if i < 0 or not _is_naive(first_block[i + 8:first_block.find(b"\n", i) % (len(first_block) + 1)].strip()):
            return
        off = infer_zone_offset(first_block)
        if off is None:
            st.log_time_zone = "UTC (no evidence)"
            return
        st.log_time_zone = f"{_offset_name(off)} (inferred)"
        if off:
            self._to_utc = lambda t: t - off

    def _pairs(self, line: bytes) -> tuple[tuple[str, AttrValue], ...]:
        """Typed ``(key, value)`` pairs of one header line, cached by the exact line.

        Lines without pairs are not cached, so that every occurrence of, say, ``# No InnoDB statistics``
        takes the same branch as the first one.
        """
        got = self._lines.get(line)
        if got is not None:
            return got
        keys, values = self._keys, self._values
        out = []
        for k, v in _PAIR.findall(line):
            key = keys.get(k)
            if key is None:
                key = k.decode("ascii", "replace")
                if len(keys) < _CACHE_CAP:
                    keys[k] = key
            val = values.get(v, _MISSING)
            if val is _MISSING:
                val = _typed(v)
                if len(values) >= _CACHE_CAP:
                    values.clear()
                values[v] = val
            out.append((key, val))
        res = tuple(out)
        if res and len(line) <= _LINE_CACHE_MAX_LEN:
            if len(self._lines) >= _CACHE_CAP:
                self._lines.clear()
            self._lines[line] = res
        return res

    def _who(self, text: bytes) -> tuple[str | None, str | None, str | None, int | None, str | None] | None:
        """``(user, host, ip, thread_id, current_user)`` of a ``User@Host:`` text, ``None`` if unreadable.

        Decoded once per distinct text: the same few accounts log thousands of entries.
        """
        got = self._users.get(text, _MISSING)
        if got is not _MISSING:
            return got  # type: ignore[return-value]
        m = _USER_HOST.match(text)
        who: tuple[str | None, str | None, str | None, int | None, str | None] | None = None
        if m is not None:
            u, cu, h, i, tid = m.groups()
            user = current = None
            if u:
                user = u.decode("utf-8", "surrogateescape")
                if cu and cu != u:
                    current = cu.decode("utf-8", "surrogateescape")
            elif cu:
                user = cu.decode("utf-8", "surrogateescape")
            who = (
                user,
                h.decode("utf-8", "surrogateescape") if h else None,
                i.decode("utf-8", "surrogateescape") if i else None,
                int(tid) if tid is not None else None,
                current,
            )
        if len(text) <= _LINE_CACHE_MAX_LEN:
            if len(self._users) >= _CACHE_CAP:
                self._users.clear()
            self._users[text] = who
        return who

    def _set_line(self, line: bytes) -> tuple[tuple[str, AttrValue], ...] | None:
        """The typed assignments of a ``SET timestamp=…[, insert_id=…];`` line, ``None`` if it is a query.

        Only ``timestamp``, ``insert_id`` and ``last_insert_id`` make a line logging metadata; any other
        ``SET`` is a statement the client ran. Cached by the exact line (``timestamp`` repeats per second).
        """
        got = self._sets.get(line, _MISSING)
        if got is not _MISSING:
            return got  # type: ignore[return-value]
        res: tuple[tuple[str, AttrValue], ...] | None = None
        if line.startswith(b"SET ") and line.endswith(_SEMI):
            parts = [p.partition(b"=") for p in line[4:].rstrip(b"\r\n;").split(b",")]
            if all(k.strip() in _SET_KEYS for k, _, _ in parts):
                res = tuple((_SET_KEYS[k.strip()], _typed(v.strip())) for k, _, v in parts)
        if len(line) <= _LINE_CACHE_MAX_LEN:
            if len(self._sets) >= _CACHE_CAP:
                self._sets.clear()
            self._sets[line] = res
        return res

    def _header_info(self, hdrs: bytes) -> tuple[Any, ...]:
        """What the fast path needs from a run of ``# Key: value`` lines, cached by the exact bytes.

        Returns ``(items, flags, has_hdr, duration, bad_query_time, thread_id, schema_db, start, nlines)``,
        each derived exactly as :meth:`_finish` derives it from the header attributes. Whole runs repeat
        (the same few ``Query_time``/``Rows_*`` combinations), so most entries cost one dict lookup here.
        """
        got = self._hdrs.get(hdrs)
        if got is not None:
            return got
        attrs: dict[str, AttrValue] = {}
        flags: list[str] = []
        has_hdr = False
        nlines = 0
        for hl in hdrs.splitlines(True):
            nlines += 1
            pairs = self._pairs(hl)
            if pairs:
                attrs.update(pairs)
                has_hdr = True
            elif hl.startswith(_NO_INNODB):
                flags.append("no_innodb_stats")
                has_hdr = True
        qt = attrs.get("Query_time")
        duration = float(qt) if qt.__class__ is float or qt.__class__ is int else None  # type: ignore[arg-type]
        bad_qt = qt is not None and duration is None
        t = attrs.get("Thread_id")
        s = attrs.get("Schema")
        db = None
        if s is not None and s != "":
            db = s if s.__class__ is str else (("Yes" if s else "No") if s.__class__ is bool else str(s))
        st = attrs.get("Start")
        start = parse_time(st.encode()) if st.__class__ is str else None  # type: ignore[union-attr]
        info = (tuple(attrs.items()), tuple(flags), has_hdr, duration, bad_qt,
                t if t.__class__ is int else None, db, start, nlines)
        if len(hdrs) <= 4 * _LINE_CACHE_MAX_LEN:
            if len(self._hdrs) >= _CACHE_CAP:
                self._hdrs.clear()
            self._hdrs[hdrs] = info
        return info

    def _preamble_info(self, pre: bytes) -> tuple[Any, ...]:
        """What the fast path needs from the ``use``/``SET`` lines before a query, cached by the exact bytes.

        Returns ``(cut, db, set_items, start, nlines)``: ``cut`` is where the query starts when a ``SET`` is a
        real statement (``None``: all lines are metadata), ``db`` the ``use`` database (``None``: fall back
        to ``Schema``), ``set_items`` the ``insert_id``-style attributes, ``start`` the ``SET timestamp``.
        """
        got = self._pres.get(pre)
        if got is not None:
            return got
        cut = None
        db_use = None
        items: list[tuple[str, AttrValue]] = []
        start = None
        nlines = 0
        i = 0
        for pl in pre.splitlines(True):
            if pl[0] == 117:  # b"use "
                db_use = pl[4:].rstrip(b"\r\n;").strip()
            else:
                sv = self._set_line(pl)
                if sv is None:
                    cut = i
                    break
                for key, val in sv:
                    if key == "timestamp":
                        if val.__class__ is int or val.__class__ is float:
                            start = float(val)  # type: ignore[arg-type]
                    else:
                        items.append((key, val))
            nlines += 1
            i += len(pl)
        db = db_use.strip(b"`").decode("utf-8", "surrogateescape") or None if db_use is not None else None
        info = (cut, db, tuple(items), start, nlines)
        if len(pre) <= 4 * _LINE_CACHE_MAX_LEN:
            if len(self._pres) >= _CACHE_CAP:
                self._pres.clear()
            self._pres[pre] = info
        return info

    def _template(self, key: bytes, uline: bytes | None, hdrs: bytes, pre: bytes) -> tuple[Any, ...]:
        """Everything an ordinary entry takes from its ``User@Host``, header and ``use``/``SET`` lines.

        These lines come as one contiguous ``key`` in the fast path and repeat as a whole (same account,
        same handful of ``Query_time``/``Rows_*`` values, same second), so the per-entry work left is the
        query text. Returns ``(attrs, flags_before, flags_after, flags, duration, user, host, ip,
        thread_id, db, start, has_hdr, nlines, cut)``: the attributes as :meth:`_finish` builds them (to be
        copied per entry), the flags that go before/after ``invalid_utf8`` (and both joined), the values
        :meth:`_finish` derives, the entry's line count without the ``# Time:`` and query lines, and
        where in ``pre`` the query starts when a ``SET`` turned out to be a statement (else ``None``).
        """
        items_t, flags_before, has_hdr, duration, bad_qt, tid, db, start, nlines = self._header_info(hdrs)
        items = list(items_t)
        after: list[str] = []
        if bad_qt:
            after.append("bad_query_time")
        user = host = ip = None
        if uline is not None:
            nlines += 1
            has_hdr = True
            who = self._who(uline)
            if who is None:
                after.append("bad_user_host")
            else:
                user, host, ip, wtid, current = who
                if wtid is not None:
                    tid = wtid
                if current is not None:
                    items.append(("current_user", current))
        cut = None
        if pre:
            cut, udb, set_items, set_start, pn = self._preamble_info(pre)
            nlines += pn
            if udb is not None:
                db = udb
            if start is None:
                start = set_start
            items.extend(set_items)
        tpl = (dict(items), flags_before, tuple(after), flags_before + tuple(after), duration, user, host, ip,
               tid, db, start, has_hdr, nlines, cut)
        if len(key) <= 4 * _LINE_CACHE_MAX_LEN:
            if len(self._tpls) >= _CACHE_CAP:
                self._tpls.clear()
            self._tpls[key] = tpl
        return tpl

    # -- the hot loop -------------------------------------------------------------------------------

    def parse(self, stream: BinaryIO) -> Iterator[Entry]:
        """Yield entries in log order; counters land in :attr:`stats` (also when the caller stops early).

        Two paths, same results. The **fast path** matches one whole ordinary entry (``[# Time:]``,
        ``# User@Host:``, ``# Key: value`` lines, ``use``/``SET`` lines, query lines, then the next entry's
        ``# Time:``/``# User@Host:``/``# Query_time:``/``# User:`` line) with one regex over a block of
        whole lines; it only takes entries whose every line the slow path would treat the plain way (no
        ``\\r``, no RDS truncation marker, no banner, no ``#`` line inside the query, within the caps) and
        otherwise leaves the entry to the **slow path**, a line-by-line state machine that knows every
        oddity. After the slow path closes an entry at a line that starts the next one, that line is
        offered to the fast path again.
        """
        stats = self.stats
        base = self.base_offset
        max_q = self.max_query_bytes
        pairs_of = self._pairs
        who_of = self._who
        set_line = self._set_line
        lines_get = self._lines.get
        users_get = self._users.get
        tpl_get = self._tpls.get
        template = self._template
        source = self.source
        finish = self._finish
        quarantine = self._quarantine
        fast_match = _FAST.match
        bannerish = _BANNERISH.search
        no_innodb = _NO_INNODB
        missing = _MISSING
        use_fast = self.fast_path
        iso_match = _ISO_UTC.match
        write_time = self._write_time
        tol = TIME_TOLERANCE

        n = 0                 # lines read
        end = 0               # offset just past the last line read
        last_time: float | None = self.last_time  # carried forward: MariaDB/old MySQL write # Time: once a second
        time_raw: bytes | None = None   # the last fast-path # Time: value and its parse, reused while it repeats
        time_val: float | None = None
        sec_raw: bytes | None = None    # the whole second of an ISO-8601 # Time: and its parse
        sec_val: float | None = None

        # the entry being collected (cur_off < 0: none open)
        cur_off = -1
        cur_line = 0
        cur_first = b""
        cur_n = 0             # its lines so far
        has_hdr = False       # saw a real header (time, user, key: value, explain)
        has_qt = False        # saw Query_time (a complete header block)
        attrs: dict[str, AttrValue] = {}
        who: tuple[Any, ...] | None | object = missing   # missing: no User@Host line
        t_seen = False
        t_val: float | None = None
        explain: list[bytes] | None = None
        flags: list[str] | None = None
        trunc = False
        in_body = False       # any line after the headers (use/SET preamble, blank or text)
        has_text = False      # real query text seen
        semi = False          # last body line ended with ';'
        body: list[bytes] = []
        body_size = 0
        db_use: bytes | None = None
        sets: list[tuple[tuple[str, AttrValue], ...]] | None = None
        recovered = False     # the line being handled was found after non-text bytes
        e: Entry | None

        try:
            blocks = iter_blocks(stream, self.max_line_bytes, self.block_bytes)
            first = next(blocks, None)
            if first is not None:
                self._settle_zone(first[1])
                blocks = itertools.chain((first,), blocks)
            for boff, block, span in blocks:
                blen = len(block)
                fast = use_fast and not span and b"\r" not in block and RDS_TRUNCATION_MARKER not in block
                # (substring tests: far faster than the regex on a whole block)
                # easy: no query in this block can be a banner or reach the query cap
                easy = fast and blen < max_q and not (b"started with:" in block or b"Tcp port: " in block
                                                      or b"TCP Port: " in block or b"Argument" in block)
                pos = 0
                while pos < blen:
                    if cur_off < 0 and fast and block[pos] == 35:  # '#'
                        m = fast_match(block, pos)
                        # an entry that reaches the end of the block may continue in the next one
                        if m is not None and (mend := m.end()) < blen:
                            tv, key, uline, hdrs, pre, text = m.groups()
                            if (easy or (len(text) + len(pre) < max_q and bannerish(text) is None)) and (
                                    b"# Time: " not in text and b"# User@Host: " not in text):
                                # The slow path's _finish, specialised: everything derived from the header
                                # and preamble bytes comes from one cache; only the query text is new.
                                ok = True
                                k = 0  # lines of the entry
                                if tv is None:
                                    t = last_time
                                else:
                                    k = 1
                                    if tv == time_raw:
                                        t = time_val
                                    elif b" # User@Host: " in tv:
                                        ok = False
                                    else:
                                        im = iso_match(tv)
                                        if im is None:
                                            t = write_time(tv.strip())
                                        else:
                                            # MySQL 5.7+: a new value per entry, but the second repeats;
                                            # same float as parse_time(): int seconds + float(".ffffff")
                                            sec, frac = im.groups()
                                            if sec != sec_raw:
                                                sec_raw, sec_val = sec, parse_time(sec + b"Z")
                                            t = sec_val
                                            if t is not None and frac is not None:
                                                t = t + float(frac)
                                        if t is None:
                                            ok = False  # flagged bad_time by the slow path
                                        else:
                                            time_raw, time_val = tv, t
                                tpl = tpl_get(key)
                                if tpl is None:
                                    tpl = template(key, uline, hdrs, pre)
                                (items, fl_before, fl_after, fl, duration, user, host, ip, tid, db, start, hh,
                                 kk, cut) = tpl
                                admin = text[0] == 35  # '#': "# administrator command: …" is the query
                                if cut is not None:
                                    # SET NAMES …: the query starts there (an administrator command after it
                                    # would be the next entry)
                                    ok = ok and not admin
                                    text = pre[cut:] + text
                                    admin = False
                                if ok and (hh or tv is not None):
                                    if tv is not None:
                                        last_time = t
                                    raw = (text[2:] if admin else text).strip()
                                    if raw[-1:] == b";":
                                        raw = raw[:-1].rstrip()
                                    try:
                                        query = raw.decode("utf-8")
                                    except UnicodeDecodeError:
                                        query = raw.decode("utf-8", "surrogateescape")
                                        fl = fl_before + ("invalid_utf8",) + fl_after
                                        stats.invalid_utf8_entries += 1
                                    attrs_e = items.copy()
                                    if t is None:
                                        if start is not None and duration is not None:
                                            t = start + duration
                                        else:
                                            fl = fl + ("no_time",)
                                    elif duration is not None:
                                        if start is None:
                                            start = t - duration
                                        else:
                                            d = t - start - duration
                                            if d > tol or d < -tol:
                                                attrs_e["set_timestamp"] = start
                                                start = t - duration
                                                fl = fl + ("timestamp_mismatch",)
                                                stats.timestamp_mismatch_entries += 1
                                    k += kk + text.count(b"\n")
                                    n += 1
                                    e = Entry("mysql", query, duration, t, start, attrs_e, user, host, ip, db,
                                              tid, source, boff + pos + base, n, mend - pos, False, fl)
                                    n += k - 1
                                    pos = mend
                                    end = boff + mend
                                    stats.entries += 1
                                    stats.entry_lines += k
                                    stats.lines = n
                                    stats.bytes = end
                                    yield e
                                    continue

                    # ---- the slow path: one line ----
                    if span:
                        line = block
                        off = boff
                        pos = blen
                        end = boff + span
                        oversize = True
                    else:
                        nl = block.find(b"\n", pos) + 1 or blen
                        line = block[pos:nl]
                        off = boff + pos
                        pos = end = nl
                        end += boff
                        oversize = False
                    n += 1
                    marked = False
                    if oversize:
                        stats.oversize_lines += 1
                    elif line.endswith(_MARKERS):
                        line = line[: line.rindex(RDS_TRUNCATION_MARKER)] + b"\n"
                        marked = True
                    if line[:1] != b"#" and (b"# Time: " in line or b"# User@Host: " in line):
                        cut = _recovery_point(line)
                        if cut > 0:
                            # bytes that are not text, then an entry's header: the entry starts there
                            if cur_off >= 0:
                                e = finish(cur_off, cur_line, off, cur_n, cur_first, has_hdr, attrs, who,
                                           t_val if t_seen else last_time, explain, flags, trunc,
                                           b"".join(body) if has_text else None, db_use, sets)
                                cur_off = -1
                                in_body = False
                                if e is not None:
                                    yield e
                            quarantine(off + base, n, "non_text_before_entry", line[:cut])
                            stats.quarantined_lines -= 1  # the line is counted with the entry it opens
                            stats.recovered_entries += 1
                            line = line[cut:]
                            off += cut
                            recovered = True

                    if line[:1] == b"#":
                        if in_body:
                            # Does this '#' line start the next entry, or is it part of the query?
                            if line.startswith(_STRONG) or (semi and _HEADERISH.match(line) is not None) or (
                                has_text and line.startswith(_ADMIN)
                            ):
                                e = finish(cur_off, cur_line, off, cur_n, cur_first, has_hdr, attrs, who,
                                           t_val if t_seen else last_time, explain, flags, trunc,
                                           b"".join(body) if has_text else None, db_use, sets)
                                cur_off = -1
                                in_body = False
                                if e is not None:
                                    stats.lines = n - 1
                                    stats.bytes = off
                                    yield e
                                if fast:
                                    # offer the line that opens the next entry to the fast path
                                    n -= 1
                                    pos = off - boff
                                    continue
                            else:
                                cur_n += 1
                                if body_size < max_q:
                                    body.append(line[2:] if line.startswith(_ADMIN) else line)
                                    body_size += len(line)
                                else:
                                    trunc = True
                                has_text = True
                                semi = line.endswith(_SEMI)
                                if oversize:
                                    trunc = True
                                elif marked:
                                    e = finish(cur_off, cur_line, end, cur_n, cur_first, has_hdr, attrs, who,
                                               t_val if t_seen else last_time, explain, flags, True,
                                               b"".join(body), db_use, sets)
                                    cur_off = -1
                                    in_body = False
                                    if e is not None:
                                        yield e
                                continue
                        if cur_off < 0:
                            cur_off, cur_line, cur_first, cur_n = off, n, line, 0
                            has_hdr = has_qt = in_body = has_text = semi = t_seen = False
                            attrs = {}
                            db_use = t_val = None
                            who = missing
                            explain = sets = None
                            flags = None
                            if recovered:
                                flags = ["recovered"]
                                recovered = False
                            trunc = False
                            body = []
                            body_size = 0
                        elif has_qt and line.startswith(_NEW_BLOCK):
                            # the previous header block never got its query: quarantine it, start afresh
                            quarantine(cur_off + base, cur_line, "header_without_query", cur_first, cur_n)
                            cur_off, cur_line, cur_first, cur_n = off, n, line, 0
                            has_hdr = has_qt = t_seen = False
                            attrs = {}
                            t_val = None
                            who = missing
                            explain = flags = None
                            trunc = False
                        cur_n += 1
                        if oversize or marked:
                            trunc = True
                        got = lines_get(line)
                        if got is not None:
                            attrs.update(got)
                            has_hdr = True
                            if not has_qt and "Query_time" in attrs:
                                has_qt = True
                        elif line.startswith(b"# Time: "):
                            rest = line[8:]
                            i = rest.find(b" # User@Host: ")
                            if i >= 0:
                                who = who_of(rest[i + 1:])
                                rest = rest[:i]
                            t_seen = has_hdr = True
                            t_val = write_time(rest.strip())
                            if t_val is None:
                                flags = (flags or []) + ["bad_time"]
                            else:
                                last_time = t_val
                        elif line.startswith(_USER_LINES):
                            who = who_of(line)
                            has_hdr = True
                        elif line.startswith(_ADMIN):
                            # administrator command right after the headers: it is the query
                            in_body = has_text = True
                            body.append(line[2:])
                            body_size += len(line)
                            semi = line.endswith(_SEMI)
                        elif line.startswith(_EXPLAIN):
                            if explain is None:
                                explain = []
                            explain.append(line[11:].rstrip(b"\r\n"))
                            has_hdr = True
                        else:
                            got = pairs_of(line)
                            if got:
                                attrs.update(got)
                                has_hdr = True
                                if not has_qt and "Query_time" in attrs:
                                    has_qt = True
                            elif line.startswith(no_innodb):
                                flags = (flags or []) + ["no_innodb_stats"]
                                has_hdr = True
                        if marked:
                            # RDS cut the data inside the headers: what follows belongs to another portion
                            e = finish(cur_off, cur_line, end, cur_n, cur_first, has_hdr, attrs, who,
                                       t_val if t_seen else last_time, explain, flags, True,
                                       b"".join(body) if has_text else None, db_use, sets)
                            cur_off = -1
                            in_body = False
                            if e is not None:
                                yield e
                        continue

                    # ---- not a '#' line ----
                    if line.endswith(_BANNER_END) or line.startswith(_BANNER_PORT) or (
                        line.startswith(_BANNER_COLS) and b"Command" in line and b"Argument" in line
                    ):
                        stats.noise_lines += 1
                        if cur_off >= 0:
                            e = finish(cur_off, cur_line, off, cur_n, cur_first, has_hdr, attrs, who,
                                       t_val if t_seen else last_time, explain, flags, trunc,
                                       b"".join(body) if has_text else None, db_use, sets)
                            cur_off = -1
                            in_body = False
                            if e is not None:
                                stats.lines = n
                                stats.bytes = end
                                yield e
                        continue
                    if cur_off < 0:
                        if line.strip():
                            quarantine(off + base, n, "query_without_header", line)
                        else:
                            stats.noise_lines += 1
                        continue
                    cur_n += 1
                    if oversize:
                        trunc = True
                    if not has_text:
                        in_body = True
                        if line.startswith(b"use ") and line.endswith(_SEMI):
                            db_use = line[4:].rstrip(b"\r\n;").strip()
                            semi = True
                            if not marked:
                                continue
                        elif line.startswith(b"SET ") and (sv := set_line(line)) is not None:
                            if sets is None:
                                sets = []
                            sets.append(sv)
                            semi = True
                            if not marked:
                                continue
                        elif not line.strip():
                            if not marked:
                                continue
                        else:
                            has_text = True
                    if has_text:
                        if body_size < max_q:
                            body.append(line)
                            body_size += len(line)
                        else:
                            trunc = True
                        # a blank line after "…;" keeps the statement terminated
                        semi = line.endswith(_SEMI) or (semi and (line == b"\n" or line == b"\r\n"))
                    if marked:
                        # RDS cut the data here: whatever follows is another portion, not this query
                        e = finish(cur_off, cur_line, end, cur_n, cur_first, has_hdr, attrs, who,
                                   t_val if t_seen else last_time, explain, flags, True,
                                   b"".join(body) if has_text else None, db_use, sets)
                        cur_off = -1
                        in_body = False
                        if e is not None:
                            yield e
            if cur_off >= 0:
                # the stream ended inside this entry's lines: complete only if its statement was (see the
                # module docstring), and never while the file is still being appended
                cut_short = self.growing or not has_text or not semi or not line.endswith(b"\n")
                e = finish(cur_off, cur_line, end, cur_n, cur_first, has_hdr, attrs, who,
                           t_val if t_seen else last_time, explain, flags, trunc,
                           b"".join(body) if has_text else None, db_use, sets, cut_short)
                cur_off = -1
                in_body = False
                if e is not None:
                    stats.lines = n
                    stats.bytes = end
                    yield e
        finally:
            stats.lines = n
            stats.bytes = end
            self.last_time = last_time

    def _finish(
        self,
        off: int,
        line_no: int,
        end: int,
        nlines: int,
        first: bytes,
        has_hdr: bool,
        attrs: dict[str, AttrValue],
        who: Any,
        end_time: float | None,
        explain: list[bytes] | None,
        flags: list[str] | None,
        trunc: bool,
        text: bytes | None,
        db_use: bytes | None,
        sets: list[tuple[tuple[str, AttrValue], ...]] | None,
        incomplete: bool = False,
    ) -> Entry | None:
        """Turn the collected pieces of one entry into an :class:`Entry`, or quarantine them.

        ``who`` is :meth:`_who`'s tuple, ``None`` for an unreadable ``User@Host`` line or ``_MISSING``
        when there was none; ``text`` is the joined query lines (``None``: no query text).
        """
        stats = self.stats
        if not has_hdr:
            self._quarantine(off + self.base_offset, line_no, "query_without_header", first, nlines)
            return None
        if text is None and db_use is None and sets is None:
            if incomplete and self.growing:
                # the header block of an entry still being written: its statement comes later
                stats.incomplete_entries += 1
                stats.entry_lines += nlines
            else:
                self._quarantine(off + self.base_offset, line_no, "header_without_query", first, nlines)
            return None
        stats.entries += 1
        stats.entry_lines += nlines
        fl = flags
        # query text
        if text is not None:
            raw = text.strip()
            if raw.endswith(b";"):
                raw = raw[:-1].rstrip()
            if b"\r" in raw:
                raw = raw.replace(b"\r\n", b"\n")
            if len(raw) > self.max_query_bytes:
                raw = raw[: self.max_query_bytes]
                trunc = True
            try:
                query = raw.decode("utf-8")
            except UnicodeDecodeError:
                query = raw.decode("utf-8", "surrogateescape")
                fl = (fl or []) + ["invalid_utf8"]
                stats.invalid_utf8_entries += 1
        else:
            # only logging metadata: the statement the client ran was the USE (COM_INIT_DB) or, failing
            # that, the SET itself; kept as the query (pt-fingerprint gives ``use ?``), never an empty one
            if db_use is not None:
                query = "use " + db_use.decode("utf-8", "surrogateescape")
            else:
                query = "SET " + ", ".join(f"{k}={v!r}" if v.__class__ is str else f"{k}={v}"
                                           for assignments in (sets or ()) for k, v in assignments)
            fl = (fl or []) + ["no_query"]
            stats.no_query_entries += 1
        if trunc:
            stats.truncated_entries += 1
        # duration
        qt = attrs.get("Query_time")
        duration: float | None
        if qt is None:
            duration = None
        elif qt.__class__ is float or qt.__class__ is int:
            duration = float(qt)  # type: ignore[arg-type]
        else:
            duration = None
            fl = (fl or []) + ["bad_query_time"]
        # who / where
        if who is _MISSING:
            user = host = ip = thread_id = None
        elif who is None:
            user = host = ip = thread_id = None
            fl = (fl or []) + ["bad_user_host"]
        else:
            user, host, ip, thread_id, current = who
            if current is not None:
                attrs["current_user"] = current
        if thread_id is None:
            t = attrs.get("Thread_id")
            if t.__class__ is int:
                thread_id = t
        db = None
        if db_use is not None:
            db = db_use.strip(b"`").decode("utf-8", "surrogateescape") or None
        if db is None:
            s = attrs.get("Schema")
            if s is not None and s != "":
                db = s if s.__class__ is str else (("Yes" if s else "No") if s.__class__ is bool else str(s))
        if explain is not None:
            attrs["explain"] = b"\n".join(explain).decode("utf-8", "surrogateescape")
        # times
        start = None
        if sets is not None:
            for assignments in sets:
                for key, val in assignments:
                    if key == "timestamp":
                        if val.__class__ is int or val.__class__ is float:
                            start = float(val)  # type: ignore[arg-type]
                    else:
                        attrs[key] = val
        if "Start" in attrs:
            st = attrs["Start"]
            if st.__class__ is str:
                s2 = parse_time(st.encode())  # type: ignore[union-attr]
                if s2 is not None:
                    start = s2
        if end_time is None:
            if start is not None and duration is not None:
                end_time = start + duration
            else:
                fl = (fl or []) + ["no_time"]
        elif duration is not None:
            if start is None:
                start = end_time - duration
            elif not -TIME_TOLERANCE <= end_time - start - duration <= TIME_TOLERANCE:
                attrs["set_timestamp"] = start
                start = end_time - duration
                fl = (fl or []) + ["timestamp_mismatch"]
                stats.timestamp_mismatch_entries += 1
        if incomplete:
            fl = (fl or []) + ["incomplete"]
            stats.incomplete_entries += 1
        return Entry(
            "mysql", query, duration, end_time, start, attrs, user, host, ip, db, thread_id,
            self.source, off + self.base_offset, line_no, end - off, trunc, tuple(fl) if fl else (),
        )


def parse_mysql(stream: BinaryIO, source: str = "<stream>", **kw: object) -> Iterator[Entry]:
    """Parse a MySQL-family slow log; keyword arguments go to :class:`MySQLSlowLogParser`."""
    return MySQLSlowLogParser(source, **kw).parse(stream)  # type: ignore[arg-type]
