"""The local Airflow stack itself: a real scheduler runs a classic, a mapped and a deferrable task, a backfill
gets the hourly windows a data-interval timetable promises, and stop() leaves no process behind.

The stack is the session's shared one (tests/airflow_stack_fixtures.py); the last test stops it on purpose,
and the factory starts a new one for any module that asks later.
"""
from __future__ import annotations

import socket
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for airflow_stack_fixtures
from airflow_stack_fixtures import airflow_stack_factory, require_stack_prerequisites  # noqa: E402,F401

from rds_slowlog.testing.airflow_stack import (  # noqa: E402
    AirflowStack, StackError, _alive, find_stack_processes)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DAG_ID = "stack_selftest"
DAG_FILE = "stack_selftest_dag.py"
DAG_SRC = '''
"""Self-test DAG of rds_slowlog.testing.airflow_stack: classic -> deferrable sensor -> mapped."""
from datetime import timedelta

import pendulum
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import CronDataIntervalTimetable, dag, task


@dag(dag_id="stack_selftest", schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
     start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, max_active_runs=4)
def stack_selftest():
    @task
    def items(**context):
        n = (context["dag_run"].conf or {}).get("n", 3)
        return list(range(1, n + 1))

    @task(map_index_template="{{ x }}")
    def double(x):
        print(f"doubling {x}")
        return 2 * x

    # defers only while data_interval_end + delta lies ahead (see the test): then the triggerer resumes it
    wait = TimeDeltaSensor(task_id="wait", delta=timedelta(seconds=1), deferrable=True)
    values = items()
    wait >> double.expand(x=values)


stack_selftest()
'''


@pytest.fixture(scope="module")
def stack(airflow_stack_factory, tmp_path_factory: pytest.TempPathFactory) -> AirflowStack:  # noqa: F811
    src = tmp_path_factory.mktemp("stack-selftest") / DAG_FILE
    src.write_text(DAG_SRC)
    t0 = time.monotonic()
    st = airflow_stack_factory(dag_files=[src])
    print(f"stack timings: {st.timings}")
    st.wait_dag(DAG_ID, timeout=120, fileloc=st.dags_folder / DAG_FILE)
    print(f"DAG listed {time.monotonic() - t0:.1f} s after the factory call")
    # The backfill starts now and is checked by test_backfill_three_hourly_windows: its completion waits for
    # the scheduler's 30 s backfill check, which then overlaps with the manual-run test instead of adding up.
    BACKFILL["started"] = time.monotonic()
    BACKFILL["bf"] = st.backfill(DAG_ID, "2024-06-01T00:00:00Z", "2024-06-01T02:00:00Z", max_active_runs=3)
    return st


BACKFILL: dict[str, Any] = {}


def test_health_and_env_are_consistent(stack: AirflowStack) -> None:
    assert stack.unhealthy() == []
    env = stack.env
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{stack.url}/execution/"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert stack.api("GET", "dags", params={"dag_id_pattern": DAG_ID})["total_entries"] == 1
    listed = stack.cli("dags", "list", "-o", "plain", timeout=120)
    assert listed.returncode == 0 and DAG_ID in listed.stdout, listed.stderr[-2000:]


def test_manual_runs_classic_mapped_and_deferred_tasks(stack: AirflowStack) -> None:
    # Run A: the interval is inferred from the logical date. Its window ended long ago, so the sensor's
    # target time has passed and it succeeds without deferring.
    run_a = stack.trigger(DAG_ID, "2024-06-02T11:00:00Z", run_id="selftest_manual", conf={"n": 3})
    # Run B: a window that ends 40 s from now, so `wait` (a root task, started within seconds even beside
    # the backfill's runs) must defer to the triggerer until then. Both runs go at once: the test stays short.
    now = datetime.now(timezone.utc).replace(microsecond=0)
    run_b = stack.trigger(DAG_ID, now, run_id="selftest_deferred", conf={"n": 2},
                          data_interval=(now - timedelta(hours=1), now + timedelta(seconds=40)))
    assert stack.wait_run(DAG_ID, run_a, timeout=150) == "success"
    assert stack.wait_run(DAG_ID, run_b, timeout=150) == "success"
    print(f"manual runs done {(datetime.now(timezone.utc) - now).total_seconds():.1f} s after triggering")

    run = stack.run(DAG_ID, run_a)
    assert run["run_type"] == "manual" and run["conf"] == {"n": 3}
    # a manual run at X covers the interval that ends at X
    assert (run["data_interval_start"], run["data_interval_end"]) == ("2024-06-02T10:00:00Z", "2024-06-02T11:00:00Z")

    tis = stack.task_instances(DAG_ID, run_a)
    assert [(t["task_id"], t["map_index"], t["state"]) for t in tis] == [
        ("double", 0, "success"), ("double", 1, "success"), ("double", 2, "success"),
        ("items", -1, "success"), ("wait", -1, "success")]
    assert [t["rendered_map_index"] for t in tis[:3]] == ["1", "2", "3"]
    assert "doubling 3" in stack.task_log(DAG_ID, run_a, "double", 1, map_index=2)
    assert stack.xcom(DAG_ID, run_a, "items") == [1, 2, 3]                 # unmapped, from the run's conf
    assert [stack.xcom(DAG_ID, run_a, "double", k) for k in range(3)] == [2, 4, 6]
    assert "Pausing task as DEFERRED" not in stack.task_log(DAG_ID, run_a, "wait", 1)

    tis_b = stack.task_instances(DAG_ID, run_b)
    assert [(t["task_id"], t["map_index"]) for t in tis_b if t["task_id"] == "double"] == [("double", 0), ("double", 1)]
    wait_b = next(t for t in tis_b if t["task_id"] == "wait")
    # the sensor really went through the triggerer: deferred, then resumed after the window's end
    assert "Pausing task as DEFERRED" in stack.task_log(DAG_ID, run_b, "wait", 1)
    assert wait_b["end_date"] >= _iso_z(now + timedelta(seconds=40))


def _iso_z(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_backfill_three_hourly_windows(stack: AirflowStack) -> None:
    bf = BACKFILL["bf"]
    assert bf["completed_at"] is None and bf["max_active_runs"] == 3 and bf["reprocess_behavior"] == "none"
    runs = stack.wait_backfill(DAG_ID, timeout=240, backfill_id=bf["id"])
    print(f"backfill of 3 runs complete {time.monotonic() - BACKFILL['started']:.1f} s after its creation")
    assert [(r["data_interval_start"], r["data_interval_end"]) for r in runs] == [
        ("2024-06-01T00:00:00Z", "2024-06-01T01:00:00Z"),
        ("2024-06-01T01:00:00Z", "2024-06-01T02:00:00Z"),
        ("2024-06-01T02:00:00Z", "2024-06-01T03:00:00Z")]
    assert {(r["run_type"], r["state"]) for r in runs} == {("backfill", "success")}
    for r in runs:   # three mapped instances each (conf is empty: n defaults to 3)
        assert [t["map_index"] for t in stack.task_instances(DAG_ID, r["dag_run_id"]) if t["task_id"] == "double"] \
            == [0, 1, 2]
    assert stack.backfills(DAG_ID)[-1]["completed_at"]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stop_leaves_no_process_behind(stack: AirflowStack) -> None:
    before = find_stack_processes(stack.home)
    cmds = " | ".join(c for _, _, c in before)
    for part in ("api_server", "scheduler", "dag-processor", "triggerer", "postgres"):
        assert part in cmds, f"{part} not seen among the stack's processes: {cmds}"
    assert stack.pg is not None and stack.pg.postmaster_pid() is not None
    api_port, pg_port = stack.port, stack.pg_port

    stack.stop()
    print(f"stop took {stack.timings['stop']} s")

    assert find_stack_processes(stack.home) == []
    assert [pid for pid, _, _ in before if _alive(pid)] == []
    assert not _port_open(api_port) and not _port_open(pg_port)
    assert not stack.state_file.exists()
    stack.stop()   # idempotent


def test_failed_start_leaves_nothing_behind(tmp_path: Path) -> None:
    """db migrate fails after PostgreSQL started: start() raises and PostgreSQL is gone too."""
    require_stack_prerequisites()
    st = AirflowStack(tmp_path / "home", tmp_path / "dags", port=0, start_timeout=60, extra_env={
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://nobody:x@127.0.0.1:1/none"})
    with pytest.raises(StackError, match="db migrate failed"):
        st.start()
    assert find_stack_processes(st.home) == []
