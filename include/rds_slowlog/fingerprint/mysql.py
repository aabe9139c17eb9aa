"""MySQL query fingerprints that match ``pt-fingerprint`` / ``pt-query-digest`` 3.2.1 byte for byte.

Why byte for byte: DBAs compare query classes across tools by pt-query-digest's checksum (the MD5 of the
fingerprint), so our query id is only useful if the fingerprint is identical, quirks included.

The rules were written from the behaviour notes in ``shared/reference/fingerprint-rules.md`` and from
black-box observation of ``pt-fingerprint`` 3.2.1 (Percona's GPL source was not read). In the order they
apply:

1. a query starting with mysqldump's ``SELECT /*!40001 SQL_NO_CACHE */ * FROM `` ` → ``mysqldump``;
2. a toolkit marker comment ``/*db.tbl:1/2*/`` anywhere (single digits) → ``percona-toolkit``;
3. ``administrator command: …`` is returned unchanged;
4. ``CALL name(…)`` at the start → ``call name`` (lower-cased, arguments dropped);
5. ``INSERT|REPLACE [ IGNORE] INTO … VALUES (…), (…) …`` keeps only up to its first tuple;
6. ``/* … */`` comments go (``/*! … */`` hints stay); ``--``/``#`` comments go only when no quote
   follows them on the same line;
7. a whole query ``use <db>`` → ``use ?`` (the only rule that keeps a final newline, as pt does);
8. ``\\'`` and ``\\"`` are dropped, then ``"…"`` literals, then ``'…'`` literals become ``?``;
   3.2.1 has no ``''`` escape, so ``'it''s'`` → ``??``; ``true``/``false`` are *not* replaced in 3.2.1;
9. every run starting with ``[0-9+-]`` and continuing with ``[0-9a-f.xb+-]`` → ``?``, case-sensitively
   and inside words too (``tbl_12`` → ``tbl_?``, ``md5col`` → ``md?ol``, ``0xFF`` → ``?ff``, and a lone
   ``-`` or ``+`` → ``?``); then a ``x``, ``b`` or ``.`` right before a ``?`` is absorbed into it;
10. one final newline is dropped, leading whitespace is trimmed (trailing spaces are kept!), runs of
    ``[ \\t\\n\\r\\f]`` become one space (a vertical tab is kept), ASCII letters are lower-cased;
11. ``null`` → ``?``; ``in (…)`` / ``value(s) (…)`` lists of only ``?``/commas/spaces → ``in(?+)``;
    ``select X union [all] select X …`` → ``select X /*repeat union [all]*/``; the first ``limit ?, ?`` or
    ``limit ? offset ?`` → ``limit ?`` (only the first ``limit ?`` is looked at); after the first
    ``order by ``, `` asc`` is deleted (even the one in ``ascending``), but the regex also consumes the
    character after it, so of `` asc asc`` only the first goes.

Speed: each rule is one precompiled ``re`` pass run by C code, skipped when a cheap substring test shows
it cannot apply; the number and leftover rules share one pass. Texts repeat heavily in slow logs, so
:class:`MySQLFingerprinter` adds a bounded LRU cache keyed by the exact text. Only the first
:data:`MAX_FINGERPRINT_CHARS` characters are fingerprinted, which bounds time and memory on pathological
inputs (pt would use the whole text; only queries longer than 1 Mi characters can differ).
"""
from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from functools import lru_cache
from typing import Final

__all__ = [
    "MAX_FINGERPRINT_CHARS",
    "DEFAULT_CACHE_SIZE",
    "fingerprint",
    "checksum",
    "short_id",
    "MySQLFingerprinter",
]

#: Only this many leading characters of a query are fingerprinted (1 Mi characters). pt uses the whole
#: text; the cap bounds the time one absurd query can take (every pass is linear, ~0.5 s worst case).
#: Real huge queries still match pt: a multi-row INSERT (the corpus has 1.2 MB ones) is cut to its first
#: tuple anyway; only a longer text whose end matters (say a LIMIT after a 1 MiB IN list) can differ.
MAX_FINGERPRINT_CHARS: Final = 1 << 20
#: Default number of distinct query texts remembered by :class:`MySQLFingerprinter`.
DEFAULT_CACHE_SIZE: Final = 65536

_A: Final = re.ASCII  # pt works on bytes: \w, \s, \b and case-folding are ASCII-only there too
_AI: Final = re.ASCII | re.IGNORECASE

_MYSQLDUMP_PREFIX: Final = "SELECT /*!40001 SQL_NO_CACHE */ * FROM `"
_ADMIN_PREFIX: Final = "administrator command: "
_TOOLKIT_MARKER: Final = re.compile(r"/\*\w+\.\w+:[0-9]/[0-9]\*/", _A)
_CALL: Final = re.compile(r"\s*(call\s+\S+)\(", _AI)
# Rule 5 is the regex ``(?:insert|replace)(?: ignore)?\s+into.+?values\s*\(.*?\)\s*,\s*\(`` (anchored,
# case-insensitive, dot matches newline), run as three searches: the lazy parts make the single regex
# quadratic on texts with many "values" words, but only the first candidate can succeed (a later one sees a
# subset of the text), so searching forward once for each piece is equivalent and linear.
_INSERT_HEAD: Final = re.compile(r"(?:insert|replace)(?: ignore)?\s+into", _AI)
_VALUES_OPEN: Final = re.compile(r"values\s*\(", _AI)
_TUPLE_SEP: Final = re.compile(r"\)\s*,\s*\(")
_BLOCK_COMMENT: Final = re.compile(r"/\*[^!].*?\*/", _A | re.DOTALL)
# A "--"/"#" comment counts only if it reaches the end of its line without a quote. The second branch
# consumes a failed candidate up to the quote and puts it back unchanged ("\1"), so later starts on the
# same line are not re-scanned (keeps the pass linear on "####…'" inputs).
_LINE_COMMENT: Final = re.compile(r"""(?:--|#)[^'"\r\n]*(?=[\r\n]|\Z)|((?:--|#)[^'"\r\n]*['"])""")
_USE: Final = re.compile(r"use \S+$", _AI)
_ESCAPED_QUOTE: Final = re.compile(r"""\\["']""")
_DQ_STRING: Final = re.compile(r'"[^"]*"')
_SQ_STRING: Final = re.compile(r"'[^']*'")
# Numbers (rule 9) and the x?/b?/.? leftovers in one pass: a leftover letter before a number is taken
# together with it, and one before an existing "?" (from a string or a placeholder) is taken with that.
# Same as r"[xb.]?[0-9+-][0-9a-f.xb+-]*|[xb.]\?", but written to start with one character class (the
# lookbehinds tell which one it was) so that re can skip ahead to candidate characters: ~1.7x faster.
_NUMBER: Final = re.compile(r"[xb.0-9+-](?:(?<=[xb.])(?:[0-9+-][0-9a-f.xb+-]*|\?)|(?<=[0-9+-])[0-9a-f.xb+-]*)")
# Runs of [ \t\n\r\f] become one space; a lone space is left alone rather than replaced by itself.
_WHITESPACE: Final = re.compile(r"[\t\n\r\f][ \t\n\r\f]*| [ \t\n\r\f]+")
_LEADING_WS: Final = " \t\n\r\f\v"
_NULL: Final = re.compile(r"\bnull\b", _A)
_LIST: Final = re.compile(r"\b(in|values?)(?:[\s,]*\([\s?,]*\))+", _A)
_UNION: Final = re.compile(r"\b(select .+?)(?:( union(?: all)?) \1)+", _A)
_SELECT_START: Final = re.compile(r"\bselect ", _A)
#: Above this many (``select`` count x length) steps the union regex (quadratic: every ``select`` scans to
#: the end) is replaced by :func:`_repeat_union_indexed`.
_UNION_REGEX_BUDGET: Final = 4_000_000
#: Candidate comparisons :func:`_repeat_union_indexed` may make before it leaves the rest untouched.
_UNION_CHECK_BUDGET: Final = 200_000
_UNION_KEY = 32  # characters of the lookup key (not Final: the tests shrink it to reach every branch)
# Only the first "limit ?" is looked at: if it has no second value, a later "limit ?, ?" stays.
_LIMIT: Final = re.compile(r"\blimit \?(?:, ?\?| offset \?)?", _A)
_ORDER_BY: Final = re.compile(r"\border by ", _A)
# " asc" also eats the character after it into the match (then puts it back), so of " asc asc" only the
# first goes, and " ascending" loses " asc".
_ASC: Final = re.compile(r"\s+asc(.|$)", _A)
_ASCII_LOWER: Final = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _ascii_lower(text: str) -> str:
    # str.lower() also folds non-ASCII letters, which pt (working on bytes) leaves alone.
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def fingerprint(query: str) -> str:
    """The pt-fingerprint 3.2.1 fingerprint of one query (no cache; see :class:`MySQLFingerprinter`).

    Never raises on any ``str``, including lone surrogates from ``surrogateescape`` decoding.
    """
    q = query[:MAX_FINGERPRINT_CHARS]
    if q.startswith(_MYSQLDUMP_PREFIX):
        return "mysqldump"
    if "/*" in q and _TOOLKIT_MARKER.search(q):
        return "percona-toolkit"
    if q.startswith(_ADMIN_PREFIX):
        return q
    m = _CALL.match(q)
    if m is not None:
        return _ascii_lower(m.group(1))
    m = _INSERT_HEAD.match(q)
    if m is not None:
        v = _VALUES_OPEN.search(q, m.end() + 1)
        if v is not None:
            t = _TUPLE_SEP.search(q, v.end())
            if t is not None:
                q = q[: t.start() + 1]
    if "/*" in q:
        end = q.rfind("*/") + 2  # no comment can start after the last "*/": keeps the pass linear
        if end > 1:
            q = _BLOCK_COMMENT.sub("", q[:end]) + q[end:]
    if "--" in q or "#" in q:
        q = _LINE_COMMENT.sub(r"\1", q)
    if _USE.match(q):
        return "use ?\n" if q.endswith("\n") else "use ?"
    if "'" in q or '"' in q:
        if "\\" in q:
            q = _ESCAPED_QUOTE.sub("", q)
        if '"' in q:
            q = _DQ_STRING.sub("?", q)
        if "'" in q:
            q = _SQ_STRING.sub("?", q)
    q = _NUMBER.sub("?", q)
    if q.endswith("\n"):
        q = q[:-1]
    q = _ascii_lower(_WHITESPACE.sub(" ", q.lstrip(_LEADING_WS)))
    if "null" in q:
        q = _NULL.sub("?", q)
    if "?)" in q or "()" in q or " )" in q or ",)" in q or "\v)" in q:  # how every such list ends
        q = _LIST.sub(r"\1(?+)", q)
    if " union " in q:
        if q.count("select ") * len(q) <= _UNION_REGEX_BUDGET:
            q = _UNION.sub(r"\1 /*repeat\2*/", q)
        else:
            q = _repeat_union_indexed(q)
    if "limit ?" in q:
        q = _LIMIT.sub("limit ?", q, count=1)
    if "order by " in q:
        m = _ORDER_BY.search(q)
        if m is not None:
            end = m.end() + 1  # the character right after "order by " is never part of a match
            q = q[:end] + _ASC.sub(r"\1", q[end:])
    return q


def _repeat_union_indexed(q: str) -> str:
    """``_UNION.sub(r"\\1 /*repeat\\2*/", q)`` for long texts with many ``select``s, same result.

    The regex tries, for every ``select`` start s, every later " union " u (the lazy ``.+?``) and checks
    that ``q[s:u]`` repeats right after it. Here the far candidates are looked up by the first
    ``_UNION_KEY`` characters of the text after each " union [all] ", so only plausible pairs are compared.
    Adversarial texts (thousands of parts sharing long prefixes) stop after ``_UNION_CHECK_BUDGET``
    comparisons and keep the rest unchanged; pt itself needs minutes on such texts.
    """
    unions: list[int] = []
    i = q.find(" union ")
    while i >= 0:
        unions.append(i)
        i = q.find(" union ", i + 1)
    if not unions:
        return q
    key_len = _UNION_KEY
    # The text that must repeat X starts after " union all " when there is one: with " union " alone
    # it would start with "all ", never with "select ".
    starts = {u: u + 11 if q.startswith(" union all ", u) else u + 7 for u in unions}
    index: dict[str, list[int]] = {}
    for u in unions:
        p = starts[u]
        index.setdefault(q[p : p + key_len], []).append(u)
    out: list[str] = []
    last = 0
    budget = _UNION_CHECK_BUDGET
    for sm in _SELECT_START.finditer(q):
        s = sm.start()
        if s < last:
            continue
        near_lo = bisect_left(unions, s + 8)  # X is "select " plus at least one character
        near_hi = bisect_left(unions, s + key_len)
        far = index.get(q[s : s + key_len], ())
        candidates = unions[near_lo:near_hi] + [u for u in far if u >= s + key_len]
        for u in candidates:
            budget -= 1
            if budget < 0:
                out.append(q[last:])
                return "".join(out)
            x = q[s:u]
            p = starts[u]
            if not q.startswith(x, p):
                continue
            label = " union all" if p - u == 11 else " union"
            end = p + len(x)
            while True:
                if q.startswith(" union all ", end) and q.startswith(x, end + 11):
                    end += 11 + len(x)
                    label = " union all"
                elif q.startswith(" union ", end) and q.startswith(x, end + 7):
                    end += 7 + len(x)
                    label = " union"
                else:
                    break
            out.append(q[last:s])
            out.append(f"{x} /*repeat{label}*/")
            last = end
            break
    out.append(q[last:])
    return "".join(out)


def checksum(fp: str) -> str:
    """pt-query-digest's query checksum: upper-case hex MD5 of the fingerprint, 32 digits.

    Non-UTF-8 bytes that were decoded with ``surrogateescape`` are hashed as the original bytes, like pt.
    """
    try:
        data = fp.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from surrogateescape decoding
        data = fp.encode("utf-8", "surrogatepass")
    return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()


def short_id(fp: str) -> str:
    """The last 16 hex digits of :func:`checksum`, as printed by pt-query-digest 3.5.1–3.5.3."""
    return checksum(fp)[16:]


class MySQLFingerprinter:
    """:func:`fingerprint` behind a bounded LRU cache keyed by the exact query text.

    Slow logs repeat identical texts (prepared statements, pings, ORM queries), so most calls are a dict
    hit. Memory is bounded by ``cache_size`` entries (each key is at most a whole query text).
    """

    __slots__ = ("_cached", "cache_size")

    def __init__(self, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._cached = lru_cache(maxsize=cache_size)(fingerprint) if cache_size > 0 else fingerprint

    def fingerprint(self, query: str) -> str:
        """The fingerprint of ``query``, from the cache when this exact text was seen recently."""
        return self._cached(query)

    __call__ = fingerprint

    @staticmethod
    def checksum(fp: str) -> str:
        """See :func:`checksum`."""
        return checksum(fp)

    @staticmethod
    def short_id(fp: str) -> str:
        """See :func:`short_id`."""
        return short_id(fp)

    def cache_info(self) -> tuple[int, int, int, int] | None:
        """``(hits, misses, maxsize, currsize)`` of the cache, or ``None`` when caching is off."""
        info = getattr(self._cached, "cache_info", None)
        return tuple(info()) if info is not None else None  # type: ignore[return-value]

    def clear(self) -> None:
        """Forget every cached text."""
        clear = getattr(self._cached, "cache_clear", None)
        if clear is not None:
            clear()
