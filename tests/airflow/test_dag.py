"""The hourly DAG end to end with ``dag.test()`` on SQLite: real boto3 against the RDS emulator serving real
MariaDB and PostgreSQL logs spread over three hourly rotated files, and the real Elasticsearch.

Shapes: a window (two instances, several files each), a window with no files, many chunks in many index
tasks, a rerun of the same window (counts unchanged), a failing chunk (the run fails, nothing is counted as
indexed that is not), and a window beyond RDS retention with nothing else configured (the first task fails
saying so). Each run is a fresh interpreter (Airflow reads its settings once per process).
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ for search_fixtures
from search_fixtures import count, delete_indices, es_url, make_client  # noqa: E402,F401

sys.path.insert(0, str(Path(__file__).resolve().parent))      # tests/airflow: the dag.test helpers
import dagtest  # noqa: E402
from dagtest import states, write_dags  # noqa: E402,F401

from rds_slowlog.pipeline import read_stream  # noqa: E402
from rds_slowlog.testing.logdata import spread_over_hours  # noqa: E402
from rds_slowlog.testing.rds_emulator import InstanceSpec, RdsEmulator, layout_hourly  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "include" / "sample_logs"
H0 = datetime(2026, 11, 30, 10, tzinfo=timezone.utc).timestamp()   # the logs cover 10:00-13:00
INSTANCES = {"live-mariadb": ("mariadb-slowquery.log", "mysql"), "live-postgres": ("postgresql.log", "postgres")}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Each sample spread over 10:00, 11:00 and 12:00, laid out as RDS's hourly files."""
    root = tmp_path_factory.mktemp("rds")
    out = {}
    for inst, (name, engine) in INSTANCES.items():
        data = spread_over_hours((SAMPLES / name).read_bytes(), engine, H0)
        src = root / f"{inst}.log"
        src.write_bytes(data)
        assert len(layout_hourly(src, root / "instances" / inst, engine)) == 3
        out[inst] = data
    out["_root"] = root / "instances"  # type: ignore[assignment]
    return out


def expected(logs: dict, inst: str, start: float) -> int:
    """Entries our parser finds written in [start, start + 1 h) of the whole (unsplit) log."""
    data = logs[inst]
    run = read_stream(io.BufferedReader(io.BytesIO(data)), inst, INSTANCES[inst][1])
    return sum(1 for e in run.entries if e.end_time is not None and start <= e.end_time < start + 3600)


@pytest.fixture(scope="module")
def emulator(logs):
    root = logs["_root"]
    specs = {inst: InstanceSpec(root=root / inst, engine=engine, tags={"slowlog": "on"} if engine == "mysql" else {})
             for inst, (_, engine) in INSTANCES.items()}
    with RdsEmulator(specs) as emu:
        yield emu


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory, emulator, es_url):  # noqa: F811
    home = tmp_path_factory.mktemp("airflow")
    u = urlsplit(es_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                "extra": {"endpoint_url": emulator.endpoint_url,
                                                          "region_name": "us-east-1"}}),
        "AIRFLOW_CONN_ELASTICSEARCH_DEFAULT": json.dumps({"conn_type": "elasticsearch", "host": u.hostname,
                                                          "port": u.port, "schema": u.scheme, "login": u.username,
                                                          "password": u.password}),
    })
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    return env


def _dags(tmp_path: Path, **overrides) -> tuple[Path, str]:
    return write_dags(tmp_path, INSTANCES, "dt", **overrides)


def run_dag(env: dict, dags: Path, window_end_hour: float) -> dict:
    """``dag.test`` of a manual run whose window is the hour before ``logical_date``."""
    return dagtest.run_dag(env, dags, window_end_hour, timeout=600)


@pytest.fixture
def client(es_url):  # noqa: F811
    return make_client("elasticsearch", es_url)


def _count(client, prefix: str, index: str) -> int:
    from rds_slowlog.search import raw_request

    raw_request(client, "elasticsearch", "POST", f"/{prefix}-*/_refresh")
    status, body = raw_request(client, "elasticsearch", "GET", f"/{prefix}-{index}/_count")
    return body["count"] if status == 200 else 0


def test_a_window_of_two_instances_indexes_exactly_its_entries(airflow_env, logs, tmp_path, client) -> None:
    dags, prefix = _dags(tmp_path)
    try:
        res = run_dag(airflow_env, dags, H0 + 2 * 3600)          # window [11:00, 12:00)
        assert res["state"] == "success", res["log"][-4000:]
        assert res["data_interval_start"].startswith("2026-11-30T11:00")
        want = {i: expected(logs, i, H0 + 3600) for i in INSTANCES}
        assert all(want.values())
        assert _count(client, prefix, "mysql-*") == want["live-mariadb"]
        assert _count(client, prefix, "postgres-*") == want["live-postgres"]
        summary = res["xcom"]["summarize"]["-1"]
        s = summary["stats"]
        assert s["docs"] == s["indexed"] == s["created"] == sum(want.values()) and s["not_attempted"] == 0
        # three files each (the previous and next hour may hold the window's first and last seconds)
        stage = res["xcom"]["stage"]
        assert sorted(len(v["files"]) for v in stage.values()) == [3, 3]
        labels = sorted(ti["label"] for ti in res["tis"] if ti["task_id"] == "stage")
        assert labels == ["live-mariadb (3 file(s))", "live-postgres (3 file(s))"]
        # one run document per instance, one history document per class
        assert _count(client, prefix, "runs-*") == 2
        classes = {i: len({q for q in _classes(logs, i, H0 + 3600)}) for i in INSTANCES}
        assert _count(client, prefix, "history-mysql-*") == classes["live-mariadb"]
        assert _count(client, prefix, "history-postgres-*") == classes["live-postgres"]
        assert summary["top"] and "top query classes by total Query_time" in res["log"]
        # cleanup removed the window's staging
        assert not any((tmp_path / "staging").rglob("manifest.json"))
        # a rerun of the same window: every count unchanged
        res2 = run_dag(airflow_env, dags, H0 + 2 * 3600)
        assert res2["state"] == "success"
        assert _count(client, prefix, "mysql-*") == want["live-mariadb"]
        assert _count(client, prefix, "postgres-*") == want["live-postgres"]
        assert _count(client, prefix, "runs-*") == 2
        s2 = res2["xcom"]["summarize"]["-1"]["stats"]
        assert s2["updated"] == s2["indexed"] == s["indexed"] and s2["created"] == 0
    finally:
        delete_indices(client, "elasticsearch", prefix)


def _classes(logs: dict, inst: str, start: float) -> set[str]:
    from rds_slowlog.pipeline import Classifiers, classified

    run = read_stream(io.BufferedReader(io.BytesIO(logs[inst])), inst, INSTANCES[inst][1])
    return {qc.query_id for e, qc in classified(run, Classifiers())
            if e.end_time is not None and start <= e.end_time < start + 3600}


def test_a_window_without_files_succeeds_with_nothing(airflow_env, tmp_path, client) -> None:
    dags, prefix = _dags(tmp_path)
    res = run_dag(airflow_env, dags, H0 - 5 * 3600)              # [05:00, 06:00): no file was written then
    assert res["state"] == "success", res["log"][-4000:]
    assert [len(v["files"]) for v in res["xcom"]["list_files"]["-1"]] == [0, 0]
    assert res["xcom"]["summarize"]["-1"]["stats"]["docs"] == 0
    assert not any(ti["task_id"] == "index" and ti["state"] == "success" for ti in res["tis"])
    delete_indices(client, "elasticsearch", prefix)


def test_many_chunks_in_many_index_tasks(airflow_env, logs, tmp_path, client) -> None:
    dags, prefix = _dags(tmp_path, knobs={"chunk_size": 7, "chunks_per_index_task": 2, "batch_size": 5})
    try:
        res = run_dag(airflow_env, dags, H0 + 3 * 3600)          # window [12:00, 13:00)
        assert res["state"] == "success", res["log"][-4000:]
        want = sum(expected(logs, i, H0 + 2 * 3600) for i in INSTANCES)
        index_tasks = [ti for ti in res["tis"] if ti["task_id"] == "index"]
        chunks = sum(len(v["chunks"]) for v in res["xcom"]["stage"].values())
        assert chunks >= want // 7 and len(index_tasks) == -(-chunks // 2) >= 5
        assert all(ti["state"] == "success" and ti["label"].endswith(f"group {ti['map_index'] + 1}")
                   for ti in index_tasks)
        assert _count(client, prefix, "mysql-*") + _count(client, prefix, "postgres-*") == want
        assert sum(v["indexed"] for v in res["xcom"]["index"].values()) == want
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_a_failing_chunk_fails_the_run_and_its_books_say_why(airflow_env, logs, tmp_path, client) -> None:
    """An index whose mapping rejects the MySQL documents (a conflicting index made beforehand): the index
    task fails past the failure threshold, the summary does not run, and what was indexed is what is there."""
    from rds_slowlog.search import raw_request

    dags, prefix = _dags(tmp_path, knobs={"failure_threshold": 0})
    try:
        status, body = raw_request(client, "elasticsearch", "PUT", f"/{prefix}-mysql-2026.11.30",
                                   {"mappings": {"properties": {"mysql": {"properties": {
                                       "thread_id": {"type": "boolean"}}}}}})
        assert status == 200, body
        res = run_dag(airflow_env, dags, H0 + 2 * 3600)
        assert res["state"] == "failed"
        st = states(res)
        assert st[("index", "failed")] >= 1 and st[("summarize", "upstream_failed")] == 1
        assert "were rejected, more than the failure threshold allows" in res["log"]
        assert _count(client, prefix, "mysql-*") == 0
        assert list((tmp_path / "staging").rglob("*.deadletter.ndjson"))
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_a_window_beyond_rds_retention_fails_the_first_task_saying_so(airflow_env, tmp_path, client) -> None:
    dags, prefix = _dags(tmp_path, rds_retention_hours=24)
    res = run_dag(airflow_env, dags, H0 + 2 * 3600)
    assert res["state"] == "failed"
    assert ("list_files", "failed") in states(res)
    assert "older than RDS keeps slow logs" in res["log"] and "neither 'archive' nor 'cloudwatch'" in res["log"]
    delete_indices(client, "elasticsearch", prefix)


def test_a_bad_configuration_names_the_key(airflow_env, tmp_path, client) -> None:
    dags, prefix = _dags(tmp_path, knobs={"chunk_sise": 10})
    res = run_dag(airflow_env, dags, H0 + 2 * 3600)
    assert res["state"] == "failed" and ("list_files", "failed") in states(res)
    assert "unknown key 'chunk_sise'" in res["log"]


def test_instances_are_discovered_by_rds_tag(airflow_env, logs, tmp_path, client) -> None:
    dags, prefix = _dags(tmp_path, instances=[], discover={"tag": "slowlog", "value": "on"})
    try:
        res = run_dag(airflow_env, dags, H0 + 2 * 3600)
        assert res["state"] == "success", res["log"][-4000:]
        assert [s["instance"] for s in res["xcom"]["list_files"]["-1"]] == ["live-mariadb"]
        assert "discovered 1 instance(s) tagged slowlog=on: live-mariadb" in res["log"]
        assert _count(client, prefix, "mysql-*") == expected(logs, "live-mariadb", H0 + 3600)
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_a_window_past_rds_retention_is_read_from_the_raw_archive(airflow_env, logs, tmp_path, client) -> None:
    """A first run archives the complete files it downloads (gzip, by their RDS names); once the window is older
    than RDS keeps logs, the same window is read from that archive and gives the same documents."""
    archive = (tmp_path / "archive").as_uri()
    instances = [{"id": i, "engine": e, "archive": archive} for i, (_, e) in INSTANCES.items()]
    dags, prefix = _dags(tmp_path, instances=instances)
    try:
        res = run_dag(airflow_env, dags, H0 + 2 * 3600)
        assert res["state"] == "success", res["log"][-4000:]
        names = sorted(p.name for p in (tmp_path / "archive").rglob("*.gz"))
        assert "mysql-slowquery.log.2026-11-30.10.gz" in names and "postgresql.log.2026-11-30-11.gz" in names
        want = {i: expected(logs, i, H0 + 3600) for i in INSTANCES}
        first = (_count(client, prefix, "mysql-*"), _count(client, prefix, "postgres-*"))
        assert first == (want["live-mariadb"], want["live-postgres"])
        cfg = json.loads((dags / "rds_slowlog.json").read_text())
        cfg["rds_retention_hours"] = 24
        (dags / "rds_slowlog.json").write_text(json.dumps(cfg))
        res = run_dag(airflow_env, dags, H0 + 2 * 3600)
        assert res["state"] == "success", res["log"][-4000:]
        assert [s["source"] for s in res["xcom"]["list_files"]["-1"]] == ["objectstore", "objectstore"]
        s = res["xcom"]["summarize"]["-1"]["stats"]
        assert s["updated"] == s["indexed"] == sum(want.values()) and s["created"] == 0   # the same ids
        assert (_count(client, prefix, "mysql-*"), _count(client, prefix, "postgres-*")) == first
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_a_window_of_one_file_from_object_storage(airflow_env, logs, tmp_path, client) -> None:
    """One instance read from a directory of RDS-named files (``source: objectstore``) holding one file."""
    one = tmp_path / "files"
    one.mkdir()
    src = next((logs["_root"] / "live-mariadb" / "slowquery").glob("*.2026-11-30.11"))
    (one / src.name).write_bytes(src.read_bytes())
    dags, prefix = _dags(tmp_path, instances=[{"id": "live-mariadb", "engine": "mysql", "source": "objectstore",
                                               "location": one.as_uri()}])
    try:
        res = run_dag(airflow_env, dags, H0 + 2 * 3600)
        assert res["state"] == "success", res["log"][-4000:]
        [spec] = res["xcom"]["list_files"]["-1"]
        assert spec["source"] == "objectstore" and len(spec["files"]) == 1
        assert _count(client, prefix, "mysql-*") == expected(logs, "live-mariadb", H0 + 3600)
    finally:
        delete_indices(client, "elasticsearch", prefix)
