"""The PostgreSQL parser's fast path (block-level line matching) never changes a result: entries (every
field, attribute order included) and counters equal those of the general per-line path, on pgBadger's
fixtures with several prefixes, block sizes and caps, and on hypothesis-built log-shaped input."""
from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rds_slowlog.logfile import open_log
from rds_slowlog.parsers.postgres import RDS_LOG_LINE_PREFIX, PostgresLogParser, compile_prefix
from tests.conftest import ROOT


def _fixture_prefixes() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("postgres_conformance", ROOT / "bench" / "postgres_conformance.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("postgres_conformance", mod)
    spec.loader.exec_module(mod)
    return {name: prefix for name, (prefix, _) in mod.FIXTURES.items()}


FIXTURES = _fixture_prefixes()


def _run(data: bytes, fast: bool, block_bytes: int | None = None, **kw):
    p = PostgresLogParser("src", **kw)
    p.fast_path = fast
    if block_bytes:
        p.block_bytes = block_bytes
    entries = [(e.as_dict(), list(e.attrs)) for e in p.parse(io.BytesIO(data))]
    return entries, p.stats.as_dict()


def _both(data: bytes, block_bytes: int | None = None, **kw):
    return _run(data, True, block_bytes, **kw), _run(data, False, None, **kw)


def test_fast_path_equals_general_path_on_pgbadger_fixtures(pgbadger_corpus: Path) -> None:
    total = 0
    for f in sorted(pgbadger_corpus.iterdir()):
        with open_log(f) as fh:
            data = fh.read()
        for prefix in {FIXTURES[f.name], RDS_LOG_LINE_PREFIX, "%m [%p] "}:
            for bb in (None, 97, 4096):
                fast, slow = _both(data, bb, log_line_prefix=prefix)
                assert fast == slow, (f.name, prefix, bb)
            fast, slow = _both(data, 333, log_line_prefix=prefix, max_line_bytes=150, max_query_bytes=60)
            assert fast == slow, (f.name, prefix, "caps")
        total += len(_run(data, True, log_line_prefix=FIXTURES[f.name])[0])
    assert total > 115000  # the comparison covered real entries


def test_block_pattern_splits_lines_like_the_fast_pattern() -> None:
    line = b"2026-11-27 16:14:31 UTC:127.0.0.1(44062):app@shop:[24491]:LOG:  duration: 0.201 ms  execute P_1: SELECT 1"
    fm = compile_prefix(RDS_LOG_LINE_PREFIX, fast=True).match(line)
    bm = compile_prefix(RDS_LOG_LINE_PREFIX, block=True).match(line + b"\nnext\n")
    assert fm is not None and bm is not None
    assert bm.group("msg") == b"SELECT 1" and bm.start("msg") == fm.end()
    assert all(bm.group(k) == fm.group(k) for k in fm.re.groupindex)
    # whitespace in the block pattern never runs into the next line
    assert compile_prefix(RDS_LOG_LINE_PREFIX, block=True).match(line[:62] + b"\n  x\n") is None


_TS = st.sampled_from([b"2026-11-27 16:14:31 UTC", b"2026-11-27 16:14:32 CET", b"2026-11-27 16:14:31 XYZ",
                       b"2026-11-27 16:14:33 +02"])
_WHO = st.sampled_from([b"127.0.0.1(44062):app@shop:[1]", b"127.0.0.1(44064):app@shop:[2]",
                        b"[local]:postgres@postgres:[1]", b":@:[3]", b"10.0.0.1:me@srv@db:[2]",
                        b"2001:db8::1(5432):u@d:[1]"])
_MSG = st.sampled_from([
    b"LOG:  duration: 0.201 ms  statement: SELECT 1", b"LOG:  duration: 1.5 ms  execute P_1: SELECT $1",
    b"LOG:  duration: 0.003 ms  execute <unnamed>: UPDATE t SET a = $1", b"LOG:  duration: 0.010 ms  parse <unnamed>: SELECT $1",
    b"LOG:  duration: 0.004 ms  bind P_1: SELECT $1", b"LOG:  duration: 2 ms", b"LOG:  duration: 2 ms  plan:",
    b"LOG:  statement: SELECT 2", b"LOG:  execute S_1: SELECT 3", b"LOG:  connection received: host=x",
    b"DETAIL:  parameters: $1 = '44', $2 = '2'", b"DETAIL:  other detail", b"CONTEXT:  SQL function",
    b"HINT:  try again", b"STATEMENT:  SELECT 4", b"ERROR:  syntax error", b"FATAL:  bye",
    b"LOG:  duration: 0.5 ms  statement: ", b"LOG:   duration: 0.5 ms  statement:  SELECT  5",
    b"LOG:  duration: 0.1 ms  statement: SELECT '\xe9\xff'", b"LOG:\tduration: 0.2 ms\tstatement: SELECT 6",
])
_LINE = st.one_of(
    st.tuples(_TS, _WHO, _MSG).map(lambda t: t[0] + b":" + t[1] + b":" + t[2] + b"\n"),
    st.sampled_from([b"\tFROM t WHERE x = 1\n", b"  AND y\n", b"\n", b"garbage line\n", b"---- END OF LOG ----\n",
                     b"\tcontinued [Your log message was truncated]\n", b"\tcr line\r\n",
                     b"2026-11-27 16:14:31 UTC:127.0.0.1(1):a@b:[1]:LOG:  duration: 1 ms  statement: x\r\n"]),
)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_LINE, max_size=25), st.sampled_from([None, 1, 40, 300]), st.booleans(), st.booleans())
def test_fast_path_equals_general_path_on_log_shaped_input(lines, block_bytes, caps, no_final_newline) -> None:
    data = b"".join(lines)
    if no_final_newline:
        data = data.rstrip(b"\n")
    kw = {"max_line_bytes": 90, "max_query_bytes": 40, "max_sessions": 2} if caps else {}
    fast, slow = _both(data, block_bytes, **kw)
    assert fast == slow
