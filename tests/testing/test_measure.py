from __future__ import annotations

import sys

from rds_slowlog.testing.measure import measure


def test_child_peak_rss_is_its_own_not_the_parents() -> None:
    ballast = bytearray(300 * 1024 * 1024)  # a big parent must not inflate the child's figure
    ballast[::4096] = b"x" * len(ballast[::4096])
    big = measure([sys.executable, "-c", "import time; x = bytearray(150 * 1024 * 1024); time.sleep(0.3)"])
    small = measure([sys.executable, "-c", "import time; time.sleep(0.3)"])
    assert big.returncode == small.returncode == 0
    assert 150 <= big.peak_rss_mb < 250
    assert small.peak_rss_mb < 60
    del ballast


def test_exit_code_and_stderr_are_reported() -> None:
    m = measure([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"], capture_stderr=True)
    assert m.returncode == 3 and m.stderr == b"boom"
