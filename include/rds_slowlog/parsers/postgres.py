"""PostgreSQL stderr log parser: ``duration:`` lines in, :class:`~rds_slowlog.entry.Entry` out.

Why it looks the way it does:

* **One regex per line.** ``log_line_prefix`` is compiled once into a single pattern that also matches the
  severity and, when present, ``duration: X ms  statement|execute|parse|bind [name]:``. The hot path is
  ``match`` + a few slices; nothing is decoded for lines that are noise.
* **Blocks, and a fast path for the common lines.** Input is read in ~1 MiB blocks of whole lines; the
  usual lines (``duration: … statement|execute|parse|bind``, ``DETAIL``…) are matched in place in the
  block and handled with a per-(identity, step, name) template; every other line goes through the
  general per-line state machine, which defines the results (see :meth:`PostgresLogParser.parse`).
* **Bytes until an entry is built.** Only query text, parameters and prefix fields of real entries are
  decoded (``surrogateescape``, so invalid UTF-8 survives and is flagged).
* **Timestamps parsed once per distinct second.** Consecutive lines share their ``%t`` second; the epoch
  value is cached by (seconds text, zone text) and the milliseconds of ``%m`` are added arithmetically.
* **What counts as a query is what pgBadger counts**: a ``statement:`` or ``execute <name>:`` event.
  ``parse``/``bind`` durations are phases of the ``execute`` of the same pid that follows them
  (``attrs["parse_ms"]``/``attrs["bind_ms"]``); their lines count as noise, never as queries.

Entry fields: ``duration`` in seconds, ``end_time`` = the line's timestamp (for a ``log_statement`` +
``log_duration`` pair: the duration line's), ``start_time = end_time - duration``, ``thread_id`` = pid,
``user``/``db``/``host`` (``ip`` too when the host is an address) from the prefix, provenance (offset,
line, length) of the entry's first line through its last continuation/DETAIL line. ``attrs`` keys:
``query_step`` (statement/execute), ``query_name`` (execute name), ``log_level``, ``parameters``
(``DETAIL:  parameters:`` text), ``detail``/``context`` (other DETAIL/CONTEXT text), ``parse_ms``/
``bind_ms`` (phases), and from the prefix when present: ``client_port`` (%r), ``session_line`` (%l),
``application_name`` (%a), ``sql_state`` (%e), ``session_id`` (%c), ``pg_queryid`` (%Q, as text).
Flags: ``unknown_tz``, ``no_duration``, ``invalid_utf8``.

Time zones: ``%t``/``%m`` print the zone *abbreviation* of ``log_timezone`` (``UTC``, ``CET``, ``-03``).
Numeric zones are exact. Known abbreviations come from :data:`TZ_OFFSETS` (extend or override it with the
``tz_offsets`` argument). An unknown abbreviation is treated as UTC and the entry is flagged
``unknown_tz`` (and counted in ``stats.unknown_tz_entries``) so it can be found and fixed, rather than
guessed silently. Ambiguous abbreviations use the most common meaning (``IST`` = India, ``CST`` = US
Central, ``BST`` = British Summer Time).

Other log shapes handled: ``log_statement`` + ``log_duration`` (``statement: …`` now, ``duration: X ms``
later on the same pid — paired per pid), tab-continued multi-line messages, ``DETAIL:  parameters:``
attached to the statement/execute they follow, ``ERROR``/``FATAL``/``PANIC`` + ``STATEMENT`` pairs
(counted in ``stats.errors``, their lines are noise), RDS's ``END OF LOG`` console marker and its
``[Your log message was truncated]`` marker (the entry is flagged ``truncated``).
"""
from __future__ import annotations

import calendar
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Final

from rds_slowlog.entry import AttrValue, Entry
from rds_slowlog.parsers.base import (
    DEFAULT_BLOCK_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_QUERY_BYTES,
    ParseStats,
    QuarantineHook,
    decode,
    iter_blocks,
)

#: The prefix RDS and Aurora PostgreSQL force (``parameter group`` cannot change it).
RDS_LOG_LINE_PREFIX: Final = "%t:%r:%u@%d:[%p]:"

#: Zone abbreviation → offset east of UTC in seconds. Ambiguous ones take their most common meaning.
TZ_OFFSETS: Final[Mapping[str, int]] = {
    name: int(hours * 3600)
    for name, hours in {
        "UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0, "WEST": 1, "BST": 1, "IST": 5.5, "CET": 1, "CEST": 2,
        "MET": 1, "MEST": 2, "EET": 2, "EEST": 3, "MSK": 3, "MSD": 4, "TRT": 3, "EST": -5, "EDT": -4,
        "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8,
        "HST": -10, "AST": -4, "ADT": -3, "NST": -3.5, "NDT": -2.5, "JST": 9, "KST": 9, "HKT": 8,
        "SGT": 8, "PHT": 8, "PKT": 5, "WIB": 7, "WITA": 8, "WIT": 9, "AWST": 8, "ACST": 9.5, "ACDT": 10.5,
        "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13, "SAST": 2, "CAT": 2, "EAT": 3, "WAT": 1,
        "BRT": -3, "ART": -3, "CLT": -4, "CLST": -3, "IDT": 3, "ICT": 7,
    }.items()
}

#: Console downloads of RDS logs end with this line.
END_OF_LOG: Final = b"END OF LOG"
_TRUNC_TAIL: Final = b" [Your log message was truncated]"
# Bytes that never occur in a text log line (controls other than tab, CR, VT, FF; DEL): a prefixed message
# after them on the same line is looked for.
_NON_TEXT: Final = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")

_LEVELS: Final = (
    "LOG|ERROR|WARNING|NOTICE|INFO|DEBUG[1-5]?|FATAL|PANIC|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION"
)
_TS: Final = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_TZ: Final = r"[A-Za-z]{1,6}|[+-]\d\d(?::?\d\d)?"


@dataclass(slots=True)
class PostgresParseStats(ParseStats):
    """:class:`ParseStats` plus what only PostgreSQL logs have (added fields, the base ones unchanged)."""

    errors: int = 0                  # ERROR / FATAL / PANIC events (their lines are in noise_lines)
    recovered_entries: int = 0       # messages found after non-text bytes on their line (flag recovered)
    no_duration_entries: int = 0     # log_statement entries that never got a duration line
    unknown_tz_entries: int = 0      # entries whose zone abbreviation was not in the table (UTC assumed)


class PrefixError(ValueError):
    """``log_line_prefix`` uses an escape this parser does not know."""


#: %h / host part of %r: ``[local]``, an IPv6 address (has a colon), an IPv4 address or host name, or
#: nothing (background processes). Not a wildcard: IPv6 colons must not be taken for prefix separators.
_HOST: Final = r"\[local\]|[0-9A-Fa-f.]{0,64}:[0-9A-Fa-f:.%]{0,64}|[\w.-]{0,255}"

#: Free-text fields (user, database, application, …): PostgreSQL caps names at 63 bytes; the bound keeps
#: a pathological multi-megabyte line from making the non-greedy fields backtrack quadratically.
_FREE: Final = r".{0,255}?"

# escape → (regex, capture name or None). Free-text fields are non-greedy: the severity that must follow
# the prefix anchors them. When the separator itself occurs in a value (``%u@%d`` with user ``a@b``) the
# line is split at the first separator that lets the whole line match.
_ESCAPES: Final[dict[str, tuple[str, str | None]]] = {
    "a": (_FREE, "app"),
    "u": (_FREE, "user"),
    "d": (_FREE, "db"),
    "h": (_HOST, "host"),
    "r": (rf"(?P<rhost>{_HOST})(?:\((?P<rport>\d+)\))?", None),
    "p": (r"\d+", "pid"),
    "P": (r"\d*", None),
    "l": (r"\d+", "lineno"),
    "c": (r"[0-9a-f]+\.[0-9a-f]+", "session"),
    "v": (r"[\d/-]*", None),
    "x": (r"\d*", None),
    "e": (r"[0-9A-Z]{5}", "sqlstate"),
    "Q": (r"-?\d+", "queryid"),
    "i": (_FREE, None),
    "b": (_FREE, None),
    "t": (rf"(?P<ts>{_TS}) (?P<tz>{_TZ})", None),
    "m": (rf"(?P<ts>{_TS})\.(?P<frac>\d{{3}}) (?P<tz>{_TZ})", None),
    "n": (r"(?P<epoch>\d+(?:\.\d+)?)", None),
    "s": (rf"{_TS} (?:{_TZ})", None),
}
_ESCAPE_RE: Final = re.compile(r"%(-?\d*)(.)")


def compile_prefix(log_line_prefix: str, *, fast: bool = False, block: bool = False) -> re.Pattern[bytes]:
    r"""The line regex for ``log_line_prefix``: prefix, severity, then the optional duration/step part.

    Groups: the prefix fields (``ts``/``frac``/``tz``/``epoch``, ``pid``, ``user``, ``db``, ``host`` or
    ``rhost``/``rport``, ``app``, ``lineno``, ``session``, ``sqlstate``, ``queryid``), then ``level``,
    ``dur``, ``step``, ``name``. ``m.end()`` is where the message text (or query) starts.
    ``%q`` makes the rest of the prefix optional, as PostgreSQL omits it for non-session processes.

    ``fast=True`` gives a stricter variant: a free-text field followed by literal text may not contain
    that text's first character (``[^@]*`` instead of ``.*?``). It is ~40% quicker and, whenever it
    matches, splits the line exactly as the general pattern does; the parser tries it first and falls
    back to the general pattern (``user@server`` user names, databases with spaces…).

    ``block=True`` (implies ``fast``) gives the variant the parser's fast path matches inside a block of
    lines: whitespace is ``[^\S\n]`` instead of ``\s`` (nothing else in the pattern can match a newline),
    and a ``msg`` group takes the rest of the line, which must end with ``\n``. On a line without ``\r``
    it matches exactly when ``fast`` matches the line without its newline, with the same groups, and
    ``m.start("msg")`` is the ``fast`` pattern's ``m.end()``.
    """
    fast = fast or block
    parts: list[str] = []
    seen: set[str] = set()
    optional_from: int | None = None
    pos = 0
    escapes = list(_ESCAPE_RE.finditer(log_line_prefix))
    for k, m in enumerate(escapes):
        parts.append(re.escape(log_line_prefix[pos:m.start()]))
        pos = m.end()
        pad, esc = m.group(1), m.group(2)
        if esc == "%":
            parts.append("%")
            continue
        if esc == "q":
            optional_from = len(parts)
            continue
        if esc not in _ESCAPES:
            raise PrefixError(f"log_line_prefix {log_line_prefix!r}: unknown escape %{esc}")
        pattern, name = _ESCAPES[esc]
        groups = set(re.findall(r"\(\?P<(\w+)>", pattern)) | ({name} if name else set())
        if groups & seen or (esc in "tmn" and seen & {"ts", "epoch"}):
            # a repeated field: match it, capture only the first occurrence
            pattern, name = re.sub(r"\(\?P<\w+>", "(?:", pattern), None
        else:
            seen |= groups
        if fast and _FREE in pattern:
            nxt = log_line_prefix[m.end():escapes[k + 1].start() if k + 1 < len(escapes) else None]
            if nxt and not nxt.startswith("%"):
                stop = re.escape(nxt[0]) + ("(" if esc == "r" else "") + (" " if pad else "")
                pattern = pattern.replace(_FREE, f"[^{stop}\\n]{{0,255}}")
        piece = f"(?P<{name}>{pattern})" if name else f"(?:{pattern})"
        parts.append(f" *{piece} *" if pad else piece)
    parts.append(re.escape(log_line_prefix[pos:]))
    if optional_from is not None:
        parts = parts[:optional_from] + ["(?:" + "".join(parts[optional_from:]) + ")?"]
    prefix = "".join(parts)
    if "pid" not in seen:
        prefix += "(?P<pid>)"  # always present (empty): per-pid pairing then treats the log as one session
    ws = r"[^\S\n]" if block else r"\s"
    full = (
        prefix + rf"{ws}*(?P<level>{_LEVELS}):{ws}+"
        rf"(?:duration: (?P<dur>\d+(?:\.\d*)?) ms(?:{ws}+(?P<step>statement|execute|parse|bind)"
        r"(?: (?P<name>[^:\n]*?))?:[ \t]?)?)?"
    )
    if block:
        full += r"(?P<msg>[^\n]*)\n"
    return re.compile(full.encode("ascii"))


#: log_statement lines: ``statement: …`` / ``execute <name>: …`` without a duration.
_STEP_RE: Final = re.compile(rb"(statement|execute)(?: ([^:\n]*?))?:(?: |$)")
_IPV4: Final = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}\Z")
_SECONDARY: Final = frozenset((b"DETAIL", b"HINT", b"CONTEXT", b"STATEMENT", b"QUERY", b"LOCATION"))
_ERRORS: Final = frozenset((b"ERROR", b"FATAL", b"PANIC"))

# What continuation lines are appended to.
_M_NONE, _M_QUERY, _M_ATTR, _M_NOISE = range(4)


class _Open:
    """An entry being assembled (query text may still grow, DETAIL may still come)."""

    __slots__ = ("entry", "pid", "parts", "size", "end", "attr", "attr_parts", "valid")

    def __init__(self, entry: Entry, pid: bytes, first: bytes, end: int) -> None:
        self.entry = entry
        self.pid = pid
        self.parts = [first]
        self.size = len(first)
        self.end = end                  # source offset just past the entry's last line
        self.attr: str | None = None    # attribute that continuation lines extend
        self.attr_parts: list[bytes] = []
        self.valid = True


class PostgresLogParser:
    """Stream a PostgreSQL stderr log (any ``log_line_prefix``) into entries, in constant memory.

    :param source: provenance name stored in every entry and quarantine sample.
    :param log_line_prefix: the server's ``log_line_prefix``; the default is the fixed RDS one.
    :param max_line_bytes: physical lines are cut here (the rest is dropped, the entry flagged truncated).
    :param max_query_bytes: query (and parameter) text is capped here, flagged truncated.
    :param base_offset: added to every offset, for streams that start mid-file (RDS portions).
    :param on_quarantine: called with each quarantined sample (counts are always kept in ``stats``).
    :param tz_offsets: extra/overriding zone abbreviations (offset east of UTC in seconds).
    :param max_sessions: cap on per-pid state (pending ``log_statement`` entries, parse/bind phases).
    :param growing: the stream is a file still being appended: the entries open at its end (the last one,
        whose continuation or DETAIL lines may still come, and ``log_statement`` entries still waiting
        for their duration) are flagged ``incomplete``.
    """

    #: Bytes read per block (see :func:`~rds_slowlog.parsers.base.iter_blocks`); tests shrink it.
    block_bytes: int = DEFAULT_BLOCK_BYTES
    #: Off: every line takes the general per-line path (tests compare both paths; see :meth:`parse`).
    fast_path: bool = True

    def __init__(
        self,
        source: str = "<stream>",
        *,
        log_line_prefix: str = RDS_LOG_LINE_PREFIX,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES,
        base_offset: int = 0,
        on_quarantine: QuarantineHook | None = None,
        tz_offsets: Mapping[str, int] | None = None,
        max_sessions: int = 10000,
        growing: bool = False,
    ) -> None:
        self.source = source
        self.growing = growing
        self.log_line_prefix = log_line_prefix
        self._re = compile_prefix(log_line_prefix)
        self._fast_re = compile_prefix(log_line_prefix, fast=True)
        # the fast path's pattern (see parse()); a prefix with a line break in it cannot be matched per line
        # inside a block, so it gets none
        self._block_re = (None if ("\n" in log_line_prefix or "\r" in log_line_prefix)
                          else compile_prefix(log_line_prefix, block=True))
        if self._block_re is not None:
            # the general, fast and block patterns number their groups alike (block adds "msg" last), so
            # group indexes taken from one serve for matches of the others
            assert {k: v for k, v in self._block_re.groupindex.items() if k != "msg"} == self._re.groupindex
            assert self._fast_re.groupindex == self._re.groupindex
        self.max_line_bytes = max_line_bytes
        self.max_query_bytes = max_query_bytes
        self.base_offset = base_offset
        self.on_quarantine = on_quarantine
        self.max_sessions = max_sessions
        self._tz = {k.encode(): v for k, v in TZ_OFFSETS.items()}
        if tz_offsets:
            self._tz.update({k.encode(): v for k, v in tz_offsets.items()})
        self.stats: PostgresParseStats = PostgresParseStats(source=source)
        gi = self._re.groupindex
        self._gi = gi
        # identity fields are fetched with one m.group(*idx) call; the tuple is also the cache key
        # ("level" is always there, so the call always returns a tuple)
        self._who_names = ("level",) + tuple(
            n for n in ("user", "db", "host", "rhost", "rport", "pid", "app", "sqlstate", "session", "queryid")
            if n in gi)
        self._who_idx = tuple(gi[n] for n in self._who_names)
        self._who_cache: dict[tuple[bytes | None, ...], tuple] = {}  # type: ignore[type-arg]
        self._i_ts, self._i_tz = gi.get("ts", 0), gi.get("tz", 0)
        self._i_frac, self._i_epoch, self._i_lineno = gi.get("frac", 0), gi.get("epoch", 0), gi.get("lineno", 0)
        self._epoch_cache: dict[tuple[bytes, bytes | None], tuple[float, bool]] = {}
        # fast path: identity fields + step + name → (user, host, ip, db, pid, attrs to copy)
        self._tpl_idx = self._who_idx + (gi["step"], gi["name"])
        self._tpl_cache: dict[tuple[bytes | None, ...], tuple] = {}  # type: ignore[type-arg]

    # ------------------------------------------------------------------ helpers (off the per-line path)

    def _quarantine(self, offset: int, line_no: int, reason: str, raw: bytes) -> None:
        st = self.stats
        st.quarantine(offset, line_no, reason, raw)
        if self.on_quarantine is not None and st.samples and st.samples[-1].offset == offset:
            self.on_quarantine(st.samples[-1])

    def _epoch(self, ts: bytes, tz: bytes | None) -> tuple[float, bool]:
        """Epoch seconds of ``YYYY-MM-DD HH:MM:SS`` in zone ``tz``; second value: zone was unknown."""
        key = (ts, tz)
        try:
            base = calendar.timegm((int(ts[0:4]), int(ts[5:7]), int(ts[8:10]),
                                    int(ts[11:13]), int(ts[14:16]), int(ts[17:19]), 0, 0, 0))
        except ValueError:
            return (0.0, True)
        unknown = False
        off = 0
        if tz:
            if tz[:1] in b"+-" and tz[1:3].isdigit():
                digits = tz[1:].replace(b":", b"")
                off = int(digits[:2]) * 3600 + (int(digits[2:4]) * 60 if len(digits) >= 4 else 0)
                if tz[:1] == b"-":
                    off = -off
            else:
                known = self._tz.get(tz)
                if known is None:
                    known = self._tz.get(tz.upper())
                if known is None:
                    unknown = True
                else:
                    off = known
        value = (float(base - off), unknown)
        if len(self._epoch_cache) > 65536:
            self._epoch_cache.clear()
        self._epoch_cache[key] = value
        return value

    def _text(self, raw: bytes | None) -> str | None:
        """Decode a prefix field; empty and ``[unknown]`` become None."""
        if raw is None or raw == b"" or raw == b"[unknown]":
            return None
        return raw.decode("utf-8", "surrogateescape")

    def _identity(self, who: tuple[bytes | None, ...]) -> tuple[
            str | None, str | None, str | None, str | None, int | None, dict[str, AttrValue]]:
        """(user, host, ip, db, pid, prefix attrs) from the raw identity fields; cached by the caller."""
        f = dict(zip(self._who_names, who))
        host = self._text(f.get("host") or f.get("rhost"))
        ip = host if host is not None and (_IPV4.match(host) or ":" in host) else None
        attrs: dict[str, AttrValue] = {}
        if f.get("rport"):
            attrs["client_port"] = int(f["rport"])  # type: ignore[arg-type]
        app = self._text(f.get("app"))
        if app is not None:
            attrs["application_name"] = app
        if f.get("sqlstate"):
            attrs["sql_state"] = f["sqlstate"].decode("ascii")  # type: ignore[union-attr]
        if f.get("session"):
            attrs["session_id"] = f["session"].decode("ascii")  # type: ignore[union-attr]
        if f.get("queryid"):
            attrs["pg_queryid"] = f["queryid"].decode("ascii")  # type: ignore[union-attr]
        pid = f.get("pid")
        return (self._text(f.get("user")), host, ip, self._text(f.get("db")),
                int(pid) if pid else None, attrs)

    def _line_time(self, m: re.Match[bytes]) -> tuple[float | None, bool]:
        """Epoch seconds of the line's prefix timestamp (``%t``/``%m``/``%n``), and whether the zone was unknown."""
        i_ts = self._i_ts
        if i_ts:
            ts, tz = m.group(i_ts, self._i_tz)
            if ts is not None:
                key = (ts, tz)
                hit = self._epoch_cache.get(key)
                if hit is None:
                    hit = self._epoch(ts, tz)
                t, unknown = hit
                if self._i_frac:
                    frac = m.group(self._i_frac)
                    if frac:
                        t += int(frac) / 1000.0
                return t, unknown
        if self._i_epoch:
            ep = m.group(self._i_epoch)
            if ep:
                return float(ep), False
        return None, False

    def _new_entry(self, m: re.Match[bytes], dur: float | None, step: bytes, name: bytes | None,
                   offset: int, line_no: int) -> Entry:
        """Build the entry for a statement/execute line from its prefix fields."""
        who = m.group(*self._who_idx)
        ident = self._who_cache.get(who)
        if ident is None:
            ident = self._identity(who)
            if len(self._who_cache) > 65536:
                self._who_cache.clear()
            self._who_cache[who] = ident
        user, host, ip, db, pid, extra = ident
        attrs: dict[str, AttrValue] = {"query_step": "statement" if step == b"statement" else step.decode(),
                                       "log_level": "LOG"}
        if name:
            attrs["query_name"] = name.decode("utf-8", "surrogateescape")
        if extra:
            attrs.update(extra)
        if self._i_lineno:
            ln = m.group(self._i_lineno)
            if ln:
                attrs["session_line"] = int(ln)
        unknown = False
        if self._i_ts:
            tk = m.group(self._i_ts, self._i_tz)
            hit = self._epoch_cache.get(tk)
            if hit is None:
                end_time, unknown = self._line_time(m)
            else:
                end_time, unknown = hit
                if self._i_frac:
                    frac = m.group(self._i_frac)
                    if frac:
                        end_time += int(frac) / 1000.0
        else:
            end_time, unknown = self._line_time(m)
        flags: tuple[str, ...] = ()
        if unknown:
            flags = ("unknown_tz",)
            self.stats.unknown_tz_entries += 1
        return Entry(
            "postgres", "", dur, end_time,
            (end_time - dur) if (end_time is not None and dur is not None) else None,
            attrs, user, host, ip, db, pid,
            self.source, self.base_offset + offset, line_no, 0, False, flags,
        )

    def _finish(self, op: _Open) -> Entry:
        """Join the text parts and fill in length, truncation and UTF-8 flags."""
        e = op.entry
        parts = op.parts
        if len(parts) == 1 and op.size <= self.max_query_bytes:
            try:
                e.query = parts[0].decode("utf-8")
                valid = True
            except UnicodeDecodeError:
                e.query, valid = decode(parts[0])
        else:
            raw = b"\n".join(parts)
            if len(raw) > self.max_query_bytes:
                raw = raw[: self.max_query_bytes]
                e.truncated = True
            e.query, valid = decode(raw)
        ap = op.attr_parts
        if ap:
            # _close_attr inlined for the usual single DETAIL line (``parameters: …``) that is valid UTF-8
            attr = op.attr
            if len(ap) == 1 and attr is not None and len(ap[0]) <= self.max_query_bytes:
                try:
                    e.attrs[attr] = ap[0].decode("utf-8")
                    op.attr = None
                    op.attr_parts = []
                except UnicodeDecodeError:
                    self._close_attr(op)
            else:
                self._close_attr(op)
        e.length = self.base_offset + op.end - e.offset
        if not valid or not op.valid:
            e.flags = e.flags + ("invalid_utf8",)
            self.stats.invalid_utf8_entries += 1
        if e.truncated:
            self.stats.truncated_entries += 1
        self.stats.entries += 1
        return e

    def _close_attr(self, op: _Open) -> None:
        if op.attr is not None and op.attr_parts:
            raw = b"\n".join(op.attr_parts)
            if len(raw) > self.max_query_bytes:
                raw = raw[: self.max_query_bytes]
                op.entry.truncated = True
            text, valid = decode(raw)
            op.valid = op.valid and valid
            op.entry.attrs[op.attr] = text
        op.attr = None
        op.attr_parts = []

    def _template(self, key: tuple[bytes | None, ...]) -> tuple:  # type: ignore[type-arg]
        """What every entry with these identity fields, step and name shares (fast path; cached by ``key``).

        ``(user, host, ip, db, pid, attrs)``; ``attrs`` is copied per entry and has the keys
        :meth:`_new_entry` sets, in the same order, except ``session_line`` (per line).
        """
        who, step, name = key[:-2], key[-2], key[-1]
        ident = self._who_cache.get(who)
        if ident is None:
            ident = self._identity(who)
            if len(self._who_cache) > 65536:
                self._who_cache.clear()
            self._who_cache[who] = ident
        user, host, ip, db, pid, extra = ident
        attrs: dict[str, AttrValue] = {"query_step": "statement" if step == b"statement" else step.decode(),  # type: ignore[union-attr]
                                       "log_level": "LOG"}
        if name:
            attrs["query_name"] = name.decode("utf-8", "surrogateescape")
        if extra:
            attrs.update(extra)
        tpl = (user, host, ip, db, pid, attrs)
        if len(self._tpl_cache) > 65536:
            self._tpl_cache.clear()
        self._tpl_cache[key] = tpl
        return tpl

    # ------------------------------------------------------------------ the per-line loop

    def parse(self, stream: BinaryIO) -> Iterator[Entry]:
        """Yield entries in log order (``log_statement`` pairs when their duration arrives).

        The input is read in blocks of whole lines (:func:`~rds_slowlog.parsers.base.iter_blocks`). Two
        paths, same results, one shared state (pending entry, per-pid maps, continuation mode). The
        **fast path** matches one line of a block in place (no slicing, no ``rstrip``) and handles the
        common lines itself: ``LOG:  duration: … statement|execute|parse|bind …`` and secondary lines
        (``DETAIL``…). It runs only in blocks without ``\\r`` or RDS's truncation marker and on lines that
        end with ``\\n``, where its pattern splits the line exactly as the general one does (see
        :func:`compile_prefix`), so it makes the same transitions the general path would. Every other
        line (continuations, other messages, oversize lines) takes the **general path**, the line-by-line
        state machine that defines the semantics (``fast_path = False`` runs it alone).
        """
        st = self.stats
        match = self._re.match
        fast_match = self._fast_re.match
        block_match = self._block_re.match if (self._block_re is not None and self.fast_path) else None
        gi = self._gi
        i_level, i_dur, i_step, i_name = gi["level"], gi["dur"], gi["step"], gi["name"]
        i_pid = gi["pid"]
        i_msg = self._block_re.groupindex["msg"] if self._block_re is not None else 0
        i_ts, i_tz, i_frac, i_lineno = self._i_ts, self._i_tz, self._i_frac, self._i_lineno
        tpl_idx = self._tpl_idx
        tpl_get = self._tpl_cache.get
        template = self._template
        epoch_get = self._epoch_cache.get
        line_time = self._line_time
        finish = self._finish
        close_attr = self._close_attr
        source = self.source
        base = self.base_offset
        secondary = _SECONDARY
        errors = _ERRORS
        max_q = self.max_query_bytes
        pending: _Open | None = None             # complete entry that DETAIL/continuations may extend
        waiting: dict[bytes, _Open] = {}         # log_statement entries awaiting their duration, per pid
        phases: dict[bytes, dict[str, AttrValue]] = {}  # parse/bind durations waiting for their execute
        mode = _M_NONE
        target: _Open | None = None              # what _M_QUERY / _M_ATTR continuations extend
        line_no = 0
        noise = 0
        end = 0
        recovered = False                        # the line being handled was found after non-text bytes
        recoverable = _NON_TEXT.search
        last_nl = True
        for boff, block, span in iter_blocks(stream, self.max_line_bytes, self.block_bytes):
            blen = len(block)
            last_nl = not span and block.endswith(b"\n")
            fast = block_match is not None and not span and b"\r" not in block and _TRUNC_TAIL not in block
            pos = 0
            while pos < blen:
                if fast:
                    m = block_match(block, pos)
                    if m is not None:
                        level, pid, dur_raw, step, msg = m.group(i_level, i_pid, i_dur, i_step, i_msg)
                        if step is not None and level == b"LOG":
                            # ---- fast path: "duration: X ms  statement|execute|parse|bind [name]: …"
                            line_no += 1
                            offset = boff + pos
                            pos = m.end()
                            end = boff + pos
                            if pending is not None:
                                yield finish(pending)
                                pending = None
                            if step == b"parse" or step == b"bind":
                                ph = phases.get(pid)
                                if ph is None:
                                    if len(phases) >= self.max_sessions:
                                        del phases[next(iter(phases))]
                                    ph = phases[pid] = {}
                                ph["parse_ms" if step == b"parse" else "bind_ms"] = float(dur_raw)
                                noise += 1
                                mode, target = _M_NOISE, None
                                continue
                            if waiting:
                                prev = waiting.pop(pid, None)
                                if prev is not None:
                                    yield self._flush_waiting(prev)
                            # _new_entry, specialised: identity, step and name come from one cache
                            key = m.group(*tpl_idx)
                            tpl = tpl_get(key)
                            if tpl is None:
                                tpl = template(key)
                            user, host, ip, db, pid_i, attrs = tpl
                            attrs = attrs.copy()
                            if i_lineno:
                                ln = m.group(i_lineno)
                                if ln:
                                    attrs["session_line"] = int(ln)
                            flags: tuple[str, ...] = ()
                            hit = epoch_get(m.group(i_ts, i_tz)) if i_ts else None
                            if hit is None:
                                end_time, unknown = line_time(m)
                            else:
                                end_time, unknown = hit
                                if i_frac:
                                    frac = m.group(i_frac)
                                    if frac:
                                        end_time += int(frac) / 1000.0
                            if unknown:
                                flags = ("unknown_tz",)
                                st.unknown_tz_entries += 1
                            dur = float(dur_raw) / 1000.0
                            e = Entry("postgres", "", dur, end_time,
                                      (end_time - dur) if end_time is not None else None,
                                      attrs, user, host, ip, db, pid_i, source, base + offset, line_no, 0, False,
                                      flags)
                            if step == b"execute" and phases:
                                ph = phases.pop(pid, None)
                                if ph:
                                    attrs.update(ph)
                            pending = target = _Open(e, pid, msg, end)
                            mode = _M_QUERY
                            continue
                        if level in secondary:
                            # ---- fast path: a secondary line (same transitions as the general path's)
                            line_no += 1
                            offset = boff + pos
                            pos = m.end()
                            end = boff + pos
                            owner = pending if (pending is not None and pending.pid == pid) else None
                            if owner is None and waiting:
                                owner = waiting.get(pid)
                                if owner is not None and owner.end != offset:
                                    owner = None
                            if owner is not None and (level == b"DETAIL" or level == b"CONTEXT"):
                                if owner.attr_parts:
                                    close_attr(owner)
                                if level == b"DETAIL":
                                    if msg.startswith(b"parameters: "):
                                        owner.attr, msg = "parameters", msg[12:]
                                    else:
                                        owner.attr = "detail"
                                else:
                                    owner.attr = "context"
                                owner.attr_parts.append(msg)
                                owner.end = end
                                mode, target = _M_ATTR, owner
                                continue
                            noise += 1
                            mode, target = _M_NOISE, None
                            continue

                # ---- the general path: one line
                if span:
                    raw = block
                    offset = boff
                    end = boff + span
                    pos = blen
                    cut = True
                    st.oversize_lines += 1
                else:
                    nl = block.find(b"\n", pos) + 1 or blen
                    raw = block[pos:nl]
                    offset = boff + pos
                    end = boff + nl
                    pos = nl
                    cut = False
                line_no += 1
                recovered = False
                raw = raw.rstrip(b"\r\n")
                if raw.endswith(_TRUNC_TAIL):
                    raw = raw[: -len(_TRUNC_TAIL)]
                    cut = True
                m = fast_match(raw) or match(raw)
                if m is None and recoverable(raw) is not None:
                    # bytes that are not text, then a prefixed message: the message starts there
                    at, m = self._recover(raw)
                    if m is not None:
                        self._quarantine(base + offset, line_no, "non_text_before_entry", raw[:at])
                        st.quarantined_lines -= 1  # the line is counted with the message it holds
                        st.recovered_entries += 1
                        offset += at
                        recovered = True
                if m is None:
                    # continuation of the previous message (PostgreSQL puts a tab after every line break of
                    # a message, but logs that went through an editor may have spaces), or not ours at all
                    tabbed = raw[:1] == b"\t"
                    if not tabbed and (mode == _M_QUERY or mode == _M_ATTR) and recoverable(raw) is not None:
                        # bytes no message holds (NUL padding, a corrupted block): not a continuation, and
                        # what follows is no part of the message either
                        mode, target = _M_NONE, None
                    if mode == _M_QUERY and target is not None:
                        if tabbed:
                            raw = raw[1:]
                        if target.size < max_q:
                            target.parts.append(raw)
                            target.size += len(raw) + 1
                        else:
                            target.entry.truncated = True
                        target.end = end
                        if cut:
                            target.entry.truncated = True
                    elif mode == _M_ATTR and target is not None:
                        target.attr_parts.append(raw[1:] if tabbed else raw)
                        target.end = end
                        if cut:
                            target.entry.truncated = True
                    elif mode == _M_NOISE or not raw.strip():
                        noise += 1
                    elif END_OF_LOG in raw and raw.strip(b"- ") == END_OF_LOG:
                        noise += 1
                    else:
                        self._quarantine(base + offset, line_no, "no_prefix", raw)
                    continue

                level, pid, dur_raw, step, name = m.group(i_level, i_pid, i_dur, i_step, i_name)
                if level in secondary:
                    # DETAIL / HINT / CONTEXT / STATEMENT … of the message just before (same pid)
                    owner = pending if (pending is not None and pending.pid == pid) else None
                    if owner is None:
                        owner = waiting.get(pid)
                        if owner is not None and owner.end != offset:
                            owner = None  # only a directly following secondary line belongs to it
                    if owner is not None and level in (b"DETAIL", b"CONTEXT"):
                        if owner.attr_parts:
                            close_attr(owner)
                        msg = raw[m.end():]
                        if level == b"DETAIL":
                            if msg.startswith(b"parameters: "):
                                owner.attr, msg = "parameters", msg[12:]
                            else:
                                owner.attr = "detail"
                        else:
                            owner.attr = "context"
                        owner.attr_parts.append(msg)
                        owner.end = end
                        if cut:
                            owner.entry.truncated = True
                        mode, target = _M_ATTR, owner
                        continue
                    # HINT/STATEMENT/… of an entry, the DETAIL of a parse/bind phase (the execute logs its own
                    # parameters) or of an error/noise message: not part of any query
                    noise += 1
                    mode, target = _M_NOISE, None
                    continue

                if pending is not None:
                    yield finish(pending)
                    pending = None
                if dur_raw is not None and level == b"LOG":
                    dur = float(dur_raw) / 1000.0
                    if step is None:
                        if m.end() < len(raw) and raw[m.end():].strip():
                            # "duration: … ms  plan:" (auto_explain) and other duration messages: not queries
                            noise += 1
                            mode, target = _M_NOISE, None
                            continue
                        op = waiting.pop(pid, None)
                        if op is None:
                            noise += 1  # log_duration without log_statement: no text to report
                            mode, target = _M_NOISE, None
                            continue
                        e = op.entry
                        e.duration = dur
                        end_time = line_time(m)[0]
                        e.end_time = end_time
                        e.start_time = end_time - dur if end_time is not None else None
                        yield finish(op)
                        mode, target = _M_NOISE, None
                        continue
                    if step == b"parse" or step == b"bind":
                        ph = phases.get(pid)
                        if ph is None:
                            if len(phases) >= self.max_sessions:
                                del phases[next(iter(phases))]
                            ph = phases[pid] = {}
                        ph["parse_ms" if step == b"parse" else "bind_ms"] = float(dur_raw)
                        noise += 1
                        mode, target = _M_NOISE, None
                        continue
                    prev = waiting.pop(pid, None)
                    if prev is not None:
                        yield self._flush_waiting(prev)
                    e = self._new_entry(m, dur, step, name, offset, line_no)
                    if recovered:
                        e.flags = e.flags + ("recovered",)
                    op = _Open(e, pid, raw[m.end():], end)
                    if step == b"execute":
                        ph = phases.pop(pid, None)
                        if ph:
                            e.attrs.update(ph)
                    if cut:
                        e.truncated = True
                    pending = op
                    mode, target = _M_QUERY, op
                    continue
                if level == b"LOG" and dur_raw is None:
                    sm = _STEP_RE.match(raw, m.end())
                    if sm is not None:
                        # log_statement: the text now, the duration (if logged) later on the same pid
                        prev = waiting.pop(pid, None)
                        if prev is not None:
                            yield self._flush_waiting(prev)
                        e = self._new_entry(m, None, sm.group(1), sm.group(2), offset, line_no)
                        if recovered:
                            e.flags = e.flags + ("recovered",)
                        op = _Open(e, pid, raw[sm.end():], end)
                        if sm.group(1) == b"execute":
                            ph = phases.pop(pid, None)
                            if ph:
                                e.attrs.update(ph)
                        if cut:
                            e.truncated = True
                        if len(waiting) >= self.max_sessions:
                            yield self._flush_waiting(waiting.pop(next(iter(waiting))))
                        waiting[pid] = op
                        mode, target = _M_QUERY, op
                        continue
                elif level in errors:
                    st.errors += 1
                noise += 1
                mode, target = _M_NOISE, None

        # the end of the stream: a line that did not end with a line end was cut while being written, and
        # may have been the next line of any message still open (a DETAIL cut inside its prefix no longer
        # reads as one, a duration line cut before "ms" neither); in a file still being appended, whatever is
        # open may still grow (continuations, DETAIL, the duration)
        open_may_grow = self.growing or (end > 0 and not last_nl)
        if pending is not None:
            if open_may_grow:
                self._mark_incomplete(pending.entry)
            yield finish(pending)
        for op in waiting.values():
            if open_may_grow:
                self._mark_incomplete(op.entry)
            yield self._flush_waiting(op)
        waiting.clear()
        st.lines += line_no
        st.bytes += end
        st.noise_lines += noise

    def _recover(self, raw: bytes) -> tuple[int, re.Match[bytes] | None]:
        """Where a prefixed message starts inside ``raw`` after bytes that are not text (NUL padding, a
        corrupted block): ``(position, match)``, or ``(0, None)``. Tried only on lines that hold such bytes."""
        first = _NON_TEXT.search(raw)
        if first is None:
            return 0, None
        m = self._fast_re.search(raw, first.end()) or self._re.search(raw, first.end())
        return (m.start(), m) if m is not None else (0, None)

    def _mark_incomplete(self, e: Entry) -> None:
        e.flags = e.flags + ("incomplete",)
        self.stats.incomplete_entries += 1

    def _flush_waiting(self, op: _Open) -> Entry:
        """A ``log_statement`` entry whose duration never came (log_duration off): kept, flagged."""
        op.entry.flags = op.entry.flags + ("no_duration",)
        self.stats.no_duration_entries += 1
        return self._finish(op)


def parse_postgres(stream: BinaryIO, source: str = "<stream>", **kw: object) -> Iterator[Entry]:
    """Convenience: ``PostgresLogParser(source, **kw).parse(stream)``."""
    return PostgresLogParser(source, **kw).parse(stream)  # type: ignore[arg-type]
