"""One boto3 session per AWS connection in a task process, and the client settings the DAG's clients share.

A stage task makes an RDS client and an S3 client from the same connection. From one boto3 session they share
one botocore loader: ``endpoints.json`` (6.7 MB parsed) and the credential chain are loaded once, not per
client. A task is its own process, so "per process" is "per task": nothing outlives it.
"""
from __future__ import annotations

import threading
from typing import Any

_SESSIONS: dict[tuple[str | None, str | None], Any] = {}
_LOCK = threading.Lock()


def client_config(hook: Any, max_attempts: int, read_timeout: int) -> Any:
    """Our defaults (adaptive retries, a read timeout for big bodies), overridden by whatever the connection's
    ``config_kwargs`` set explicitly."""
    from botocore.config import Config

    ours = Config(retries={"mode": "adaptive", "total_max_attempts": max_attempts}, read_timeout=read_timeout,
                  connect_timeout=20)
    return ours.merge(hook.config)


class SharedSession:
    """Mixin for our Amazon provider hooks: :meth:`get_session` hands out one session per (connection,
    region), and ``max_attempts`` (botocore attempts per call, the first included) is what their clients get."""

    aws_conn_id: str | None

    def __init__(self, *args: Any, max_attempts: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_attempts = max_attempts

    def get_session(self, region_name: str | None = None, deferrable: bool = False) -> Any:
        if deferrable:       # aiobotocore sessions are not shared
            return super().get_session(region_name=region_name, deferrable=True)  # type: ignore[misc]
        key = (self.aws_conn_id, region_name)
        with _LOCK:
            session = _SESSIONS.get(key)
            if session is None:
                session = _SESSIONS[key] = super().get_session(region_name=region_name)  # type: ignore[misc]
        return session


def forget_sessions() -> None:
    """Drop the shared sessions (a connection's credentials changed in this process: tests)."""
    with _LOCK:
        _SESSIONS.clear()


__all__ = ["SharedSession", "client_config", "forget_sessions"]
