"""PostgreSQL-aware query normaliser: one query class per statement shape, whatever its constants.

This is deliberately *not* pt-query-digest's MySQL fingerprint: PostgreSQL has ``$N`` parameters,
``::type`` casts, ``E'…'`` escape strings, ``''`` quote doubling, dollar quoting and case-preserving
``"Quoted"`` identifiers, all of which the MySQL rules get wrong (``tbl_12`` → ``tbl_?``, ``$1`` → ``$?``,
``"Name"`` → ``?``).

Rules, applied in one tokenising pass (a single alternation regex, so every character is looked at once)
plus two small collapse passes:

1. Comments ``-- …`` and ``/* … */`` are removed (nested block comments are handled one level deep).
2. Constants become ``?``: ``'…'`` strings (``''`` escapes inside), ``E'…'`` (backslash escapes),
   ``B'…'``/``X'…'``/``U&'…'``, dollar-quoted ``$$…$$`` / ``$tag$…$tag$`` bodies, and numbers
   (integers, decimals, exponents, ``0x``/``0o``/``0b`` and ``1_000`` forms of PostgreSQL 16).
   Unterminated strings and dollar quotes run to the end of the text, as in PostgreSQL's lexer (this also
   keeps the scan linear: an opener never searches for its closer more than once).
3. Bind parameters ``$1``, ``$2`` … become ``?`` too, so a query logged with literals (simple protocol)
   and the same query through a prepared statement (extended protocol) share one class.
4. Digits inside identifiers are kept (``tbl_12``, ``t1.col2``): the tokenizer reads identifiers whole.
5. ``::type`` casts are kept, type modifiers included (``::numeric(10,2)``, ``::int[]``): the type is
   structure, not data.
6. ``"Quoted"`` identifiers keep their exact text; everything else is lower-cased. ``true``, ``false``
   and ``null`` are kept as keywords (``IS NULL`` is structure).
7. Whitespace runs become one space; leading/trailing space and trailing ``;`` are dropped.
8. ``IN (?, ?, …)`` → ``in (?+)`` (any length, so 1- and 50-element lists share a class);
   ``VALUES (…), (…), …`` → the first row only, and a row made only of ``?`` → ``(?+)``.

``normalize`` never raises and is idempotent (``normalize(normalize(q)) == normalize(q)``), both checked
by property tests. Inputs longer than :data:`MAX_QUERY_CHARS` are normalised on that prefix only, which
bounds the cost of pathological queries (100 MB ``VALUES`` lists).

Query id: upper-case hex MD5 of the normalised text, 32 digits — the same shape as the MySQL
(pt-query-digest) checksum so dashboards treat both engines alike; :func:`short_id` is its last 16 digits.
It is *not* PostgreSQL's ``queryid`` (``pg_stat_statements``/``%Q``), which hashes the parse tree inside the
server and is not computable from text; the parser keeps that one as ``attrs["pg_queryid"]`` when logged.
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Final

#: Longer inputs are normalised on this prefix only.
MAX_QUERY_CHARS: Final = 65536
#: Distinct query texts remembered by the normaliser's LRU cache.
CACHE_SIZE: Final = 65536

# One alternation; the first matching branch wins at each position. Order matters: E'…' before
# identifiers, casts before identifiers, dollar quotes before parameters. Prefixed strings and numbers
# carry a look-behind so that they are never taken from the middle of an identifier (``note'x'``,
# ``tbl_12``), which keeps the result the same as the fast pattern below, which skips identifiers.
_IDENT: Final = r"(?:[^\W\d]|[\udc80-\udcff])[\w$\udc80-\udcff]*"  # letters/_ (any script), surrogate-escaped bytes
_LITERALS: Final = rf"""
      (?P<comment>--[^\n]*|/\*(?:/\*(?:[^*]|\*(?!/))*(?:\*/|\Z)|[^*/]|\*(?!/)|/(?!\*))*(?:\*/|\Z))
    | (?P<estr>(?<![\w$])[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z))
    | (?P<bstr>(?<![\w$])(?:[bBxXnN]|[uU]&)'(?:[^']|'')*(?:'|\Z))
    | (?P<str>'(?:[^']|'')*(?:'|\Z))
    | (?P<uqid>(?<![\w$])[uU]&"(?:[^"]|"")*(?:"|\Z))
    | (?P<qid>"(?:[^"]|"")*(?:"|\Z))
    | (?P<dollar>\$(?P<tag>(?:[^\W\d][\w]*)?)\$.*?(?:\$(?P=tag)\$|\Z))
    | (?P<param>\$\d+)
    | (?P<cast>::\s*(?:"(?:[^"]|"")*"|{_IDENT})(?:\s*\.\s*(?:"(?:[^"]|"")*"|{_IDENT}))*
        (?:\s*\(\s*\d+(?:\s*,\s*\d+)*\s*\))?(?:\s*\[\s*\d*\s*\])*)
"""
_NUMBER: Final = r"""
    | (?P<num>(?<![\w$])(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+
        |(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
"""
#: Runs of identifiers, whitespace and punctuation that cannot start a literal: one match (one callback,
#: one ``lower()``) for most of a query. An identifier directly followed by ``'``/``"``/``&`` is left to the
#: branches below (``E'…'``, ``U&"…"``); the atomic group stops it from giving back characters.
_PLAIN: Final = rf"""(?P<plain>(?:(?>{_IDENT})(?!['"&])|[\s(),;=<>*+!|%^~@#\[\]{{}}?&])+)"""
_TOKEN: Final = re.compile(_PLAIN + "|" + _LITERALS + rf"| (?P<ident>{_IDENT})" + _NUMBER, re.X | re.S)

#: Fast path, no Python callback: for ASCII text without ``"``, ``$``, ``--``, ``/*``, ``::`` or ``\\``
#: the only constructs left are plain/prefixed strings and numbers, all replaced by ``?`` in C, then one
#: ``lower()``. It gives exactly the full tokenizer's result on such text (checked by a property test).
_SIMPLE: Final = re.compile(
    # every branch starts with a literal or a class (so the engine can skip ahead); the look-behinds sit
    # after the first character and look two back, which keeps "not inside an identifier" exact
    r"""'(?:[^']|'')*(?:'|\Z)
      | [eEbBxXnN](?<![\w$][eEbBxXnN])'(?:[^']|'')*(?:'|\Z)
      | [uU](?<![\w$][uU])&'(?:[^']|'')*(?:'|\Z)
      | \d(?<![\w$]\d)(?:(?<=0)[xX][0-9a-fA-F_]+|(?<=0)[oO][0-7_]+|(?<=0)[bB][01_]+
            |[\d_]*(?:\.[\d_]*)?(?:[eE][+-]?\d+)?)
      | \.(?<![\w$]\.)\d[\d_]*(?:[eE][+-]?\d+)?""",
    re.X | re.S,
)
_NEEDS_TOKENIZER: Final = ('"', "$", "--", "/*", "::", "\\")
#: One scan for any of :data:`_NEEDS_TOKENIZER` (same answer as testing each marker with ``in``).
_NEEDS_TOKENIZER_RE: Final = re.compile(r'["$\\]|--|/\*|::')

_IN_LIST: Final = re.compile(r"\bin \((?:\?, ?)*\?\)")
_ROW: Final = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
_VALUES: Final = re.compile(rf"\bvalues ?({_ROW})(?: ?, ?{_ROW})*")
_ALL_PARAMS_ROW: Final = re.compile(r"\((?:\?, ?)*\?\)\Z")


def _token(m: re.Match[str]) -> str:
    kind = m.lastgroup
    if kind == "plain" or kind == "ident":
        return m.group().lower()
    if kind in ("str", "num", "param", "estr", "bstr", "dollar"):
        return "?"
    if kind == "comment":
        return " "
    if kind == "cast":
        # keep the type (whitespace is collapsed later like everywhere else); a quoted type keeps its case
        return m.group() if '"' in m.group() else m.group().lower()
    return m.group()  # qid, uqid: quoted identifiers keep their case


# Everything the token regex does not match (operators, punctuation) is copied as is; scanning with
# sub() keeps that in C. The pattern cannot match the empty string, so sub() always advances.
_sub = _TOKEN.sub
_simple_sub = _SIMPLE.sub


def _values(m: re.Match[str]) -> str:
    row = m.group(1)
    if _ALL_PARAMS_ROW.match(row):
        row = "(?+)"
    return "values " + row


def _normalize(query: str) -> str:
    text = query[:MAX_QUERY_CHARS]
    if text.isascii() and _NEEDS_TOKENIZER_RE.search(text) is None:
        text = _simple_sub("?", text).lower()
    else:
        text = _sub(_token, text)
    text = " ".join(text.split())  # str.split() and \s agree on what whitespace is; this is 3x faster
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if "in (" in text:
        text = _IN_LIST.sub("in (?+)", text)
    if "values" in text:
        text = _VALUES.sub(_values, text)
    return text


_cached_normalize = lru_cache(maxsize=CACHE_SIZE)(_normalize)


def normalize(query: str) -> str:
    """The PostgreSQL-aware normalised form of ``query`` (see the module docstring for the rules).

    Cached by exact text (bounded LRU). Never raises for any ``str``.
    """
    return _cached_normalize(query)


#: Texts longer than this get no :func:`class_key` (bounds the classifier's key cache, and stays far below
#: :data:`MAX_QUERY_CHARS`, so no keyed text is ever cut).
MAX_KEYED_CHARS: Final = 1024
# A digit run that starts a number in the fast path (not preceded by a word character), unless it is a
# lone "0" (which may start 0x/0o/0b): becomes "1". Lone "0"s stay as they are.
_KEY_RUN: Final = re.compile(r"(?<!\w)(?:[1-9]|0(?=\d))\d*")


def class_key(query: str) -> str | None:
    """A key shared only by texts with the same :func:`normalize` result, or ``None`` (no key).

    For the classifier's cache: texts that differ only in their numbers (``aid = 13675`` vs ``aid = 8190``)
    share one key, so a new text of a known shape skips normalisation.

    Why it is sound. Keys are only given to texts of at most :data:`MAX_KEYED_CHARS` characters that
    take the fast path of :func:`normalize` (ASCII, none of :data:`_NEEDS_TOKENIZER`); two texts with the
    same key differ only in digits, so both take it, uncut. The key rewrites only maximal digit runs not
    preceded by a word character: every other digit (``tbl_12``, ``0x1f``, ``1_000``, ``1e5``) is kept.
    Each rewritten run is either a lone ``0`` (kept) or anything else (``1``). In the fast path's pattern
    a digit is only ever tested for being a digit (a word character), except ``(?<=0)`` before
    ``x``/``o``/``b``, which sees whether a run *is* a lone ``0``; the digits that follow such a prefix
    are preceded by a letter, so they are kept. Hence both texts split into the same matches at the same
    places (runs stretched or shrunk), and a rewritten run can never be left outside a match (a digit
    not preceded by a word character always starts or continues a number or sits inside a string), so
    every rewritten run becomes the same ``?``: the substituted texts are equal, and so is everything
    after (lower-casing, whitespace, ``IN``/``VALUES`` collapsing).
    """
    if len(query) > MAX_KEYED_CHARS or not query.isascii() or _NEEDS_TOKENIZER_RE.search(query) is not None:
        return None
    return _KEY_RUN.sub("1", query)


def query_id(normalized: str) -> str:
    """Upper-case hex MD5 of the normalised text (32 digits), the same shape as the MySQL checksum.

    Text decoded with ``surrogateescape`` is hashed as its original bytes.
    """
    return hashlib.md5(normalized.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest().upper()


def short_id(normalized: str) -> str:
    """The last 16 hex digits of :func:`query_id`, for compact display."""
    return query_id(normalized)[16:]


def cache_info() -> tuple[int, int, int | None, int]:
    """``(hits, misses, maxsize, currsize)`` of the normaliser cache."""
    info = _cached_normalize.cache_info()
    return info.hits, info.misses, info.maxsize, info.currsize
