"""Query classes: fingerprint, query id, statement type and tables — sqlparse once per statement shape.

The hot path calls :meth:`Classifier.classify` once per entry. Bounded caches keep that cheap: exact query
text → class (logs repeat identical texts: prepared statements, pings, ORMs), and fingerprint → class
(every distinct text of one class shares the fingerprint's ids and statement type). For MySQL a third
cache sits between them: texts that differ only in their digits (``id=13675`` vs ``id=8190``) share a key
(:func:`mysql_class_key`), so a new text of a known shape skips the fingerprint.

Tables are the entry's own, never another text's of the same class: the fingerprint folds digits inside
identifiers (``orders_2024_01`` and ``orders_2024_02`` are one class), so the class cannot carry them.
They come from a *table template* per statement shape (:func:`table_key`: the text with its
single-quoted strings emptied and every digit run replaced by one ``0``): sqlparse runs once per shape, on
the shape with each digit run numbered (``sbtest1 … id=2``), and the template says which of the text's own
digit runs each table name holds, so a new text of a known shape costs one regex split and a join.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

import sqlparse
from sqlparse import tokens as T
from sqlparse.sql import Identifier, IdentifierList, Parenthesis, Function

if TYPE_CHECKING:
    from rds_slowlog.entry import Entry

#: Queries longer than this are classified on their prefix only (sqlparse is slow on huge texts).
MAX_CLASSIFY_CHARS: Final = 8192
#: Default size of each cache; a few MB at most.
DEFAULT_CACHE_SIZE: Final = 65536
#: Texts longer than this get no digit key (bounds the key cache: at most this many characters per key).
MAX_KEYED_CHARS: Final = 1024
#: Size of the digit-key cache.
KEY_CACHE_SIZE: Final = 16384
#: Table keys longer than this are cached by their BLAKE2b digest (a multi-megabyte INSERT is a shape too).
MAX_TABLE_KEY_CHARS: Final = 4096

_DIGITS: Final = re.compile(r"[0-9]+")
_DIGIT_SPLIT: Final = re.compile(r"([0-9]+)")
_ZERO: Final = re.compile(r"0")
_LONE_QUOTE: Final = re.compile(r"(?<!')'(?!')")
#: Single-quoted strings as the engine's lexer reads them (MySQL: backslash escapes; PostgreSQL's standard
#: strings: ``''`` only). Their content never names a table, and emptying them keeps one shape per
#: statement however its literals vary.
_SQ_STRINGS: Final = {
    "mysql": re.compile(r"'[^'\\]*+(?:\\.[^'\\]*+)*+'", re.DOTALL),   # unrolled: runs in one C loop
    "postgres": re.compile(r"'[^']*+'"),
}
# Looser than the fingerprint's own CALL test (any whitespace, any case): a false hit only costs the key.
_CALL_START: Final = re.compile(r"\s*call\s", re.IGNORECASE)


def mysql_class_key(query: str) -> str | None:
    """``query`` with every run of digits replaced by one ``0``; ``None`` where that is not safe.

    Why texts with the same key have the same MySQL fingerprint: the fingerprint turns every run that
    starts with ``[0-9+-]`` (or ``[xb.]`` before one) and continues over ``[0-9a-f.xb+-]`` into ``?``, even
    inside words, and no rule before that one looks at what the digits are, only at whether a character is
    a digit, with three exceptions, which get no key: a ``/*`` comment (the toolkit marker
    ``/*db.tbl:1/2*/`` wants single digits, the mysqldump prefix is literal), ``CALL name(`` (the name is
    kept as written) and ``administrator command:`` (kept whole). Digit runs sit wholly inside one number
    match, and shrinking a run to one digit changes neither where matches start nor where they end, so
    both texts reach the number rule with the same structure and leave it as the same string; every
    later rule sees identical input. Long texts are skipped to keep the cache small (and far below the
    fingerprint's own length cap).
    """
    if (len(query) > MAX_KEYED_CHARS or "/*" in query or query.startswith("administrator command: ")
            or _CALL_START.match(query) is not None):
        return None
    return _DIGITS.sub("0", query)

_TABLE_KEYWORDS: Final = frozenset({
    "FROM", "JOIN", "INNER JOIN", "LEFT JOIN", "RIGHT JOIN", "LEFT OUTER JOIN", "RIGHT OUTER JOIN",
    "FULL JOIN", "FULL OUTER JOIN", "CROSS JOIN", "STRAIGHT_JOIN", "NATURAL JOIN", "INTO", "UPDATE",
    "TABLE", "USING", "LEFT JOIN LATERAL",
})


#: A table name of a template: the name itself, or its pieces around digit runs and the indexes (into the
#: text's digit runs) that go between them.
TableTemplate = str | tuple[tuple[str, ...], tuple[int, ...]]


def table_key(query: str, strings: re.Pattern[str]) -> tuple[str, list[str]]:
    """``(shape, digit runs)`` of a text: the shape has every single-quoted string emptied (``''``) and every
    digit run replaced by one ``0``; the runs are the text's own, in order (outside strings).

    Texts with the same shape name their tables alike except for the digits, which
    :func:`render_tables` puts back from the runs.
    """
    if len(query) > MAX_CLASSIFY_CHARS:
        return _long_table_key(query, strings)
    q = strings.sub("''", query) if "'" in query else query
    parts = _DIGIT_SPLIT.split(q)
    if len(parts) == 1:
        return q, []
    return "0".join(parts[0::2]), parts[1::2]


def _long_table_key(query: str, strings: re.Pattern[str]) -> tuple[str, list[str]]:
    """:func:`table_key` of a long text, from its first ``2 * MAX_CLASSIFY_CHARS`` characters only.

    Tables are named at a statement's start, and a multi-megabyte ``INSERT … VALUES`` must cost what its head
    costs. So that such texts still share one shape whatever their length, the head's shape is cut back to
    before a string the cut left open and then to its last comma (a row or list item cut in the middle),
    and to :data:`MAX_CLASSIFY_CHARS` (what sqlparse reads).
    """
    head = query[: 2 * MAX_CLASSIFY_CHARS]
    q = strings.sub("''", head)
    lone = _LONE_QUOTE.search(q)
    if lone is not None:
        q = q[: lone.start()]
    comma = q.rfind(",")
    if comma > 0:
        q = q[: comma + 1]
    parts = _DIGIT_SPLIT.split(q)
    shape = "0".join(parts[0::2])[:MAX_CLASSIFY_CHARS]
    return shape, parts[1::2][: shape.count("0")]


def table_template(shape: str) -> tuple[str, tuple[TableTemplate, ...]]:
    """Statement type and table templates of a shape (sqlparse, once per shape).

    Every ``0`` in a shape stands for one digit run; sqlparse reads the shape with the k-th run written as
    the number ``k + 1``, so each digit run left in a table name says which run of the text belongs there.
    """
    counter = iter(range(1, 1 << 62))
    numbered = _ZERO.sub(lambda _: str(next(counter)), shape) if "0" in shape else shape
    kind, tables = statement_type_and_tables(numbered)
    out: list[TableTemplate] = []
    for t in tables:
        pieces = _DIGIT_SPLIT.split(t)
        if len(pieces) == 1:
            out.append(t)
        else:
            out.append((tuple(pieces[0::2]), tuple(int(r) - 1 for r in pieces[1::2])))
    return kind, tuple(out)


def render_tables(template: tuple[TableTemplate, ...], runs: list[str]) -> tuple[str, ...]:
    """The table names of one text: its own digit runs put into the shape's template."""
    out: list[str] = []
    n = len(runs)
    for t in template:
        if t.__class__ is str:
            out.append(t)  # type: ignore[arg-type]
            continue
        pieces, idx = t  # type: ignore[misc]
        buf = [pieces[0]]
        for k, i in enumerate(idx):
            buf.append(runs[i] if i < n else str(i + 1))
            buf.append(pieces[k + 1])
        out.append("".join(buf))
    seen: dict[str, None] = dict.fromkeys(out)
    return tuple(seen)


class QueryClass:
    """What every entry of one class shares."""

    __slots__ = ("fingerprint", "query_id", "short_id", "statement_type", "tables")

    def __init__(self, fingerprint: str, query_id: str, short_id: str, statement_type: str,
                 tables: tuple[str, ...]) -> None:
        self.fingerprint = fingerprint
        self.query_id = query_id
        self.short_id = short_id
        self.statement_type = statement_type
        self.tables = tables

    def __repr__(self) -> str:
        return f"QueryClass({self.query_id}, {self.statement_type}, {self.tables}, {self.fingerprint[:60]!r})"


def statement_type_and_tables(query: str) -> tuple[str, tuple[str, ...]]:
    """Statement type (``SELECT``, ``INSERT``, … or ``UNKNOWN``) and the tables it names, via sqlparse.

    Works on a representative query of the class (real identifiers, not ``?``-replaced ones). Never
    raises: sqlparse failures give ``("UNKNOWN", ())``.
    """
    text = query[:MAX_CLASSIFY_CHARS]
    if text.lstrip()[:21].lower() == "administrator command":
        return "ADMIN", ()
    try:
        statements = [s for s in sqlparse.parse(text) if s.tokens and str(s).strip()]
    except Exception:  # sqlparse has no documented exception set; a class must never break the run
        return "UNKNOWN", ()
    if not statements:
        return "UNKNOWN", ()
    stmt = statements[0]
    kind = stmt.get_type()
    if kind == "UNKNOWN":
        first = stmt.token_first(skip_cm=True)
        if first is not None and first.ttype in T.Keyword:
            kind = first.normalized.upper()
    if kind == "UNKNOWN":
        head = text.lstrip().split(None, 1)
        if head and head[0].isalpha():
            kind = head[0].upper()
    tables: list[str] = []
    _collect_tables(stmt, tables)
    seen: dict[str, None] = {}
    for t in tables:
        seen.setdefault(t, None)
    return kind, tuple(seen)


def _collect_tables(token_list, out: list[str]) -> None:
    expecting = False
    for tok in token_list.tokens:
        if tok.is_whitespace or tok.ttype in T.Comment:
            continue
        if tok.ttype in T.Keyword or tok.ttype in T.Keyword.DML or tok.ttype in T.Keyword.DDL:
            expecting = tok.normalized.upper() in _TABLE_KEYWORDS
            if tok.normalized.upper() == "TABLE":
                expecting = True
            continue
        if isinstance(tok, Parenthesis):
            _collect_tables(tok, out)  # sub-queries
            expecting = False
            continue
        if expecting:
            if isinstance(tok, IdentifierList):
                for ident in tok.get_identifiers():
                    _add_identifier(ident, out)
            elif isinstance(tok, (Identifier, Function)):
                _add_identifier(tok, out)
            elif tok.ttype in T.Name:
                out.append(_unquote(tok.value))
            expecting = False
        elif tok.is_group:
            _collect_tables(tok, out)


def _add_identifier(ident, out: list[str]) -> None:
    if isinstance(ident, Function):
        name = ident.get_real_name()
        if name:
            out.append(_unquote(name))
        return
    if isinstance(ident, Identifier):
        if any(isinstance(t, Parenthesis) for t in ident.tokens):
            for t in ident.tokens:
                if isinstance(t, Parenthesis):
                    _collect_tables(t, out)
            return
        name = ident.get_real_name()
        if not name:
            return
        parent = ident.get_parent_name()
        out.append(f"{_unquote(parent)}.{_unquote(name)}" if parent else _unquote(name))


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "`\"[":
        return name[1:-1]
    if len(name) >= 2 and name[0] == "[" and name[-1] == "]":
        return name[1:-1]
    return name


class Classifier:
    """Turns query texts into :class:`QueryClass` objects with bounded caches.

    ``fingerprint`` and ``query_id`` are the engine's functions (pt-compatible for MySQL, the
    PostgreSQL-aware normaliser for PostgreSQL). Caches are plain dicts cleared wholesale when full:
    cheaper per hit than an LRU and good enough for logs whose working set is a few thousand classes.
    The object returned for a text carries that text's own tables; texts whose tables are the class's
    share one object.
    """

    def __init__(self, fingerprint: Callable[[str], str], query_id: Callable[[str], str],
                 short_id: Callable[[str], str], cache_size: int = DEFAULT_CACHE_SIZE,
                 cache_key: Callable[[str], str | None] | None = None, engine: str = "mysql") -> None:
        """``cache_key`` (optional) maps a text to a key that only texts with the same fingerprint share,
        or to ``None`` (no key); it must be cheaper than ``fingerprint`` to pay off. ``engine`` picks the
        string syntax of :func:`table_key`."""
        self._fingerprint = fingerprint
        self._query_id = query_id
        self._short_id = short_id
        self._cache_size = cache_size
        self._cache_key = cache_key
        self._strings = _SQ_STRINGS[engine]
        #: the MySQL digit key (every digit run → "0") equals table_key's shape for texts without strings
        self._key_is_shape = cache_key is mysql_class_key
        self._by_text: dict[str, QueryClass] = {}
        self._by_key: dict[str, QueryClass] = {}
        self._by_fingerprint: dict[str, QueryClass] = {}
        self._templates: dict[str | bytes, tuple[str, tuple[TableTemplate, ...], int]] = {}
        self._key_templates: dict[str, tuple[str, tuple[TableTemplate, ...], int]] = {}
        self._rendered: dict[tuple[int, int, tuple[str, ...]], tuple[QueryClass, Any, QueryClass]] = {}
        self.classes_computed = 0
        self.fingerprints_computed = 0
        self.templates_computed = 0

    def _template(self, shape: str) -> tuple[str, tuple[TableTemplate, ...], int]:
        """``(statement type, table template, digit runs the table names reach)`` of a shape (cached)."""
        k: str | bytes = shape
        if len(shape) > MAX_TABLE_KEY_CHARS:
            k = hashlib.blake2b(shape.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        got = self._templates.get(k)
        if got is None:
            kind, template = table_template(shape)
            need = 0
            for t in template:
                if t.__class__ is not str:
                    need = max(need, max(t[1]) + 1)  # type: ignore[index]
            got = (kind, template, need)
            self.templates_computed += 1
            if len(self._templates) >= self._cache_size:
                self._templates.clear()
            self._templates[k] = got
        return got

    def classify(self, query: str) -> QueryClass:
        qc = self._by_text.get(query)
        if qc is not None:
            return qc
        key = self._cache_key(query) if self._cache_key is not None else None
        if key is not None and self._key_is_shape and "'" not in query:
            # the digit key of a text without strings is its table shape already: one pass, not two
            kind, template, need = self._template(key)
            if need == 1:
                m = _DIGITS.search(query)
                runs: tuple[str, ...] = (m.group(),) if m is not None else ()
            elif need:
                # only the digit runs up to the last one a table name holds (sbtest3 … id=5023: the first)
                it = _DIGITS.finditer(query)
                runs = tuple(next(it).group() for _ in range(need))
            else:
                runs = ()
        else:
            # texts with strings: two texts with one digit key have one shape (digits never open or close a
            # string), so the key finds the template; the runs are the text's own when all the needed ones
            # come before its first string (sbtest3 … VALUES ('…')), else the full table_key pass decides
            got = self._key_templates.get(key) if key is not None and self._key_is_shape else None
            runs = None  # type: ignore[assignment]
            if got is not None:
                kind, template, need = got
                if not need:
                    runs = ()
                else:
                    quote = query.find("'")
                    found = []
                    for m in _DIGITS.finditer(query, 0, quote):
                        found.append(m.group())
                        if len(found) == need:
                            runs = tuple(found)
                            break
            if runs is None:
                shape, all_runs = table_key(query, self._strings)
                kind, template, need = self._template(shape)
                runs = tuple(all_runs[:need])
                if key is not None and self._key_is_shape:
                    if len(self._key_templates) >= min(self._cache_size, KEY_CACHE_SIZE):
                        self._key_templates.clear()
                    self._key_templates[key] = (kind, template, need)
        if key is not None:
            qc = self._by_key.get(key)
        if qc is None:
            fp = self._fingerprint(query)
            self.fingerprints_computed += 1
            qc = self._by_fingerprint.get(fp)
            if qc is None:
                qc = QueryClass(fp, self._query_id(fp), self._short_id(fp), kind, render_tables(template, list(runs)))
                if len(self._by_fingerprint) >= self._cache_size:
                    self._by_fingerprint.clear()
                self._by_fingerprint[fp] = qc
                self.classes_computed += 1
            if key is not None:
                if len(self._by_key) >= min(self._cache_size, KEY_CACHE_SIZE):
                    self._by_key.clear()
                self._by_key[key] = qc
        # the object for this text: its class with its own tables, shared by every text whose tables are the
        # same (sbtest1 … sbtest10: ten objects per class, not one per text). The value holds the key's
        # objects, so their ids cannot be reused while the entry exists.
        rkey = (id(qc), id(template), runs)
        got = self._rendered.get(rkey)
        if got is None:
            tables = render_tables(template, list(runs)) if need else template
            obj = qc if tables == qc.tables else QueryClass(qc.fingerprint, qc.query_id, qc.short_id,
                                                            qc.statement_type, tables)  # type: ignore[arg-type]
            if len(self._rendered) >= self._cache_size:
                self._rendered.clear()
            self._rendered[rkey] = (qc, template, obj)
        else:
            obj = got[2]
        if len(query) <= MAX_CLASSIFY_CHARS:   # a megabyte INSERT is not worth its memory as a cache key
            if len(self._by_text) >= self._cache_size:
                self._by_text.clear()  # in place: classify_entries() holds a reference to this dict
            self._by_text[query] = obj
        return obj

    def classify_entries(self, entries: Iterable[Entry]) -> Iterator[tuple[Entry, QueryClass]]:
        """``(entry, classify(entry.query))`` for each entry, with the cache hit inlined.

        Most entries hit the text cache, so the hit costs one ``dict.get`` here instead of a method call.
        """
        get = self._by_text.get
        classify = self.classify
        for e in entries:
            q = e.query
            qc = get(q)
            yield e, (qc if qc is not None else classify(q))


def classifier_for(engine: str, cache_size: int = DEFAULT_CACHE_SIZE) -> Classifier:
    """The classifier for an engine name (``mysql`` or ``postgres``)."""
    if engine == "mysql":
        from rds_slowlog.fingerprint import mysql as fp_mysql

        return Classifier(fp_mysql.fingerprint, fp_mysql.checksum, fp_mysql.short_id, cache_size,
                          cache_key=mysql_class_key)
    if engine == "postgres":
        from rds_slowlog.fingerprint import postgres as fp_pg

        return Classifier(fp_pg.normalize, fp_pg.query_id, fp_pg.short_id, cache_size,
                          cache_key=fp_pg.class_key, engine="postgres")
    raise ValueError(f"unknown engine {engine!r}: expected 'mysql' or 'postgres'")
