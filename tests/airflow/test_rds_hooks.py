"""The Airflow hooks build working log sources from real Airflow connections (``AIRFLOW_CONN_*`` env vars, JSON).

No Airflow database: connections come from the environment-variables secrets backend. The RDS connection
points at the project's RDS emulator, the CloudWatch and S3 ones at moto in server mode, all through the
connection's ``endpoint_url`` extra, exactly as a deployment points at a VPC endpoint or LocalStack.
"""
from __future__ import annotations

import gzip
import io
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

pytest.importorskip("airflow.providers.amazon")

from rds_slowlog.airflow.hooks_rds import (  # noqa: E402
    CloudWatchSlowLogHook,
    RdsSlowLogHook,
    object_storage_log_source,
)
from rds_slowlog.pipeline import read_stream  # noqa: E402
from rds_slowlog.sources import RdsLogSource  # noqa: E402
from rds_slowlog.sources.cloudwatch import CloudWatchLogSource, log_group_names  # noqa: E402
from rds_slowlog.sources.objectstore import ObjectStoreLogSource  # noqa: E402
from rds_slowlog.testing import InstanceSpec, RdsEmulator, layout_hourly  # noqa: E402
from tests.moto_server import (  # noqa: E402,F401 - fixtures
    KEY_ID,
    REGION,
    SECRET,
    aws_credentials,
    cloudwatch_events,
    moto_endpoint,
    put_events,
    recent_shift,
)
from tests.sources.test_rds import START, mysql_log, pg_log  # noqa: E402

pytestmark = pytest.mark.usefixtures("aws_credentials")


def aws_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, endpoint_url: str, **extra: Any) -> None:
    """An ``aws`` connection in the environment; its keys differ from the process's AWS_* variables so a
    client that ignored the connection would sign with the wrong ones."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({
        "conn_type": "aws", "login": "AKIDFROMCONNECTION", "password": "secret-from-connection",
        "extra": {"endpoint_url": endpoint_url, "region_name": REGION, **extra}}))


def read_all(stream: Any) -> bytes:
    with stream:
        return stream.read()


def test_rds_hook_lists_and_downloads_from_the_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src_log = tmp_path / "source.log"
    src_log.write_bytes(mysql_log(entries=300))
    root = tmp_path / "db-1"
    pieces = layout_hourly(src_log, root, "mysql")
    with RdsEmulator({"db-1": InstanceSpec(root=root, engine="mysql")}) as emu:
        aws_conn(monkeypatch, "rds_emu", emu.endpoint_url, config_kwargs={"read_timeout": 33})
        hook = RdsSlowLogHook(aws_conn_id="rds_emu", max_attempts=4)
        source = hook.get_log_source("db-1", "mysql", pace=0)
        assert isinstance(source, RdsLogSource) and source.instance == "db-1"
        client = source.client
        assert client.meta.endpoint_url == emu.endpoint_url and client.meta.region_name == REGION
        assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 4}
        assert client.meta.config.read_timeout == 33  # the connection's config_kwargs win over our default
        refs = source.list_files(0, 4e9)
        assert [r.name for r in refs] == [p.relative_to(root).as_posix() for p in pieces]
        for ref in refs:
            stream = source.open(ref)
            assert read_all(stream) == (root / ref.name).read_bytes()
            assert stream.report.method == "complete" and stream.report.complete
        assert emu.count("DownloadCompleteDBLogFile") >= 1
        # the complete-file REST call is signed with the connection's key, not the environment's
        assert source.credentials.get_frozen_credentials().access_key == "AKIDFROMCONNECTION"
        assert client._request_signer._credentials.get_frozen_credentials().access_key == "AKIDFROMCONNECTION"
        portions = RdsSlowLogHook(aws_conn_id="rds_emu").get_log_source("db-1", "mysql", pace=0,
                                                                        complete_file=False)
        stream = portions.open(refs[0])
        assert read_all(stream) == pieces[0].read_bytes() and stream.report.method == "portions"


def test_cloudwatch_hook_reads_moto(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = pg_log(lines=200)
    shift = recent_shift(START.timestamp())
    inst = f"pg-{uuid.uuid4().hex[:8]}"
    aws_conn(monkeypatch, "cw_moto", moto_endpoint)
    hook = CloudWatchSlowLogHook(aws_conn_id="cw_moto")
    put_events(hook.conn, log_group_names(inst, engine="postgres")[0], inst,
               cloudwatch_events(data, "postgres", "line", shift))
    source = hook.get_log_source(inst, pace=0, page_limit=40)
    assert isinstance(source, CloudWatchLogSource)
    assert source.client.meta.config.retries["mode"] == "adaptive"
    (ref,) = source.list_files(START.timestamp() + shift, START.timestamp() + shift + 5 * 3600)
    assert ref.engine == "postgres" and read_all(source.open(ref)) == data
    entries = list(read_stream(source.open(ref), ref.name, "postgres").entries)
    assert entries and all(e.source == ref.name for e in entries)


def test_object_storage_path_from_an_airflow_connection(tmp_path: Path, moto_endpoint: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("s3fs")
    aws_conn(monkeypatch, "s3_moto", moto_endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                      aws_secret_access_key=SECRET)
    bucket = f"arch-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    body = mysql_log(entries=80)
    s3.put_object(Bucket=bucket, Key="db-1/slowquery/mysql-slowquery.log.2024-03-01.10.gz",
                  Body=gzip.compress(body))
    source = object_storage_log_source(f"s3://{bucket}/db-1", "mysql", conn_id="s3_moto")
    assert isinstance(source, ObjectStoreLogSource) and source.kind == "objectstore"
    (ref,) = source.list_files(START.timestamp(), START.timestamp() + 600)
    assert ref.name == f"s3://{bucket}/db-1/slowquery/mysql-slowquery.log.2024-03-01.10.gz"
    assert read_all(source.open(ref)) == body
    # an ObjectStoragePath passed in as is, and a local one
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    local = tmp_path / "mysql-slowquery.log.2024-03-01.10"
    local.write_bytes(body)
    for loc in (ObjectStoragePath(f"s3://s3_moto@{bucket}/db-1"), ObjectStoragePath(f"file://{tmp_path}")):
        src = object_storage_log_source(loc)
        (r,) = src.list_files(START.timestamp(), START.timestamp() + 600)
        got = list(read_stream(src.open(r), r.name, "mysql").entries)
        want = list(read_stream(io.BytesIO(body), "x", "mysql").entries)
        assert [(e.query, e.end_time) for e in got] == [(e.query, e.end_time) for e in want]
