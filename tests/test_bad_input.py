"""Bad input end to end through the CLI: clear per-file counts, exit 0, no traceback, bounded memory."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rds_slowlog.testing.measure import measure

CLI = [sys.executable, "-m", "rds_slowlog.cli"]
GOOD_MYSQL = (b"# Time: 2026-11-27T14:00:00.000001Z\n# User@Host: app[app] @  [10.0.0.1]  Id: 7\n"
              b"# Query_time: 0.5  Lock_time: 0.0 Rows_sent: 1  Rows_examined: 2\n"
              b"SET timestamp=1795788000;\nSELECT * FROM t WHERE id = 1;\n")
GOOD_PG = (b"2026-11-27 14:00:00 UTC:10.0.0.1(5432):app@shop:[42]:LOG:  duration: 1.5 ms  statement: SELECT 1\n")


def run_parse(path: Path, *extra: str) -> tuple[int, list[dict], int, float]:
    """(exit code, per-file stats, docs written, peak RSS MiB of the child itself)."""
    out = path.with_suffix(".ndjson")
    m = measure([*CLI, "parse", str(path), "--out", str(out), "--stats", "--no-progress", *extra],
                capture_stderr=True, timeout=300)
    stderr = m.stderr.decode()
    assert "Traceback" not in stderr, stderr
    stats = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    docs = sum(1 for _ in open(out, "rb")) if out.exists() else 0
    return m.returncode, stats, docs, m.peak_rss_mb


def _docs(path: Path) -> list[dict]:
    return [json.loads(x) for x in open(path.with_suffix(".ndjson"), "rb")]


def _same_entry(doc: dict, alone: dict) -> None:
    """The recovered document is the entry's own: everything but where it sat in the file and the flag."""
    for d in (doc, alone):
        d.pop("_id"), d.pop("log"), d["slowlog"].pop("ingest_run_id"), d["slowlog"].pop("flags", None)
    assert doc == alone


@pytest.mark.parametrize("engine", ["mysql", "postgres", "auto"])
@pytest.mark.parametrize("own_line", [True, False])
def test_an_entry_after_garbage_is_recovered_byte_for_byte(tmp_path, engine, own_line) -> None:
    """300 KB of random bytes, then a valid entry: on its own line it is simply read; straight after the
    bytes (mid-line, as after NUL padding from a crash) it is found after the non-text bytes and flagged
    ``recovered``. Either way exactly one document, equal to the entry's document read alone."""
    rng = random.Random(1)
    good = GOOD_PG if engine == "postgres" else GOOD_MYSQL
    garbage = bytes(rng.getrandbits(8) for _ in range(300_000)) + b"\x00"
    p = tmp_path / "garbage.log"
    p.write_bytes(garbage + (b"\n" if own_line else b"") + good)
    alone = tmp_path / "alone.log"
    alone.write_bytes(good)
    code, stats, docs, _ = run_parse(p, "--engine", engine)
    assert code == 0 and len(stats) == 1
    s = stats[0]
    assert s["entries"] == docs == 1
    assert s["quarantined_lines"] + s["noise_lines"] > 0     # the garbage is counted, not hidden
    assert s["bytes"] == p.stat().st_size                     # every byte was read
    [doc] = _docs(p)
    assert ("recovered" in doc["slowlog"].get("flags", ())) is not own_line
    assert s.get("recovered_entries", 0) == (0 if own_line else 1)
    run_parse(alone, "--engine", engine)
    [solo] = _docs(alone)
    _same_entry(doc, solo)


def test_a_header_in_a_string_literal_is_not_taken_for_an_entry(tmp_path) -> None:
    # recovery needs non-text bytes before the header: query text that merely contains "# Time: " is text
    p = tmp_path / "literal.log"
    p.write_bytes(GOOD_MYSQL.replace(b"SELECT * FROM t WHERE id = 1;", b"SELECT 'x # Time: 2026-11-27T14:00:00Z';"))
    code, stats, docs, _ = run_parse(p, "--engine", "mysql")
    assert docs == 1 and stats[0]["recovered_entries"] == 0
    assert _docs(p)[0]["mysql"]["slowlog"]["query"] == "SELECT 'x # Time: 2026-11-27T14:00:00Z'"


def test_a_real_binary_file(tmp_path) -> None:
    p = tmp_path / "python.bin"
    import orjson

    data = Path(orjson.__file__).parent.joinpath(next(n for n in os.listdir(Path(orjson.__file__).parent)
                                                      if n.endswith(".so"))).read_bytes()[:2_000_000]
    assert len(data) > 100_000                               # a real ELF shared object
    p.write_bytes(data)
    code, stats, docs, _ = run_parse(p)
    assert code == 0 and stats[0]["entries"] == docs and stats[0]["bytes"] == len(data)


@pytest.mark.parametrize(("name", "data", "entries"), [
    ("empty", b"", 0),
    ("truncated_mid_entry", GOOD_MYSQL * 3 + GOOD_MYSQL[:70], 3),
    ("headers_without_query", GOOD_MYSQL.split(b"SET")[0] + GOOD_MYSQL, 1),
    ("query_without_headers", b"SELECT 1;\nSELECT 2;\n" + GOOD_MYSQL, 1),
])
def test_broken_shapes(tmp_path, name: str, data: bytes, entries: int) -> None:
    p = tmp_path / f"{name}.log"
    p.write_bytes(data)
    code, stats, docs, _ = run_parse(p, "--engine", "mysql")
    assert code == 0 and stats[0]["entries"] == docs == entries
    if name in ("headers_without_query", "query_without_headers", "truncated_mid_entry"):
        assert stats[0]["quarantined_lines"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_100mb_single_line_keeps_memory_bounded(tmp_path, engine) -> None:
    p = tmp_path / "huge.log"
    head = GOOD_MYSQL if engine == "mysql" else GOOD_PG
    with open(p, "wb") as f:
        f.write(head)
        if engine == "mysql":
            f.write(GOOD_MYSQL.rsplit(b"SELECT", 1)[0] + b"SELECT '")
        else:
            f.write(GOOD_PG.rsplit(b"SELECT", 1)[0] + b"SELECT '")
        block = b"x" * (1 << 20)
        for _ in range(100):
            f.write(block)
        f.write(b"';\n" + head)
    code, stats, docs, rss = run_parse(p, "--engine", engine)
    assert code == 0 and docs == stats[0]["entries"] == 3
    assert stats[0]["oversize_lines"] == 1 and stats[0]["truncated_entries"] >= 1
    assert rss < 200, f"peak RSS {rss:.0f} MiB for a 100 MB line"
