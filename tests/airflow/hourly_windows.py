"""Real MariaDB and PostgreSQL logs as hourly RDS windows, and what each window must hold: shared by the tests
that run the hourly DAG under a real scheduler (``test_dag_stack.py``: LocalExecutor; ``test_dag_celery.py``:
CeleryExecutor with s3:// staging).

Why one module: the anchor counts (pt-query-digest for MySQL, the log's ``duration:`` lines for PostgreSQL) and
the queries that count a window's documents are the definition of "nothing lost, nothing duplicated"; two
copies could drift apart and one of the tests would then prove something else.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from rds_slowlog.search import raw_request
from rds_slowlog.testing.logdata import spread_over_hours
from rds_slowlog.testing.rds_emulator import layout_hourly

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "include" / "sample_logs"
#: instance id suffix -> (sample log written by a real server, engine)
SAMPLE_INSTANCES: dict[str, tuple[str, str]] = {"mariadb": ("mariadb-slowquery.log", "mysql"),
                                                "postgres": ("postgresql.log", "postgres")}
PG_QUERY = re.compile(rb"^\S+ \S+ \S+:LOG:  duration: [\d.]+ ms  (?:statement|execute)", re.M)


def instances(prefix: str) -> dict[str, tuple[str, str]]:
    """``{"<prefix>-mariadb": (log, "mysql"), "<prefix>-postgres": (log, "postgres")}``."""
    return {f"{prefix}-{k}": v for k, v in SAMPLE_INSTANCES.items()}


def current_hour(margin: float = 300.0, settle: float = 120.0) -> datetime:
    """The current UTC hour once at least ``margin`` seconds of it remain and ``settle`` have passed (else it
    waits: for the next hour, or until the hour is ``settle`` seconds old).

    For tests that expect the scheduler's own run of the latest complete hour: the clock must not turn
    between the moment the test lays its logs out and the moment the scheduler makes that run (stack start,
    DAG parse) — or the run is of the next hour, which the logs do not cover; and the logs' last file, last
    written at the hour's turn, must be older than ``SETTLE_SECONDS`` (60 s), or it is still being written
    and the run waits for it (``WindowNotSettled``).
    """
    now = datetime.now(timezone.utc)
    hour = now.replace(minute=0, second=0, microsecond=0)
    if (hour + timedelta(hours=1) - now).total_seconds() < margin:
        hour += timedelta(hours=1)
    wait = (hour + timedelta(seconds=settle) - now).total_seconds()
    if wait > 0:
        time.sleep(wait)
    return hour


def hourly_logs(root: Path, insts: dict[str, tuple[str, str]], first: datetime, hours: int) -> dict[str, Any]:
    """Each instance's sample spread over ``hours`` hours from ``first`` and cut into RDS's hourly rotated
    files under ``root/instances/<instance>``: ``{"root": ..., "files": {instance: [one path per hour]}}``."""
    files = {}
    for inst, (name, engine) in insts.items():
        src = root / f"{inst}.log"
        src.write_bytes(spread_over_hours((SAMPLES / name).read_bytes(), engine, first.timestamp(), hours=hours))
        files[inst] = layout_hourly(src, root / "instances" / inst, engine)
        assert len(files[inst]) == hours, (inst, files[inst])
    return {"root": root / "instances", "files": files, "instances": insts}


def expected_per_window(logs: dict[str, Any]) -> dict[str, list[int]]:
    """Per instance, per hour: what the anchor counts. MySQL: pt-query-digest on the hour's file, plus one per
    banner MariaDB rewrote mid-file after FLUSH SLOW LOGS (pt glues the banner and the next entry onto the
    previous query — the named exception of tests/cli/test_main.py). PostgreSQL: the duration lines of
    statements and executes (parse/bind phases are not queries)."""
    pt = shutil.which("pt-query-digest")
    if pt is None:
        pytest.skip("pt-query-digest is not installed (apt-get install percona-toolkit)")
    out: dict[str, list[int]] = {}
    for inst, (_, engine) in logs["instances"].items():
        counts = []
        for f in logs["files"][inst]:
            data = f.read_bytes()
            if engine == "mysql":
                p = subprocess.run([pt, "--output", "json", "--limit", "100%", str(f)], capture_output=True,
                                   text=True, timeout=120, check=True)
                n = json.loads(p.stdout[p.stdout.index("{"):])["global"]["query_count"] if "{" in p.stdout else 0
                lines = data.split(b"\n")
                n += sum(1 for k in range(1, len(lines))
                         if lines[k].endswith(b"started with:") and not lines[k - 1].startswith(b"#"))
            else:
                n = len(PG_QUERY.findall(data))
            counts.append(n)
        out[inst] = counts
    return out


def dag_config(insts: dict[str, tuple[str, str]], prefix: str, staging: str, conn: str, aws_conn_id: str,
               kind: str = "elasticsearch", **over: Any) -> dict[str, Any]:
    """The repo's ``dags/rds_slowlog.json`` pointed at the test's instances, search connection and staging;
    ``knobs=`` updates the knobs, any other keyword replaces a key (``instance_extra=`` is merged into every
    instance, e.g. an ``archive``)."""
    cfg = json.loads((ROOT / "dags" / "rds_slowlog.json").read_text())
    extra = over.pop("instance_extra", {})
    cfg.update({"instances": [{"id": i, "engine": e, "aws_conn_id": aws_conn_id, **extra}
                              for i, (_, e) in insts.items()],
                "search": {"kind": kind, "conn_id": conn}, "index_prefix": prefix, "staging": staging,
                "grace_minutes": 0, "retries": 2, "retry_delay_seconds": 2, "rds_retention_hours": 24})
    for k, v in over.items():
        cfg["knobs"].update(v) if k == "knobs" else cfg.__setitem__(k, v)
    return cfg


def count(client: Any, engine: str, index: str) -> int:
    """Documents in ``index`` (a pattern) after a refresh; 0 when nothing matches."""
    raw_request(client, engine, "POST", f"/{index}/_refresh")
    status, body = raw_request(client, engine, "GET", f"/{index}/_count")
    return body["count"] if status == 200 else 0


def window_counts(client: Any, engine: str, prefix: str, start: datetime, insts: Any) -> dict[str, int]:
    """Documents per instance whose write time is in [start, start + 1 h)."""
    out = {}
    for inst in insts:
        q = {"query": {"bool": {"filter": [{"term": {"rds.instance": inst}}, {"range": {"event.end": {
            "gte": start.isoformat(), "lt": (start + timedelta(hours=1)).isoformat()}}}]}}}
        raw_request(client, engine, "POST", f"/{prefix}-*/_refresh")
        _, body = raw_request(client, engine, "POST", f"/{prefix}-mysql-*,{prefix}-postgres-*/_count", q,
                              params={"ignore_unavailable": "true"})
        out[inst] = body["count"]
    return out


def run_docs(client: Any, engine: str, prefix: str, since: datetime, until: datetime) -> int:
    """Run documents (one per instance-window) of the windows starting in [since, until): the scheduler's own
    run of a later hour (the clock may cross one mid-test) writes its run documents too, so count by window."""
    raw_request(client, engine, "POST", f"/{prefix}-runs-*/_refresh")
    q = {"query": {"range": {"event.start": {"gte": since.isoformat(), "lt": until.isoformat()}}}}
    _, body = raw_request(client, engine, "POST", f"/{prefix}-runs-*/_count", q)
    return int(body["count"])
