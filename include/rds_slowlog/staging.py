"""Staged chunks: bulk-ready NDJSON (gzip) plus a manifest written last as the commit marker.

Layout: ``<base>/<dag_id>/<instance>/<window_start>/<source-stem>/chunk-00000.ndjson.gz`` and
``manifest.json`` beside the chunks. ``base`` is any fsspec URL (``file://``/a plain path locally, ``s3://``
on MWAA where workers share no disk). Object stores have no atomic rename, so a chunk that is not listed in a
manifest is never indexed, and a manifest records each chunk's document count and sha256 so the indexer can
refuse a chunk that changed or was cut short.

A chunk closes at ``chunk_size`` documents, at ``max_chunk_mb`` of uncompressed NDJSON, or early when the
process RSS passes ``memory_threshold_mb`` (the seed's memory threshold), whichever comes first.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

MANIFEST = "manifest.json"
HISTORY = "history.json"
DEFAULT_CHUNK_SIZE = 5000
DEFAULT_MAX_CHUNK_MB = 32
_FEED_BYTES = 1 << 20   # lines are handed to the compressor in runs of ~1 MiB


class StagingError(RuntimeError):
    """A staged chunk or manifest is missing, unreadable or does not match its manifest."""


class ChunkMismatch(StagingError):
    """A chunk listed in its manifest is gone or is not the bytes the manifest committed (sha256, count).

    Its own class because it is repairable where it is found: staging is deterministic, so the chunk can
    be staged again from the window's source and checked against the same sha256 (see the DAG's index task).
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"chunk {url} {reason}: refusing to index it")
        self.url, self.reason = url, reason

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.url, self.reason)


#: Tried in order before fsspec: each takes a URL and returns ``(filesystem, path)`` or ``None``. The Airflow
#: layer registers one for ``s3://conn_id@bucket/…`` URLs (credentials from an Airflow connection), so the core
#: stays free of Airflow and every staging call — writer, reader, manifest — understands those URLs.
FILESYSTEM_RESOLVERS: list[Callable[[str], tuple[Any, str] | None]] = []


def filesystem(url: str) -> tuple[Any, str]:
    """(filesystem, path) for a URL or a plain local path, via fsspec (imported lazily)."""
    for resolve in FILESYSTEM_RESOLVERS:
        got = resolve(url)
        if got is not None:
            return got
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


@dataclass
class ChunkInfo:
    name: str
    docs: int
    bytes: int          # uncompressed NDJSON bytes
    sha256: str         # of the stored (compressed) object


@dataclass
class Manifest:
    chunks: list[ChunkInfo] = field(default_factory=list)
    docs: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps({"chunks": [asdict(c) for c in self.chunks], "docs": self.docs, "meta": self.meta},
                            option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        d = orjson.loads(raw)
        return cls([ChunkInfo(**c) for c in d["chunks"]], d["docs"], d.get("meta", {}))


class ChunkWriter:
    """Accumulates serialised documents and publishes them as chunks; :meth:`close` commits the manifest."""

    def __init__(self, base: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE, max_chunk_mb: float = DEFAULT_MAX_CHUNK_MB,
                 memory_threshold_mb: float | None = None, compress: bool = True) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.base = base
        self.chunk_size = chunk_size
        self.max_bytes = int(max_chunk_mb * 1024 * 1024)
        self.memory_threshold_mb = memory_threshold_mb
        self.compress = compress
        self.manifest = Manifest()
        # A chunk is compressed as its lines arrive (zlib, gzip framing: what gzip.compress(mtime=0) writes), so
        # a 32 MB chunk of 4 KB full-verbosity documents costs ~3 MB of compressed output, not the lines, their
        # join and the compressed copy at once (~45 MB at the flush: the stage task's peak).
        # Lines not yet fed to the compressor (<= _FEED_BYTES), copied in: orjson's output keeps the capacity it
        # reserved (~8x its length: 32 KiB behind a 4 KiB document, 1 MiB behind a 64 KiB one), so holding the
        # lines themselves until a run is fed held up to 16 MiB for 1 MiB of text.
        self._pending = bytearray()
        self._out: list[bytes] = []       # the chunk's bytes so far (compressed, or raw when compress=False)
        self._comp: Any = None
        self._docs = 0                    # documents in the open chunk
        self._buf_bytes = 0               # their NDJSON bytes
        self._fs, self._root = filesystem(base)
        self._fs.makedirs(self._root, exist_ok=True)
        # A rerun overwrites its own window: stale chunks of an earlier run must not survive.
        for old in self._fs.glob(join(self._root, "chunk-*")) + self._fs.glob(join(self._root, MANIFEST)):
            self._fs.rm(old)

    def add(self, line: bytes) -> None:
        """One NDJSON line (must end with ``\\n``)."""
        self._pending += line
        self._docs += 1
        self._buf_bytes += len(line)
        if len(self._pending) >= _FEED_BYTES:
            self._feed()
        if self._docs >= self.chunk_size or self._buf_bytes >= self.max_bytes:
            self.flush()
        elif self.memory_threshold_mb is not None and self._docs & 0xFF == 0 and self._over_memory():
            self.flush()

    def _over_memory(self) -> bool:
        import psutil

        return psutil.Process().memory_info().rss / (1024 * 1024) > (self.memory_threshold_mb or 0)

    def _feed(self) -> None:
        if not self.compress:
            self._out.append(bytes(self._pending))
        else:
            if self._comp is None:
                self._comp = zlib.compressobj(1, zlib.DEFLATED, 31)
            self._out.append(self._comp.compress(self._pending))
        self._pending.clear()

    def flush(self) -> None:
        if not self._docs:
            return
        self._feed()
        if self._comp is not None:
            self._out.append(self._comp.flush())
            self._comp = None
        data = b"".join(self._out)
        self._out.clear()
        name = f"chunk-{len(self.manifest.chunks):05d}.ndjson" + (".gz" if self.compress else "")
        # one PUT of the bytes in hand: a file object would copy them into its own write buffer (s3fs: up to
        # its 50 MiB block) before sending
        self._fs.pipe_file(join(self._root, name), data)
        self.manifest.chunks.append(ChunkInfo(name, self._docs, self._buf_bytes, hashlib.sha256(data).hexdigest()))
        self.manifest.docs += self._docs
        self._docs = 0
        self._buf_bytes = 0

    def write_file(self, name: str, data: bytes) -> str:
        """A side file of the staged window (``history.json``), written before the manifest commits it."""
        self._fs.pipe_file(join(self._root, name), data)
        return join(self.base, name)

    def close(self, **meta: Any) -> Manifest:
        self.flush()
        self.manifest.meta.update(meta)
        self._fs.pipe_file(join(self._root, MANIFEST), self.manifest.to_json())
        return self.manifest


def read_manifest(base: str) -> Manifest:
    fs, root = filesystem(base)
    path = join(root, MANIFEST)
    try:
        return Manifest.from_json(fs.cat_file(path))
    except FileNotFoundError as e:
        raise StagingError(f"no manifest at {base}: the staging step did not finish") from e


def read_json(base: str, name: str) -> Any:
    """A side file of a committed staging directory (the manifest must exist: it is the commit marker)."""
    read_manifest(base)
    fs, root = filesystem(base)
    return orjson.loads(fs.cat_file(join(root, name)))


def chunk_urls(base: str) -> list[str]:
    """The committed chunks of a staging directory (from its manifest, never from a listing)."""
    return [join(base, c.name) for c in read_manifest(base).chunks]


class ChunkLines(Sequence[bytes]):
    """A verified chunk's NDJSON lines, decompressed each time they are iterated instead of held.

    An index task keeps the chunk it is sending and the next one it is preparing. Held as lines, that was both
    chunks' whole text; held as this, it is their compressed bytes (level-1 gzip of the documents: ~1/8).
    ``[p]`` (only for a dead letter's line) builds the list once and keeps it: the failure path may look up
    every line of a rejected chunk. Lines end at ``\\n`` (documents are orjson lines: no bare CR in them).
    """

    __slots__ = ("_data", "_count", "nbytes", "_list")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._list: list[bytes] | None = None
        count = size = 0
        for line in self._lines():
            count += 1
            size += len(line)
        self._count, self.nbytes = count, size

    def _lines(self) -> Iterator[bytes]:
        if self._data[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=io.BytesIO(self._data)) as f:
                yield from f
        else:
            yield from io.BytesIO(self._data)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._list) if self._list is not None else self._lines()

    def __getitem__(self, p: int) -> bytes:  # type: ignore[override]
        if self._list is None:
            self._list = list(self._lines())
        return self._list[p]


def read_chunk_lines(url: str, expected: ChunkInfo | None = None) -> ChunkLines:
    """One chunk's lines, verified against its manifest entry when given (sha256 of the stored bytes, then the
    number of documents) before any of them is handed out."""
    fs, path = filesystem(url)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        if expected is None:
            raise
        raise ChunkMismatch(url, "is listed in its manifest but missing") from None
    if expected is not None and hashlib.sha256(data).hexdigest() != expected.sha256:
        raise ChunkMismatch(url, "does not match its manifest (sha256 differs)")
    lines = ChunkLines(data)
    if expected is not None and len(lines) != expected.docs:
        raise ChunkMismatch(url, f"has {len(lines)} documents, manifest says {expected.docs}")
    return lines


def read_chunk(url: str, expected: ChunkInfo | None = None) -> Iterator[bytes]:
    """The NDJSON lines of one chunk, verified against its manifest entry when given."""
    return iter(read_chunk_lines(url, expected))


def chunk_info(url: str) -> ChunkInfo:
    base, _, name = url.rpartition("/")
    for c in read_manifest(base).chunks:
        if c.name == name:
            return c
    raise StagingError(f"chunk {url} is not listed in {base}/{MANIFEST}")


__all__ = ["MANIFEST", "HISTORY", "ChunkWriter", "ChunkInfo", "ChunkLines", "ChunkMismatch", "Manifest", "StagingError",
           "filesystem", "read_manifest", "chunk_urls", "read_chunk", "read_chunk_lines", "chunk_info", "join",
           "read_json"]
