"""The DAG file: its shape, its settings, and that parsing it imports nothing heavy (MWAA parses every DAG
file every few seconds with a 30 s import timeout)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "rds_slowlog_hourly.py"

PROBE = r"""
import json, sys, time
import airflow.sdk, airflow.providers.common.compat.sdk   # what the dag-processor has loaded already
before = set(sys.modules)
t = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("rds_slowlog_hourly", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
elapsed = time.perf_counter() - t
heavy = sorted(m for m in set(sys.modules) - before
               if m.split(".")[0] in ("botocore", "boto3", "elasticsearch", "opensearchpy", "sqlparse", "orjson",
                                      "fsspec", "s3fs")
               or m in ("rds_slowlog.indexing", "rds_slowlog.stage", "rds_slowlog.parsers.mysql"))
dags = {v.dag_id: v for v in vars(mod).values() if type(v).__name__ == "DAG"}
dag = dags["rds_slowlog_hourly"]
tasks = {t.task_id: t for t in dag.tasks}
print(json.dumps({
    "elapsed": elapsed, "heavy": heavy, "dag_id": dag.dag_id, "tasks": sorted(tasks),
    "timetable": type(dag.timetable).__name__, "summary": dag.timetable.expression, "tz": str(dag.timetable.timezone),
    "max_active_runs": dag.max_active_runs, "catchup": dag.catchup,
    "index_pool": tasks["index"].pool, "stage_template": tasks["stage"].map_index_template,
    "retries": tasks["stage"].retries, "backoff": tasks["stage"].retry_exponential_backoff,
    "wait_deferrable": getattr(tasks["wait_for_rotation"], "deferrable", None),
    "summary_outlets": [getattr(o, "name", str(o)) for o in tasks["summarize"].outlets],
    "doc": bool(dag.doc_md), "dag_ids": sorted(dags),
}))
"""


def _probe(dag_file: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW_HOME": str(dag_file.parent / ".airflow")})
    p = subprocess.run([sys.executable, "-c", PROBE, str(dag_file)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_parsing_the_dag_imports_nothing_heavy_and_reads_no_connection(tmp_path) -> None:
    (tmp_path / "dags").mkdir()
    dag_file = tmp_path / "dags" / DAG_FILE.name
    dag_file.write_bytes(DAG_FILE.read_bytes())
    (tmp_path / "dags" / "rds_slowlog.json").write_bytes((ROOT / "dags" / "rds_slowlog.json").read_bytes())
    got = _probe(dag_file)
    assert got["heavy"] == [], got["heavy"]
    assert got["dag_id"] == "rds_slowlog_hourly" and got["doc"]
    assert got["tasks"] == ["cleanup", "index", "list_files", "plan_index", "stage", "summarize",
                            "wait_for_rotation"]
    assert got["timetable"] == "CronDataIntervalTimetable" and got["summary"] == "0 * * * *" and "UTC" in got["tz"]
    assert got["catchup"] is False and got["max_active_runs"] == 4
    assert got["index_pool"] == "rds_slowlog_search" and got["stage_template"] == "{{ slowlog_label }}"
    assert got["retries"] == 3 and got["backoff"] in (True, 2.0) and got["wait_deferrable"] is True
    assert got["summary_outlets"] == ["rds_slowlog_hourly_windows"]
    assert got["dag_ids"] == ["rds_slowlog_hourly"]


def test_each_further_config_file_makes_one_more_dag(tmp_path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / DAG_FILE.name).write_bytes(DAG_FILE.read_bytes())
    for name in ("rds_slowlog.json", "rds_slowlog_eu.json"):
        (dags / name).write_bytes((ROOT / "dags" / "rds_slowlog.json").read_bytes())
    assert _probe(dags / DAG_FILE.name)["dag_ids"] == ["rds_slowlog_hourly", "rds_slowlog_hourly_eu"]


def test_dag_level_settings_come_from_the_config_file_and_a_broken_file_still_parses(tmp_path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / DAG_FILE.name).write_bytes(DAG_FILE.read_bytes())
    cfg = json.loads((ROOT / "dags" / "rds_slowlog.json").read_text())
    cfg.update({"max_active_runs": 2, "pool": "shared_es", "retries": 5})
    (dags / "rds_slowlog.json").write_text(json.dumps(cfg))
    got = _probe(dags / DAG_FILE.name)
    assert (got["max_active_runs"], got["index_pool"], got["retries"]) == (2, "shared_es", 5)
    (dags / "rds_slowlog.json").write_text("{not json")          # reported by the first task, not an import error
    got = _probe(dags / DAG_FILE.name)
    assert got["max_active_runs"] == 4 and got["index_pool"] == "rds_slowlog_search"
