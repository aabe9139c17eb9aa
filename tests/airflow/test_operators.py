"""Operator conventions (keyword arguments stored, templated fields, no connection at construction) and the
pure planning helpers. Their behaviour against real servers is in test_dag.py."""
from __future__ import annotations

import pytest

from rds_slowlog.airflow.operators import (IndexSlowLogChunksOperator, ListSlowLogFilesOperator,
                                           SlowLogRetentionOperator, StageSlowLogOperator,
                                           SummarizeSlowLogOperator, plan_index_groups, window_staging)
from tests.moto_server import aws_credentials, fast_botocore, moto_endpoint  # noqa: F401 - fixtures


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


@pytest.mark.parametrize("store", ["file", "s3"])
def test_a_download_cut_short_is_not_archived(store, tmp_path, request) -> None:
    """RDS claims the end of a file part-way (the emulator's ``stop_short``): the stage inputs raise
    ``DownloadIncomplete`` and the raw archive of that file is dropped (an S3 multipart upload aborted, a
    local file removed), never kept shorter under its RDS name; the retry's read, whole, is archived."""
    import gzip
    import logging
    import uuid

    from rds_slowlog.airflow.config import Instance
    from rds_slowlog.airflow.operators import DownloadIncomplete, _stage_inputs
    from rds_slowlog.staging import FILESYSTEM_RESOLVERS
    from rds_slowlog.testing import Faults, InstanceSpec, RdsEmulator
    from tests.sources.test_rds import layout, mysql_log, source

    request.getfixturevalue("aws_credentials")
    root, _ = layout(tmp_path, mysql_log(entries=200), "mysql")
    resolver = None
    if store == "s3":
        import boto3

        from rds_slowlog.s3store import S3Store

        client = boto3.client("s3", endpoint_url=request.getfixturevalue("moto_endpoint"), region_name="us-east-1")
        bucket = f"archive-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        archive = f"s3://{bucket}/archive"
        s3 = S3Store(client)
        resolver = (lambda url: (s3, url[len("s3://"):]) if url.startswith(f"s3://{bucket}/") else None)
        FILESYSTEM_RESOLVERS.insert(0, resolver)

        def archived(name: str) -> bytes | None:
            return gzip.decompress(s3.cat_file(f"{bucket}/archive/{name}.gz")) if s3.exists(
                f"{bucket}/archive/{name}.gz") else None
    else:
        archive = (tmp_path / "archive").as_uri()

        def archived(name: str) -> bytes | None:
            p = tmp_path / "archive" / f"{name}.gz"
            return gzip.decompress(p.read_bytes()) if p.exists() else None
    inst = Instance(id="db-1", engine="mysql", aws_conn_id="aws_default")
    log = logging.getLogger("test")
    try:
        with RdsEmulator({"db-1": InstanceSpec(root=root)}) as emu:
            src, _ = source(emu, engine="mysql", complete_file=False, number_of_lines=20, max_tries=3)
            ref = max((r for r in src.list_files(0, 4e9) if r.name[-1:].isdigit()), key=lambda r: r.size or 0)
            emu.faults = Faults(early_pending_false=0.3, stop_short=3)
            inputs = _stage_inputs(src, [ref], inst, archive, [], log)
            item = next(inputs)
            assert item.stream.read() and item.stream.read() == b""      # read to its (early) end, as a parse does
            with pytest.raises(DownloadIncomplete, match="read only in part"):
                next(inputs)
            assert archived(ref.name) is None
            if store == "s3":
                assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
            for item in _stage_inputs(src, [ref], inst, archive, [], log):  # the retry: the fault is used up
                while item.stream.read(65536):
                    pass
            assert archived(ref.name) == (root / ref.name).read_bytes()
    finally:
        if resolver is not None:
            FILESYSTEM_RESOLVERS.remove(resolver)
