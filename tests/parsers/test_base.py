from __future__ import annotations

import bz2
import gzip
import io
import lzma

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_slowlog.logfile import open_log
from rds_slowlog.parsers.base import ParseStats, decode, iter_lines
from rds_slowlog.parsers.detect import detect_engine


def test_iter_lines_offsets_and_oversize() -> None:
    data = b"a\n" + b"x" * 100 + b"\n" + b"tail"
    out = list(iter_lines(io.BytesIO(data), max_line_bytes=16))
    assert out == [(0, b"a\n", False), (2, b"x" * 16, True), (103, b"tail", False)]


def test_iter_lines_100mb_single_line_keeps_memory_bounded() -> None:
    import tracemalloc

    class Endless(io.RawIOBase):
        def __init__(self, n: int) -> None:
            self.left = n

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[override]
            k = min(len(b), self.left)
            b[:k] = b"y" * k
            self.left -= k
            return k

    stream = io.BufferedReader(Endless(100 * 1024 * 1024))
    tracemalloc.start()
    out = list(iter_lines(stream, max_line_bytes=1 << 20))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(out) == 1 and out[0][2] is True and len(out[0][1]) == 1 << 20
    assert peak < 16 * 1024 * 1024


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_iter_lines_accounts_for_every_byte(data: bytes, cap: int) -> None:
    physical = [m for m in data.split(b"\n")]
    physical = [p + b"\n" for p in physical[:-1]] + ([physical[-1]] if physical[-1] else [])
    expected = []
    off = 0
    for p in physical:
        expected.append((off, p[:cap], len(p) > cap))
        off += len(p)
    assert list(iter_lines(io.BytesIO(data), max_line_bytes=cap)) == expected


def test_decode_keeps_bytes_recoverable() -> None:
    text, ok = decode(b"caf\xe9")
    assert not ok and text.encode("utf-8", "surrogateescape") == b"caf\xe9"
    assert decode("café".encode()) == ("café", True)


def test_quarantine_samples_bounded() -> None:
    s = ParseStats("f")
    for i in range(1000):
        s.quarantine(i, i + 1, "garbage", b"\x00" * 500)
    assert s.quarantined_lines == 1000 and len(s.samples) == 100 and len(s.samples[0].sample) == 200


@pytest.mark.parametrize("opener", [gzip.open, bz2.open, lzma.open, open])
def test_open_log_decompresses_by_magic(tmp_path, opener) -> None:
    p = tmp_path / "renamed.log"  # no extension on purpose
    with opener(p, "wb") as f:
        f.write(b"# Time: 1\nSELECT 1;\n")
    with open_log(p) as f:
        assert f.read() == b"# Time: 1\nSELECT 1;\n"


def test_detect_engine() -> None:
    assert detect_engine(b"# Time: 2016-07-20T18:13:25.698433Z\n# User@Host: root[root] @ localhost []\n") == "mysql"
    assert detect_engine(b"2020-03-11 20:41:43 CET:[local]:postgres@postgres:[12850]:LOG:  duration: 0.4 ms  "
                         b"statement: SELECT 1\n") == "postgres"
    assert detect_engine(b"garbage", default="mysql") == "mysql"


@given(st.lists(st.sampled_from([b"a", b"\n", b"bb\n", b"x" * 7, b"\r", b"y" * 30 + b"\n"]), max_size=60),
       st.integers(1, 40), st.integers(1, 50))
def test_iter_blocks_are_whole_lines_with_exact_offsets(parts: list[bytes], cap: int, block: int) -> None:
    from rds_slowlog.parsers.base import iter_blocks

    data = b"".join(parts)
    physical = data.split(b"\n")
    physical = [p + b"\n" for p in physical[:-1]] + ([physical[-1]] if physical[-1] else [])
    expected, off = [], 0
    for p in physical:
        expected.append((off, p[:cap], len(p) > cap))
        off += len(p)
    got, off = [], 0
    for o, d, span in iter_blocks(io.BytesIO(data), cap, block):
        assert o == off
        if span:                                   # one capped oversize line and its real length
            got.append((o, d, True))
            off += span
            continue
        lines = [x + b"\n" for x in d.split(b"\n")[:-1]] + ([] if d.endswith(b"\n") else [d.split(b"\n")[-1]])
        for line in lines:
            got.append((off, line, False))
            off += len(line)
    assert got == expected
