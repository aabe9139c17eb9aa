"""Run the hourly DAG once with ``dag.test()`` in this (fresh) interpreter and print what happened as JSON.

Used by tests/airflow/test_dag.py through a subprocess, because Airflow reads its settings (AIRFLOW_HOME, the
SQLite metadata database, connections from ``AIRFLOW_CONN_*``) once per interpreter.

    python dagtest_runner.py DAGS_DIR LOGICAL_DATE [MARK_SUCCESS_PATTERN]

MARK_SUCCESS_PATTERN (a regex of task ids, ``dag.test(mark_success_pattern=...)``) marks those tasks successful
without running them, e.g. ``^cleanup$`` to look at a run's staging afterwards. The result also carries each
task instance's rendered template fields (``rendered``), which tests grep for secrets.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime


def main(dags_dir: str, logical_date: str, mark_success_pattern: str | None = None) -> int:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_dir)
    if bag.import_errors:
        print(json.dumps({"import_errors": {k: str(v) for k, v in bag.import_errors.items()}}))
        return 2
    dag = bag.get_dag("rds_slowlog_hourly")
    run = dag.test(logical_date=datetime.fromisoformat(logical_date), mark_success_pattern=mark_success_pattern)
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    out: dict = {"state": str(run.state), "data_interval_start": run.data_interval_start.isoformat(),
                 "data_interval_end": run.data_interval_end.isoformat(), "tis": [], "xcom": {}, "rendered": {}}
    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag.dag_id,
                                                 TaskInstance.run_id == run.run_id).all()
        for ti in tis:
            out["tis"].append({"task_id": ti.task_id, "map_index": ti.map_index, "state": str(ti.state),
                               "try_number": ti.try_number, "label": ti.rendered_map_index})
        for x in session.query(XComModel).filter(XComModel.dag_id == dag.dag_id,
                                                 XComModel.run_id == run.run_id,
                                                 XComModel.key == "return_value").all():
            out["xcom"].setdefault(x.task_id, {})[str(x.map_index)] = x.value
        for r in session.query(RenderedTaskInstanceFields).filter(RenderedTaskInstanceFields.dag_id == dag.dag_id,
                                                                  RenderedTaskInstanceFields.run_id == run.run_id):
            out["rendered"].setdefault(r.task_id, {})[str(r.map_index)] = r.rendered_fields
    print("DAGTEST-RESULT " + json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
