"""Streaming slow-log parsers: bytes in, :class:`~rds_slowlog.entry.Entry` out, constant memory."""
from __future__ import annotations
