"""Open a local log file as a binary stream, transparently decompressing gzip, bzip2 and xz.

Compression is detected from magic bytes, not the file name, because archived RDS logs are often
renamed on their way to S3.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path
from typing import BinaryIO

MAGIC = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


def open_log(path: str | Path, buffer_size: int = 1 << 20) -> BinaryIO:
    """Return a buffered binary reader over the (decompressed) bytes of ``path``."""
    with open(path, "rb") as probe:
        head = probe.read(6)
    for magic, opener in MAGIC:
        if head.startswith(magic):
            return opener(path, "rb")  # type: ignore[no-any-return]
    return open(path, "rb", buffering=buffer_size)
