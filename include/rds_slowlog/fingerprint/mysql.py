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
    ``S union [all] S …`` → ``S /*repeat union [all]*/`` for a text S that starts with ``select`` and a gap
    (S may be just that: ``select \\vunion select x`` → ``select  /*repeat\\vunion*/x``); each gap (after
    ``select``, around ``union`` and ``all``) is exactly one space or vertical tab, and the gaps before
    ``union`` and ``all`` are copied into the comment (``S\\vunion S`` → ``S /*repeat\\vunion*/``; of
    ``S \\vunion S`` the space stays with S); the first ``limit ?, ?`` or
    ``limit ? offset ?`` → ``limit ?`` (only the first ``limit ?`` is looked at); after the first
    ``order by ``, `` asc`` is deleted (even the one in ``ascending``), but the regex also consumes the
    character after it, so of `` asc asc`` only the first goes.

Whitespace, word characters and case are ASCII-only in every rule: pt works on bytes, so U+00A0, U+2003
or U+3000 is no whitespace to it (nor is it to any regex here: all are compiled with ``re.ASCII``).

Speed: each rule is one precompiled ``re`` pass run by C code, skipped when a cheap substring test shows
it cannot apply; the number and leftover rules share one pass. Texts repeat heavily in slow logs, so
:class:`MySQLFingerprinter` adds a bounded LRU cache keyed by the exact text. Only the first
:data:`MAX_FINGERPRINT_CHARS` characters are fingerprinted, which bounds time and memory on pathological
inputs (pt would use the whole text; only queries longer than 1 Mi characters can differ). Before that
cut, a longer query has every ``in (…)`` / ``value(s) (…)`` list of plain numbers or simple ``'…'``
strings shortened to its first literal (pt folds both to ``in(?+)``, so the fingerprint is pt's), hence
the cut never falls inside such a list and its length never changes the class
(see :func:`_collapse_long_lists`).
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
#: tuple anyway, and in/values lists of simple literals are shortened before the cut (see
#: :func:`_collapse_long_lists`); only a text that stays longer than the cap after that can differ.
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
_TUPLE_SEP: Final = re.compile(r"\)\s*,\s*\(", _A)
_BLOCK_COMMENT: Final = re.compile(r"/\*[^!].*?\*/", _A | re.DOTALL)
# A "--"/"#" comment counts only if it reaches the end of its line without a quote. The second branch
# consumes a failed candidate up to the quote and puts it back unchanged ("\1"), so later starts on the
# same line are not re-scanned (keeps the pass linear on "####…'" inputs).
_LINE_COMMENT: Final = re.compile(r"""(?:--|#)[^'"\r\n]*(?=[\r\n]|\Z)|((?:--|#)[^'"\r\n]*['"])""", _A)
_USE: Final = re.compile(r"use \S+$", _AI)
_ESCAPED_QUOTE: Final = re.compile(r"""\\["']""", _A)
_DQ_STRING: Final = re.compile(r'"[^"]*"', _A)
_SQ_STRING: Final = re.compile(r"'[^']*'", _A)
# Numbers (rule 9) and the x?/b?/.? leftovers in one pass: a leftover letter before a number is taken
# together with it, and one before an existing "?" (from a string or a placeholder) is taken with that.
# Same as r"[xb.]?[0-9+-][0-9a-f.xb+-]*|[xb.]\?", but written to start with one character class (the
# lookbehinds tell which one it was) so that re can skip ahead to candidate characters: ~1.7x faster.
_NUMBER: Final = re.compile(
    r"[xb.0-9+-](?:(?<=[xb.])(?:[0-9+-][0-9a-f.xb+-]*|\?)|(?<=[0-9+-])[0-9a-f.xb+-]*)", _A
)
# Runs of [ \t\n\r\f] become one space; a lone space is left alone rather than replaced by itself.
_WHITESPACE: Final = re.compile(r"[\t\n\r\f][ \t\n\r\f]*| [ \t\n\r\f]+", _A)
_LEADING_WS: Final = " \t\n\r\f\v"
_NULL: Final = re.compile(r"\bnull\b", _A)
_LIST: Final = re.compile(r"\b(in|values?)(?:[\s,]*\([\s?,]*\))+", _A)
# Every gap here is one \s, which after the whitespace rule is a space or a vertical tab; the captured
# gap-and-keyword goes into the comment as it was ("\vunion" gives "/*repeat\vunion*/"), as pt does.
# X may be just "select" and its gap: "select \vunion select x" → "select  /*repeat\vunion*/x".
_UNION: Final = re.compile(r"\b(select\s.*?)(?:(\sunion(?:\sall)?)\s\1)+", _A)
_SELECT_START: Final = re.compile(r"\bselect\s", _A)
_UNION_AT: Final = re.compile(r"\s(?=union\s)", _A)
_ASCII_WS: Final = " \t\n\r\f\v"  # what \s matches under re.ASCII (and in Perl on bytes)
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

# Before the length cap, a longer query has each in/values list of simple literals cut to its first
# literal, which never changes pt's fingerprint (both end as "in(?+)"), so the cap cannot cut such a list.
# A number is [+-] digits [. digits] (each becomes one "?"); a string is '…' without quotes, backslash,
# "(", ")", "*", "/" or a line break (so it is one "?" and no comment or tuple rule can start or end in
# it). What goes (", L2, …, Ln") thus holds no "/", "*", "(", ")", "\", '"' and only whole strings, and
# the word before stands after a space, "(", ")" or "," (so removing a comment cannot glue it to a word).
# No line may end between the word and the first literal, nor anywhere in a list of numbers: a "--" or "#"
# comment before it on its line must end where it did. A list that starts with a string is only cut when
# that quote really opens a literal (see _collapse_long_lists). Possessive quantifiers: no backtracking.
_LIST_NUM: Final = r"[+-]?+(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)"
_LIST_STR: Final = r"""'[^'"\\()*/\r\n]*+'"""
# Where _LONG_LIST may match: a fast first search (a case-sensitive character class first lets re skip
# ahead, twice as fast as with IGNORECASE); _LONG_LIST then checks.
_LIST_WORD: Final = re.compile(r"[iIvV](?<![^\s(),][iIvV])(?:[nN]|[aA][lL][uU][eE])", _A)
_LONG_LIST: Final = re.compile(
    rf"(?<![^\s(),])(?:in|values?)[ \t\f\v]*+\([ \t\f\v]*+"
    rf"(?:({_LIST_NUM})(?:[ \t\f\v]*+,[ \t\f\v]*+{_LIST_NUM})++"
    rf"|({_LIST_STR})(?:\s*+,\s*+(?:{_LIST_STR}|{_LIST_NUM}))++)"
    rf"(?=\s*\))",
    _AI,
)
# Rules that can see what a list holds: "CALL name(" (its first word), "administrator command: " (all of
# it) and "use X" (the whole query, once leading comments are gone, without a space).
_LONG_LIST_SKIP: Final = re.compile(
    r"\s*call\s|administrator command: |(?>/\*[^!].*?\*/)*+use ", _AI | re.DOTALL
)


def _ascii_lower(text: str) -> str:
    # str.lower() also folds non-ASCII letters, which pt (working on bytes) leaves alone.
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def fingerprint(query: str) -> str:
    """The pt-fingerprint 3.2.1 fingerprint of one query (no cache; see :class:`MySQLFingerprinter`).

    Never raises on any ``str``, including lone surrogates from ``surrogateescape`` decoding.
    """
    if len(query) > MAX_FINGERPRINT_CHARS:
        query = _collapse_long_lists(query)
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
        end = _first_tuple_end(q, m.end())
        if end >= 0:
            q = q[:end]
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
    if "union" in q:
        if q.count("select") * len(q) <= _UNION_REGEX_BUDGET:
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


def _first_tuple_end(q: str, head_end: int, endpos: int | None = None) -> int:
    """Where rule 5 cuts ``q`` (just after the first tuple's ``)``), or -1; ``head_end``: end of the head.

    With ``endpos``, only ``q[:endpos]`` is searched (what rule 5 sees of a capped text).
    """
    stop = len(q) if endpos is None else endpos
    v = _VALUES_OPEN.search(q, head_end + 1, stop)
    if v is not None:
        t = _TUPLE_SEP.search(q, v.end(), stop)
        if t is not None:
            return t.start() + 1
    return -1


def _collapse_long_lists(q: str) -> str:
    """``q`` with each in/values list of simple literals (see ``_LONG_LIST``) cut to its first literal.

    Same fingerprint as ``q`` uncapped. A list that starts with a string is cut only inside a comment
    (where it goes anyway) or where that quote opens a literal for pt: the text before it has, outside
    comments, an even number of ``'`` and no ``"`` or backslash; otherwise it is kept. Stops looking once
    the result is past the cap (nothing later is fingerprinted), so it reads the cap plus the lists it
    meets: one forward pass, quotes counted by ``str.count`` between comments. Only a text with a string
    list is searched for its comments (and, for an INSERT, for where rule 5 cuts it) to the end.
    """
    if _LONG_LIST_SKIP.match(q):
        return q
    n = len(q)
    head = _INSERT_HEAD.match(q)
    if head is not None and _first_tuple_end(q, head.end(), MAX_FINGERPRINT_CHARS) >= 0:
        return q  # the cap keeps all that rule 5 keeps (a big multi-row INSERT)
    comments = None  # rule 6's comments, from the first string list on
    comment = None
    seen = 0  # q[:seen] is accounted for in odd/unsure
    odd = False  # an odd number of ' outside comments in q[:seen]
    unsure = False  # a " or a backslash outside comments in q[:seen]

    def opens_literal(first: int) -> bool:
        """Whether the quote at ``first`` opens a '…' literal for pt, or lies in a removed comment."""
        nonlocal comments, comment, seen, odd, unsure
        if comments is None:
            # Rule 6 sees the text as rule 5 left it: a comment that closes only after that cut is none.
            end = _first_tuple_end(q, head.end()) if head is not None else -1
            closed = q.rfind("*/", 0, end if end >= 0 else n)
            comments = _BLOCK_COMMENT.finditer(q, 0, closed + 2 if closed >= 0 else 0)  # as rule 6 finds them
            comment = next(comments, None)
        while True:
            stop = first if comment is None or comment.start() >= first else comment.start()
            if seen < stop:
                if q.count("'", seen, stop) & 1:
                    odd = not odd
                if not unsure and (q.find('"', seen, stop) >= 0 or q.find("\\", seen, stop) >= 0):
                    unsure = True
                seen = stop
            if stop == first:
                return not (odd or unsure)
            if comment.end() > first:
                return True
            seen = comment.end()
            comment = next(comments, None)

    out: list[str] = []
    size = 0  # characters in out
    last = 0  # q[last:] is not in out yet
    at = 0
    while True:
        room = MAX_FINGERPRINT_CHARS - size
        if room <= at - last:
            break
        h = _LIST_WORD.search(q, at, min(n, last + room + 5))
        if h is None:
            break
        m = _LONG_LIST.match(q, h.start())
        if m is None:
            at = h.start() + 1
            continue
        if m.start(1) >= 0:
            keep = m.end(1)
        elif opens_literal(m.start(2)):
            keep = m.end(2)
        else:
            at = m.end()
            continue
        out.append(q[last:keep])
        size += keep - last
        last = at = m.end()
    if not out:
        return q
    out.append(q[last:])
    return "".join(out)


def _repeat_union_indexed(q: str) -> str:
    """``_UNION.sub(r"\\1 /*repeat\\2*/", q)`` for long texts with many ``select``s, same result.

    The regex tries, for every ``select`` start s, every later " union " u (the lazy ``.*?``; each gap is
    one ``\\s``) and checks that ``q[s:u]`` repeats right after it. Here the far candidates are looked up
    by the first ``_UNION_KEY`` characters of the text after each " union [all] ", so only plausible pairs
    are compared. Adversarial texts (thousands of parts sharing long prefixes) stop after
    ``_UNION_CHECK_BUDGET`` comparisons and keep the rest unchanged; pt itself needs minutes on such texts.
    """
    unions = [m.start() for m in _UNION_AT.finditer(q)]  # u: the gap before "union", then "union", a gap
    if not unions:
        return q
    n = len(q)
    ws = _ASCII_WS

    def after(u: int) -> int:
        # Where the repeated X must start after the gap at u: after " union all " when there is one (with
        # " union " alone X would start with "all", never with "select").
        if q.startswith("all", u + 7) and u + 10 < n and q[u + 10] in ws:
            return u + 11
        return u + 7

    key_len = _UNION_KEY
    starts = {u: after(u) for u in unions}
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
        near_lo = bisect_left(unions, s + 7)  # X is "select", a gap and maybe more
        near_hi = bisect_left(unions, s + key_len)
        far = index.get(q[s : s + key_len], ())
        candidates = unions[near_lo:near_hi] + [u for u in far if u >= s + key_len]
        newline = q.find("\n", s + 7)  # the regex's "." stops at a newline (none is left in a fingerprint)
        for u in candidates:
            budget -= 1
            if budget < 0:
                out.append(q[last:])
                return "".join(out)
            if 0 <= newline < u:
                break
            x = q[s:u]
            p = starts[u]
            if not q.startswith(x, p):
                continue
            label = q[u:p - 1]
            end = p + len(x)
            while end + 6 < n and q[end] in ws and q.startswith("union", end + 1) and q[end + 6] in ws:
                p = after(end)
                if not q.startswith(x, p):
                    break
                label = q[end:p - 1]
                end = p + len(x)
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
