"""Operator conventions (keyword arguments stored, templated fields, no connection at construction) and the
pure planning helpers. Their behaviour against real servers is in test_dag.py."""
from __future__ import annotations

import pytest

from rds_slowlog.airflow.operators import (IndexSlowLogChunksOperator, ListSlowLogFilesOperator,
                                           SlowLogRetentionOperator, StageSlowLogOperator,
                                           SummarizeSlowLogOperator, plan_index_groups, window_staging)


@pytest.mark.parametrize(("cls", "kwargs", "fields"), [
    (ListSlowLogFilesOperator, {"config_path": "c.json"}, ("config_path", "window_start", "window_end")),
    (StageSlowLogOperator, {"config_path": "c.json", "spec": {}}, ("spec", "config_path")),
    (IndexSlowLogChunksOperator, {"config_path": "c.json", "group": {}}, ("group", "config_path")),
    (SummarizeSlowLogOperator, {"config_path": "c.json", "stage_results": [], "index_results": []},
     ("stage_results", "index_results", "config_path")),
    (SlowLogRetentionOperator, {"config_path": "c.json", "stage_results": []},
     ("stage_results", "config_path", "logical_now")),
])
def test_template_fields_and_keyword_only_arguments(cls, kwargs, fields, monkeypatch) -> None:
    # no connection may be read while a DAG is parsed: make any lookup fail loudly
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "not a connection")
    op = cls(task_id="t", **kwargs)
    assert tuple(op.template_fields) == fields
    for k, v in kwargs.items():
        assert getattr(op, k) == v
    with pytest.raises(TypeError):
        cls("t", *kwargs.values())


def test_index_groups_stay_under_max_map_length() -> None:
    stages = [{"instance": f"db-{i}", "chunks": [f"s3://b/db-{i}/chunk-{k:05d}" for k in range(700)],
               "chunk_docs": [5000] * 700} for i in range(3)]
    groups = plan_index_groups(stages, chunks_per_task=1, max_tasks=1024)
    assert len(groups) <= 1024 and sum(len(g["chunks"]) for g in groups) == 2100
    assert sum(g["docs"] for g in groups) == 2100 * 5000
    assert [c for g in groups for c in g["chunks"]] == [c for s in stages for c in s["chunks"]]   # order kept
    assert plan_index_groups([], 4) == [] and plan_index_groups([{"instance": "x", "chunks": [], "chunk_docs": []}],
                                                                4) == []
    small = plan_index_groups(stages[:1], chunks_per_task=300)
    assert [len(g["chunks"]) for g in small] == [300, 300, 100] and small[0]["label"] == "db-0: 300 chunk(s), group 1"


def test_window_staging_layout() -> None:
    assert window_staging("s3://aws_default@bucket/stage/", "rds_slowlog_hourly", "db-1", 1795788000.0) == \
        "s3://aws_default@bucket/stage/rds_slowlog_hourly/db-1/2026-11-27T140000Z"
