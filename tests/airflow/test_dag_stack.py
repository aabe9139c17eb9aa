"""The hourly DAG under a real Airflow: api-server + scheduler + dag-processor + triggerer, LocalExecutor, a
private PostgreSQL metadata database (tests/airflow_stack_fixtures.py), the RDS emulator serving real MariaDB
and PostgreSQL logs spread over three hourly rotated files, and the real Elasticsearch / OpenSearch.

1. the scheduler's own run of the latest hour, and ``backfill`` over the three hours: per window, documents ==
   the entries pt-query-digest counts (MySQL) / the log's ``duration:`` statement lines (PostgreSQL);
   history and run documents present;
2. the backfill again with ``reprocess_behavior=completed``: every count unchanged;
3. a mapped index task killed with ``kill -9`` mid-run: its retry completes, counts exact;
4. one window against OpenSearch.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ for the shared fixtures
from airflow_stack_fixtures import airflow_stack_factory  # noqa: E402,F401
from search_fixtures import delete_indices, es_url, make_client, os_url  # noqa: E402,F401

from hourly_windows import count as _count, dag_config, expected_per_window, hourly_logs  # noqa: E402
from hourly_windows import current_hour, instances, run_docs, window_counts  # noqa: E402
from rds_slowlog.search import raw_request  # noqa: E402
from rds_slowlog.testing.rds_emulator import InstanceSpec, RdsEmulator  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
INSTANCES = instances("st")


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict:
    """The logs cover [H-3, H), H the hour when the module starts (not when the suite was collected): the
    scheduler's own run is then [H-1, H). ``now_hour`` is H, ``first`` H-3."""
    now_hour = current_hour()
    first = now_hour - timedelta(hours=3)
    return {**hourly_logs(tmp_path_factory.mktemp("stack-rds"), INSTANCES, first, 3), "now_hour": now_hour,
            "first": first}


@pytest.fixture(scope="module")
def emulator(logs):
    specs = {inst: InstanceSpec(root=logs["root"] / inst, engine=e) for inst, (_, e) in INSTANCES.items()}
    with RdsEmulator(specs) as emu:
        yield emu


def _config(prefix: str, staging: Path, conn: str, kind: str = "elasticsearch", **over) -> dict:
    return dag_config(INSTANCES, prefix, staging.as_uri(), conn, "aws_stacktest", kind, **over)


@pytest.fixture(scope="module")
def stack(airflow_stack_factory, emulator, es_url, os_url, tmp_path_factory):  # noqa: F811
    st = airflow_stack_factory(dag_files=[ROOT / "dags" / "rds_slowlog_hourly.py"])
    from urllib.parse import urlsplit

    st.set_connection("aws_stacktest", "aws", login="testing", password="testing",
                      extra={"endpoint_url": emulator.endpoint_url, "region_name": "us-east-1"})
    u = urlsplit(es_url)
    st.set_connection("elasticsearch_stacktest", "elasticsearch", host=u.hostname, port=u.port, schema=u.scheme,
                      login=u.username, password=u.password)
    o = urlsplit(os_url)
    st.set_connection("opensearch_stacktest", "opensearch", host=o.hostname, port=o.port, schema=o.scheme)
    st.create_pool("rds_slowlog_search", 4)
    return st


def _window_counts(client, engine: str, prefix: str, start: datetime) -> dict[str, int]:
    """Documents per instance whose write time is in [start, start + 1 h)."""
    return window_counts(client, engine, prefix, start, INSTANCES)


def _add_dag(st, name: str, cfg: dict) -> str:
    (st.dags_folder / f"rds_slowlog_{name}.json").write_text(json.dumps(cfg))
    dag_id = f"rds_slowlog_hourly_{name}"
    st.wait_dag(dag_id, timeout=180, fileloc=st.dags_folder / "rds_slowlog_hourly.py")
    return dag_id


def test_scheduled_run_and_backfills_index_exactly_the_anchor_counts(stack, logs, es_url, tmp_path) -> None:  # noqa: F811
    want = expected_per_window(logs)
    prefix = f"st-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", es_url)
    try:
        dag_id = _add_dag(stack, "st", _config(prefix, tmp_path / "staging", "elasticsearch_stacktest"))
        # 1a. the scheduler's own run of the latest complete hour (catchup=False: created once the DAG is parsed)
        deadline = time.monotonic() + 240
        while not (sched := stack.runs(dag_id, run_type="scheduled")) and time.monotonic() < deadline:
            time.sleep(2)
        assert sched, "the scheduler made no run"
        run = sched[0]
        now_hour, first = logs["now_hour"], logs["first"]
        assert run["data_interval_start"].startswith((now_hour - timedelta(hours=1)).strftime("%Y-%m-%dT%H"))
        assert stack.wait_run(dag_id, run["dag_run_id"], timeout=300) == "success"
        got = _window_counts(client, "elasticsearch", prefix, now_hour - timedelta(hours=1))
        assert got == {i: want[i][2] for i in INSTANCES}
        # 1b. backfill the three hours (the last one exists already and is left as it is)
        stack.backfill(dag_id, first, first + timedelta(hours=2))
        runs = stack.wait_backfill(dag_id, timeout=600)
        assert [r["state"] for r in runs] == ["success"] * len(runs) and len(runs) >= 2
        for k in range(3):
            start = first + timedelta(hours=k)
            assert _window_counts(client, "elasticsearch", prefix, start) == {i: want[i][k] for i in INSTANCES}, k
        total = sum(sum(v) for v in want.values())
        assert _count(client, "elasticsearch", f"{prefix}-mysql-*,{prefix}-postgres-*") == total
        assert run_docs(client, "elasticsearch", prefix, first, now_hour) == 3 * len(INSTANCES)
        assert _count(client, "elasticsearch", f"{prefix}-history-*") > 0
        # 2. again, reprocessing the completed runs: every count unchanged
        stack.backfill(dag_id, first, first + timedelta(hours=2), reprocess_behavior="completed")
        runs = stack.wait_backfill(dag_id, timeout=600)
        assert [r["state"] for r in runs] == ["success"] * len(runs) and len(runs) == 3
        for k in range(3):
            start = first + timedelta(hours=k)
            assert _window_counts(client, "elasticsearch", prefix, start) == {i: want[i][k] for i in INSTANCES}
        assert _count(client, "elasticsearch", f"{prefix}-mysql-*,{prefix}-postgres-*") == total
        assert run_docs(client, "elasticsearch", prefix, first, now_hour) == 3 * len(INSTANCES)
    finally:
        delete_indices(client, "elasticsearch", prefix)


def _trigger(stack, dag_id: str, start: datetime, name: str) -> str:
    """A manual run of the window [start, start + 1 h); its logical date a second past the window's end, so it
    never collides with the scheduler's own run of that hour."""
    return stack.trigger(dag_id, start + timedelta(hours=1, seconds=1), run_id=f"{name}_{uuid.uuid4().hex[:6]}",
                         data_interval=(start, start + timedelta(hours=1)))


def _task_pids(stack, dag_id: str, run_id: str, task_id: str) -> list[int]:
    """The processes running ``task_id`` now: LocalExecutor titles a task's process ``airflow worker --
    <task instance id>`` (its supervisor adds ``LocalExecutor:``); the task instance ids come from the API."""
    ids = {ti["id"] for ti in stack.task_instances(dag_id, run_id)
           if ti["task_id"] == task_id and ti["state"] == "running"}
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("airflow worker -- ") and "LocalExecutor" not in cmd and any(i in cmd for i in ids):
            pids.append(int(d.name))
    return pids


def test_a_killed_index_task_is_retried_and_the_counts_are_exact(stack, logs, es_url, tmp_path) -> None:  # noqa: F811
    from rds_slowlog.testing.fault_proxy import FaultProxy

    want = expected_per_window(logs)
    prefix = f"st-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", es_url)
    proxy = FaultProxy(es_url)
    proxy.bulk_delay = 0.4                      # slow bulk requests: the task is killed while it sends them
    from urllib.parse import urlsplit

    u = urlsplit(es_url)
    stack.set_connection("elasticsearch_stackproxy", "elasticsearch", host="127.0.0.1",
                         port=proxy.server.server_address[1], schema="http", login=u.username, password=u.password)
    try:
        dag_id = _add_dag(stack, "kill", _config(prefix, tmp_path / "staging", "elasticsearch_stackproxy",
                                                 knobs={"batch_size": 10, "max_workers": 1,
                                                        "chunks_per_index_task": 100}))
        start = logs["first"] + timedelta(hours=1)
        run_id = _trigger(stack, dag_id, start, "kill")
        deadline = time.monotonic() + 300
        killed: list[int] = []
        while time.monotonic() < deadline and not killed:
            if len(proxy.bulk_ids) >= 2:
                pids = _task_pids(stack, dag_id, run_id, "index")
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed = pids
            time.sleep(0.2)
        assert killed, "the index task was never seen running:\n" + subprocess.run(
            ["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout[-6000:]
        proxy.bulk_delay = 0.0
        assert stack.wait_run(dag_id, run_id, timeout=400) == "success"
        idx = [ti for ti in stack.task_instances(dag_id, run_id) if ti["task_id"] == "index"]
        assert idx and max(ti["try_number"] for ti in idx) >= 2
        assert _window_counts(client, "elasticsearch", prefix, start) == {i: want[i][1] for i in INSTANCES}
    finally:
        proxy.close()
        delete_indices(client, "elasticsearch", prefix)


def test_one_window_into_opensearch(stack, logs, os_url, tmp_path) -> None:  # noqa: F811
    want = expected_per_window(logs)
    prefix = f"st-{uuid.uuid4().hex[:8]}"
    client = make_client("opensearch", os_url)
    try:
        dag_id = _add_dag(stack, "os", _config(prefix, tmp_path / "staging", "opensearch_stacktest", "opensearch"))
        start = logs["first"]
        run_id = _trigger(stack, dag_id, start, "os")
        assert stack.wait_run(dag_id, run_id, timeout=300) == "success"
        assert _window_counts(client, "opensearch", prefix, start) == {i: want[i][0] for i in INSTANCES}
        # one run document per instance for this window (the scheduler's own run of the latest hour adds its own)
        raw_request(client, "opensearch", "POST", f"/{prefix}-runs-*/_refresh")
        _, body = raw_request(client, "opensearch", "POST", f"/{prefix}-runs-*/_count",
                              {"query": {"term": {"event.start": start.isoformat()}}})
        assert body["count"] == len(INSTANCES)
        # the Asset event downstream DAGs schedule on, with what the window held
        events = stack.api("GET", "assets/events", params={"source_dag_id": dag_id, "source_run_id": run_id})
        [event] = events["asset_events"]
        assert event["extra"]["docs"] == sum(want[i][0] for i in INSTANCES)
        assert event["extra"]["window_start"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    finally:
        delete_indices(client, "opensearch", prefix)
