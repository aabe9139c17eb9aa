"""The few filesystem calls staging makes, answered by one boto3 S3 client.

Staging, the raw archive and dead letters need eight calls on ``bucket/key`` paths (``makedirs``, ``glob``,
``exists``, ``rm``, ``pipe_file``, ``cat_file`` and ``open(path, "wb")``), the subset of fsspec's filesystem API
they use, so :func:`rds_slowlog.staging.filesystem` can hand this object out in place of s3fs.

Why not s3fs: it brings a second AWS stack into a task that already has boto3 for RDS (aiobotocore, aiohttp, a
second botocore loader with its own 6.7 MB parsed ``endpoints.json`` and S3 model). Measured by staging one
MariaDB window of the load test (124,120 full-verbosity entries, raw archive on) in a process forked from one
that imported Airflow: peak RSS grew 75-77 MB with s3fs and 51-54 MB with this store on the RDS client's
session; the heaviest window (143 MiB read) 82-90 MB and 54-56 MB; 4.3 s instead of 5.0 s.

Writes are whole objects (``put_object``); :meth:`S3Store.open` spools to a temporary file and uploads it on
close (:class:`ObjectWriter`). A writer left by an exception, or :meth:`~ObjectWriter.abort`-ed, uploads
nothing, so the object never appears cut short under its final name.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, Final

log = logging.getLogger(__name__)

#: S3's smallest multipart part (every part but the last).
MIN_PART_BYTES: Final = 5 * 1024 * 1024
#: S3's largest single PUT; larger objects go up as a multipart upload of at most MAX_PARTS parts.
MAX_PUT_BYTES: Final = 5 * 1024 ** 3
MAX_PARTS: Final = 10_000
#: Reads of an object whose body was cut off before the object is given up on.
READ_ATTEMPTS: Final = 3
_DELETE_BATCH: Final = 1000     # DeleteObjects takes at most 1,000 keys


def _split(path: str) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        raise ValueError(f"not a bucket/key path: {path!r}")
    return bucket, key


def _is_missing(e: Exception) -> bool:
    code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """fsspec's glob for ``*`` and ``?``: neither crosses a ``/``."""
    out = []
    for ch in pattern:
        out.append("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch))
    return re.compile("".join(out))


class S3Store:
    """``bucket/key`` paths over ``client`` (a boto3 S3 client). Missing objects raise :class:`FileNotFoundError`
    as fsspec does; any other S3 error is botocore's own."""

    protocol = "s3"

    def __init__(self, client: Any) -> None:
        self.client = client

    # ---- reading

    def cat_file(self, path: str) -> bytes:
        """The object's bytes. A body cut off mid-way is fetched again (up to :data:`READ_ATTEMPTS` reads):
        botocore retries a request, not the reading of a body it has handed over."""
        from botocore.exceptions import ConnectionClosedError, IncompleteReadError, ReadTimeoutError, \
            ResponseStreamingError

        bucket, key = _split(path)
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            except Exception as e:
                if _is_missing(e):
                    raise FileNotFoundError(path) from None
                raise
            try:
                with body:
                    return bytes(body.read())
            except (ResponseStreamingError, IncompleteReadError, ReadTimeoutError, ConnectionClosedError) as e:
                if attempt == READ_ATTEMPTS:
                    raise
                log.info("S3 GetObject %s: body cut short (%s), reading it again (%d/%d)", path,
                         type(e).__name__, attempt + 1, READ_ATTEMPTS)
        raise AssertionError("unreachable")

    def exists(self, path: str) -> bool:
        """An object, or a "directory": some object under ``path/``."""
        bucket, key = _split(path)
        if key:
            try:
                self.client.head_object(Bucket=bucket, Key=key)
                return True
            except Exception as e:
                if not _is_missing(e):
                    raise
        prefix = key.rstrip("/") + "/" if key else ""
        page = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        return bool(page.get("KeyCount") or page.get("Contents"))

    def _keys(self, bucket: str, prefix: str) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                yield obj["Key"]

    def glob(self, pattern: str) -> list[str]:
        """``bucket/key`` paths matching ``pattern`` (``*``/``?`` within one path segment), sorted."""
        bucket, key = _split(pattern)
        magic = min((i for i in (key.find("*"), key.find("?")) if i >= 0), default=len(key))
        match = _glob_regex(key).fullmatch
        return sorted(f"{bucket}/{k}" for k in self._keys(bucket, key[:magic]) if match(k))

    # ---- writing

    def makedirs(self, path: str, exist_ok: bool = True) -> None:
        """Nothing to do: S3 has no directories."""

    def pipe_file(self, path: str, data: bytes) -> None:
        bucket, key = _split(path)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def rm(self, path: str, recursive: bool = False) -> None:
        """The object ``path``; with ``recursive``, everything under ``path/`` too."""
        bucket, key = _split(path)
        if not recursive:
            self.client.delete_object(Bucket=bucket, Key=key)
            return
        keys = list(self._keys(bucket, key.rstrip("/") + "/" if key else ""))
        if key and key not in keys:
            keys.append(key)     # the object named ``path`` itself, if any (deleting a missing key is a no-op)
        for i in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": k} for k in keys[i:i + _DELETE_BATCH]]
            errors = self.client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True}).get(
                "Errors") or []
            if errors:
                raise OSError(f"s3://{bucket}: {len(errors)} object(s) not deleted, e.g. {errors[0]}")

    def open(self, path: str, mode: str = "rb", block_size: int | None = None) -> ObjectWriter:
        """A writer (``mode="wb"`` only: staging reads whole objects with :meth:`cat_file`); ``block_size`` is
        the part size of a multipart upload (objects over 5 GiB)."""
        if mode != "wb":
            raise ValueError(f"S3Store.open supports mode 'wb' only, not {mode!r}")
        bucket, key = _split(path)
        return ObjectWriter(self.client, bucket, key, block_size or MIN_PART_BYTES)


class ObjectWriter:
    """Spools what is written to a local temporary file; :meth:`close` uploads it — one ``put_object``
    streamed from the file, or, past S3's 5 GiB single-PUT limit, a multipart upload read from it part by part
    — and leaving a ``with`` block by an exception, or :meth:`abort`, uploads nothing.

    Why a temporary file: S3 parts are at least 5 MiB, so a writer that sends parts holds 5 MiB or more of the
    object in memory (the raw archive of a stage task: 6 MB of its peak). The task's own TMPDIR is enough; the
    file never outlives the writer. Not an ``io`` class on purpose: ``io.IOBase`` closes (here: uploads) a
    file object when it is garbage collected, and an upload nobody closed must never become an object.
    """

    def __init__(self, client: Any, bucket: str, key: str, part_bytes: int = MIN_PART_BYTES,
                 single_put_bytes: int = MAX_PUT_BYTES) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"S3 parts are at least {MIN_PART_BYTES} bytes, not {part_bytes}")
        import tempfile

        self.client, self.bucket, self.key = client, bucket, key
        self.part_bytes, self.single_put_bytes = part_bytes, single_put_bytes
        self._file: Any = tempfile.TemporaryFile()
        self.closed = False

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        """Everything is uploaded by :meth:`close`."""

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed S3 writer")
        return int(self._file.write(data))

    def close(self) -> None:
        """Upload the object."""
        if self.closed:
            return
        try:
            size = self._file.seek(0, 2)
            self._file.seek(0)
            if size <= self.single_put_bytes:
                self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._file, ContentLength=size)
            else:
                self._multipart(size)
        finally:
            self.closed = True
            self._file.close()

    def _multipart(self, size: int) -> None:
        part = max(self.part_bytes, -(-size // MAX_PARTS))
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        try:
            parts = []
            for number in range(1, -(-size // part) + 1):
                out = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=upload_id,
                                              PartNumber=number, Body=self._file.read(part))
                parts.append({"PartNumber": number, "ETag": out["ETag"]})
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
            raise

    def abort(self) -> None:
        """Drop what was written: the object is not created (or keeps its previous version)."""
        if not self.closed:
            self.closed = True
            self._file.close()

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


__all__ = ["MAX_PUT_BYTES", "MIN_PART_BYTES", "ObjectWriter", "S3Store"]
