"""moto in server mode for the source tests: a real HTTP endpoint that real boto3/s3fs clients talk to.

Server mode (not ``@mock_aws``) because the code under test must go through botocore's HTTP stack, signing and
retries exactly as against AWS, and because s3fs (aiobotocore) cannot be patched by the decorator at all.
The server runs in a thread of the test process on 127.0.0.1 and a free port, once per test session; tests
keep apart by using their own bucket / log group names. Import the fixtures into a test module with
``from tests.moto_server import aws_credentials, moto_endpoint``; ``aws_credentials`` and ``fast_botocore``
(no real sleeping in botocore's retries) also serve tests that talk to the RDS emulator instead of moto.
"""
from __future__ import annotations

import io
import logging
import os
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import botocore.endpoint
import botocore.retries.bucket
import pytest

REGION = "us-east-1"
#: Credentials for the moto server (it accepts any); also what the Airflow connections in the tests carry.
KEY_ID = "AKIDMOTOTEST"
SECRET = "moto-secret"


class MotoServer:
    """``ThreadedMotoServer`` on 127.0.0.1:<free port>; a context manager that always stops it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        from moto.server import ThreadedMotoServer

        self.host = host
        self.port = _free_port(host)
        self._server = ThreadedMotoServer(ip_address=host, port=self.port, verbose=False)
        self._started = False

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
        self._server.start()
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False

    def reset(self) -> None:
        """Drop every resource in every backend (moto's reset API)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The endpoint_url of a moto server shared by the session (skipped when moto is not installed)."""
    pytest.importorskip("moto.server", reason="moto[server] is in the test extra: pip install -e '.[test]'")
    with MotoServer() as server:
        yield server.endpoint_url


@pytest.fixture()
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fake credentials through the standard chain, isolated from any real AWS configuration on the machine."""
    empty = tmp_path_factory.mktemp("aws-config")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.fspath(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.fspath(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "AWS_ENDPOINT_URL_LOGS", "AWS_ENDPOINT_URL_RDS"):
        monkeypatch.delenv(name, raising=False)


class NoSleepTime:
    """Stands in for the ``time`` module inside botocore.endpoint: retry backoffs are recorded, not slept."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture(autouse=True)
def fast_botocore(monkeypatch: pytest.MonkeyPatch) -> NoSleepTime:
    """No real sleeping in botocore: retry backoff recorded; the adaptive token bucket always refilled.

    Autouse in every test module that imports it."""
    shim = NoSleepTime()
    monkeypatch.setattr(botocore.endpoint, "time", shim)
    ticks = iter(range(0, 10**12, 1000))
    monkeypatch.setattr(botocore.retries.bucket.Clock, "current_time", lambda self: float(next(ticks)))
    monkeypatch.setattr(botocore.retries.bucket.Clock, "sleep", lambda self, s: shim.sleep(s))
    return shim



# ------------------------------------------------------------------------------------------ CloudWatch upload

#: PutLogEvents limits: 10,000 events and 1,048,576 bytes (UTF-8 message bytes + 26 per event) per call,
#: events in chronological order spanning at most 24 h.
_BATCH_EVENTS = 10_000
_BATCH_BYTES = 1_048_576
_EVENT_OVERHEAD = 26
_DAY_MS = 86_400_000


def split_events(data: bytes, starts: list[int], times: list[tuple[int, float]], mode: str,
                 shift: float = 0.0) -> list[tuple[int, str]]:
    """Cut a log into CloudWatch events ``(timestamp ms, message)`` the way RDS could publish it.

    ``mode="record"``: one event per record (a record runs from one offset in ``starts`` to the next — a whole
    multi-line slow-log entry); ``mode="line"``: one event per line. A message drops its final ``\\n`` (events
    carry none) unless what is left still ends in one; blank lines are joined to the next event because
    CloudWatch refuses empty messages. So ``message + "\\n" unless it ends in "\\n"`` rebuilds ``data``.
    ``times`` is ``(offset, epoch seconds)`` in offset order (e.g. the parsed entries); an event gets the time
    of the last one at or before it, kept non-decreasing, plus ``shift`` seconds.
    """
    if mode == "record":
        cuts = sorted({0, *(s for s in starts if 0 < s < len(data))})
        chunks = [data[a:b] for a, b in zip(cuts, cuts[1:] + [len(data)])]
    elif mode == "line":
        chunks = data.splitlines(keepends=True)
    else:
        raise ValueError(mode)
    raw: list[tuple[int, bytes]] = []  # (ms, original bytes of the event)
    pending = b""
    offset = 0
    ti = 0
    current = times[0][1] if times else 0.0
    last_ms = 0
    for chunk in chunks:
        at = offset
        offset += len(chunk)
        while ti < len(times) and times[ti][0] <= at:
            current = times[ti][1]
            ti += 1
        if chunk.strip(b"\r\n") == b"":
            pending += chunk  # blank line: goes in front of the next event
            continue
        ms = max(last_ms, int(round((current + shift) * 1000)))
        last_ms = ms
        raw.append((ms, pending + chunk))
        pending = b""
    if pending:  # trailing blank lines: they can only end the last event
        ms, body = raw[-1] if raw else (last_ms, b"")
        raw[-1:] = [(ms, body + pending)]
    events = []
    for ms, body in raw:
        if body.endswith(b"\n") and not body.endswith(b"\n\n"):
            body = body[:-1]
        events.append((ms, body.decode("utf-8")))
    return events


def put_events(client: Any, group: str, stream: str, events: list[tuple[int, str]]) -> int:
    """Create the group/stream if needed and PutLogEvents in batches within CloudWatch's limits; the count."""
    from botocore.exceptions import ClientError

    for create, kw in ((client.create_log_group, {"logGroupName": group}),
                       (client.create_log_stream, {"logGroupName": group, "logStreamName": stream})):
        try:
            create(**kw)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
    batch: list[dict[str, object]] = []
    size = 0
    sent = 0

    def flush() -> None:
        nonlocal batch, size, sent
        if batch:
            resp = client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            assert not resp.get("rejectedLogEventsInfo"), resp["rejectedLogEventsInfo"]
            sent += len(batch)
        batch, size = [], 0

    for ms, message in events:
        n = len(message.encode("utf-8")) + _EVENT_OVERHEAD
        if batch and (len(batch) >= _BATCH_EVENTS or size + n > _BATCH_BYTES
                      or ms - int(batch[0]["timestamp"]) >= _DAY_MS):  # type: ignore[call-overload]
            flush()
        batch.append({"timestamp": ms, "message": message})
        size += n
    flush()
    return sent


_PG_LINE_START = re.compile(rb"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d", re.M)


def cloudwatch_events(data: bytes, engine: str, mode: str, shift: float = 0.0) -> list[tuple[int, str]]:
    """``split_events`` for a whole log: records are the parsed MySQL entries (header lines included) or
    PostgreSQL log lines with their continuation lines; times are the entries' write times (``end_time``)."""
    from rds_slowlog.pipeline import read_stream

    entries = list(read_stream(io.BytesIO(data), "<upload>", engine).entries)
    times = [(e.offset, e.end_time) for e in entries if e.end_time is not None]
    if engine == "postgres":
        starts = [m.start() for m in _PG_LINE_START.finditer(data)]
    else:
        starts = [e.offset for e in entries]
    return split_events(data, starts, times, mode, shift)


def recent_shift(data_start: float, now: float | None = None, days_back: int = 2) -> float:
    """Whole hours to add to a log's times so its events fall inside what PutLogEvents accepts (the last
    14 days): the log's first hour moves to the hour ``days_back`` days before now."""
    now = time.time() if now is None else now
    return float((int(now - days_back * 86400) // 3600 - int(data_start) // 3600) * 3600)
