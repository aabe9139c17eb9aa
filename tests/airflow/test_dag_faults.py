"""Data-path faults survived by the hourly DAG, each in its own ``dag.test()`` run, each ending exact.

Real parts only: boto3 against the RDS emulator (its fault switches), staging and the raw archive on ``s3://``
served by moto in server mode behind :class:`~rds_slowlog.testing.fault_proxy.FaultProxy` (the proxy refuses,
cuts and answers for S3 as a network and a loaded service do), the real Elasticsearch. A fault is armed on
the emulator or the proxy before the run and fires at an exact point of the traffic; the run must then end
with documents == entries for every instance (counted in the index), books that balance, and the retries
that got it there visible in the task instances' try numbers and the task logs.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))          # tests/airflow: the dag.test helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # tests/: shared fixtures
from moto_server import KEY_ID, REGION, SECRET, moto_endpoint  # noqa: E402,F401
from search_fixtures import delete_indices, es_url, make_client  # noqa: E402,F401
from test_dag import H0, INSTANCES, _count, _dags, expected, logs, run_dag, states  # noqa: E402,F401

from rds_slowlog.testing.fault_proxy import FaultProxy  # noqa: E402
from rds_slowlog.testing.rds_emulator import Faults, InstanceSpec, RdsEmulator  # noqa: E402

pytestmark = pytest.mark.slow

WINDOW_END = H0 + 2 * 3600                      # dag.test's manual run covers [11:00, 12:00)
CHUNK = r"/chunk-\d+\.ndjson\.gz$"


@pytest.fixture(scope="module")
def emulator(logs):  # noqa: F811
    root = logs["_root"]
    specs = {inst: InstanceSpec(root=root / inst, engine=engine) for inst, (_, engine) in INSTANCES.items()}
    with RdsEmulator(specs) as emu:
        yield emu


@pytest.fixture(scope="module")
def s3(moto_endpoint):  # noqa: F811
    """A bucket on moto and a fault proxy in front of it (every S3 request of the DAG goes through it)."""
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                          aws_secret_access_key=SECRET)
    bucket = f"faults-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    with FaultProxy(moto_endpoint, flavor="s3") as proxy:
        yield client, bucket, proxy


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory, emulator, es_url, s3):  # noqa: F811
    from urllib.parse import urlsplit

    _, _, proxy = s3
    home = tmp_path_factory.mktemp("airflow")
    u = urlsplit(es_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                "extra": {"endpoint_url": emulator.endpoint_url,
                                                          "region_name": REGION}}),
        "AIRFLOW_CONN_AWS_S3": json.dumps({"conn_type": "aws", "login": KEY_ID, "password": SECRET,
                                           "extra": {"endpoint_url": proxy.endpoint_url, "region_name": REGION}}),
        "AIRFLOW_CONN_ELASTICSEARCH_DEFAULT": json.dumps({"conn_type": "elasticsearch", "host": u.hostname,
                                                          "port": u.port, "schema": u.scheme, "login": u.username,
                                                          "password": u.password}),
    })
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=600)
    return env


@pytest.fixture
def client(es_url):  # noqa: F811
    return make_client("elasticsearch", es_url)


@pytest.fixture
def fresh(emulator, s3):
    """Faults off before and after each test (the emulator and the proxy are shared by the module)."""
    emulator.faults = Faults()
    s3[2].heal()
    yield
    emulator.faults = Faults()
    s3[2].heal()


def _s3_dags(tmp_path: Path, s3, **overrides) -> tuple[Path, str, str]:
    """DAG folder whose staging and raw archive live on ``s3://aws_s3@<bucket>/<test>/`` (through the proxy)."""
    _, bucket, _ = s3
    key = uuid.uuid4().hex[:8]
    base = f"s3://aws_s3@{bucket}/{key}"
    instances = [{"id": i, "engine": e, "archive": f"{base}/archive"} for i, (_, e) in INSTANCES.items()]
    dags, prefix = _dags(tmp_path, instances=instances, staging=f"{base}/staging", **overrides)
    return dags, prefix, key


def _assert_exact(res: dict, logs: dict, prefix: str, client) -> dict:  # noqa: F811
    """documents == entries per instance in the index, and books that balance; returns the summary stats."""
    errors = [line for line in res["log"].splitlines() if "ERROR" in line or "Error:" in line]
    assert res["state"] == "success", "\n".join(errors[-40:]) + res["log"][-3000:]
    want = {i: expected(logs, i, H0 + 3600) for i in INSTANCES}
    assert all(want.values())
    assert _count(client, prefix, "mysql-*") == want["live-mariadb"]
    assert _count(client, prefix, "postgres-*") == want["live-postgres"]
    s = res["xcom"]["summarize"]["-1"]["stats"]
    assert s["docs"] == s["indexed"] == s["created"] + s["updated"] == sum(want.values())
    assert s["entries"] == s["docs"] + s["incomplete"] and s["incomplete"] == 0
    assert s["not_attempted"] == s["failed"] == s["dead_lettered"] == 0
    assert _count(client, prefix, "runs-*") == 2
    return s


def _tries(res: dict, task: str) -> list[int]:
    return sorted(ti["try_number"] for ti in res["tis"] if ti["task_id"] == task)


def test_rds_throttling_and_an_early_end_of_data(airflow_env, emulator, logs, s3, fresh, tmp_path,  # noqa: F811
                                                 client) -> None:
    """Every 3rd RDS call throttled, ``AdditionalDataPending=false`` long before the end of each file, and once
    RDS claiming the end outright (no data, pending false) until the walk gives up: the complete-file endpoint
    is denied, so everything goes through the portion API. The early ``false`` is read past (the listed size
    says there is more); the outright stop is a download that ended short, which fails the stage task before
    its manifest commits, and Airflow's retry reads the file whole."""
    longest = max(len(line) for p in logs["_root"].rglob("*.log*") if p.is_file()
                  for line in p.read_bytes().splitlines(keepends=True))
    emulator.faults = Faults(throttle_every=3, early_pending_false=0.3, stop_short=5, complete_file_denied=1,
                             truncate=max(2048, longest + 1))
    emulator.reset_calls()
    dags, prefix, _ = _s3_dags(tmp_path, s3, retries=2, retry_delay_seconds=1)
    try:
        res = run_dag(airflow_env, dags, WINDOW_END)
        _assert_exact(res, logs, prefix, client)
        # the faults happened: throttles (answered by botocore's retries), early "no more data" read past,
        # and one stage task that failed on the short download and succeeded on its retry
        assert emulator.count(error="Throttling") >= 5
        assert emulator.count("DownloadCompleteDBLogFile", error="AccessDenied") >= 6
        early = [c for c in emulator.calls if c.action == "DownloadDBLogFilePortion" and c.status == 200
                 and c.pending is False and c.data_bytes
                 and int(c.marker.split(":")[1]) < emulator.path(c.instance, c.log_file).stat().st_size]
        assert len(early) >= 6
        assert emulator.faults.stop_short == 0
        assert _tries(res, "stage") == [1, 2]
        assert "was read only in part" in res["log"] and "RDS stopped returning data before the listed size" \
            in res["log"]
        downloads = [d for st in res["xcom"]["stage"].values() for d in st["downloads"]]
        assert len(downloads) == 6
        assert all(d["method"] == "portions" and d["complete"] and not d["losses"] for d in downloads)
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_s3_refusing_and_cutting_requests_for_a_while(airflow_env, emulator, logs, s3, fresh, tmp_path,  # noqa: F811
                                                      client) -> None:
    """S3 behind the proxy: chunk uploads answered by a dropped connection (the object was stored, the answer
    lost), the port refusing connections for 20 s from the first manifest commit (the stage task fails and is
    retried) and again for 20 s from the first chunk read (the index task fails and is retried), and chunk
    downloads cut in the middle of the body (botocore/s3fs retry them)."""
    _, _, proxy = s3
    cut_puts = proxy.arm("cut", count=3, method="PUT", path=CHUNK)
    refuse_stage = proxy.arm("refuse", seconds=20, method="PUT", path=r"/manifest\.json$")
    refuse_index = proxy.arm("refuse", seconds=20, method="GET", path=CHUNK)
    cut_gets = proxy.arm("cut", count=2, method="GET", path=CHUNK)
    dags, prefix, key = _s3_dags(tmp_path, s3, retries=6, retry_delay_seconds=1)
    try:
        res = run_dag(airflow_env, dags, WINDOW_END)
        _assert_exact(res, logs, prefix, client)
        assert cut_puts.hits == 3 and cut_gets.hits == 2
        assert refuse_stage.started is not None and refuse_index.started is not None
        assert proxy.count("refuse") == 2 and proxy.count("cut") == 5
        assert max(_tries(res, "stage")) >= 2 and max(_tries(res, "index")) >= 2, states(res)
        assert "Could not connect to the endpoint URL" in res["log"]
        # the raw archive was written through the same faults: every rotated file read, whole (the current
        # MySQL file is archived once rotated, by a later run)
        s3c, bucket, _ = s3
        keys = [o["Key"] for o in s3c.list_objects_v2(Bucket=bucket, Prefix=f"{key}/archive/")["Contents"]]
        assert len(keys) == 5, keys
        for k in keys:
            inst, name = k[len(f"{key}/archive/"):].split("/", 1)
            body = gzip.decompress(s3c.get_object(Bucket=bucket, Key=k)["Body"].read())
            assert body == emulator.path(inst, name[:-3]).read_bytes(), k
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_a_chunk_corrupted_on_s3_is_refused_and_staged_again(airflow_env, emulator, logs, s3, fresh,  # noqa: F811
                                                            tmp_path, client) -> None:
    """Right after the first stage task commits its manifest, its first chunk is overwritten on S3 with the
    same length of different bytes. The index task refuses it by its sha256, stages the window again into a
    scratch prefix, gets the identical chunk (same sha256, same ids), puts it back and indexes it: the run
    ends exact without a retry, and nothing was indexed from the corrupted object."""
    s3c, bucket, proxy = s3
    corrupted: list[str] = []

    def corrupt(method: str, path: str) -> None:
        key = path.split("?", 1)[0].lstrip("/").split("/", 1)[1].rsplit("/", 1)[0] + "/chunk-00000.ndjson.gz"
        body = bytearray(s3c.get_object(Bucket=bucket, Key=key)["Body"].read())
        mid = len(body) // 2
        body[mid:mid + 16] = bytes(b ^ 0xFF for b in body[mid:mid + 16])
        s3c.put_object(Bucket=bucket, Key=key, Body=bytes(body))
        corrupted.append(key)

    hook = proxy.arm("call", count=1, method="PUT", path=r"/manifest\.json$", action=corrupt)
    dags, prefix, _ = _s3_dags(tmp_path, s3, retries=0)
    try:
        res = run_dag(airflow_env, dags, WINDOW_END)
        s = _assert_exact(res, logs, prefix, client)
        assert hook.hits == 1 and len(corrupted) == 1
        assert s["created"] == s["docs"] and s["updated"] == 0     # the repaired chunk was never indexed before
        assert _tries(res, "index") == [1] * len(_tries(res, "index"))
        assert "does not match its manifest (sha256 differs)" in res["log"]
        assert "staged chunk-00000.ndjson.gz again" in res["log"] and "as in the manifest" in res["log"]
        # the scratch prefix is gone with the window's staging
        assert not s3c.list_objects_v2(Bucket=bucket, Prefix=corrupted[0].rsplit("/", 1)[0]).get("Contents")
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_a_two_node_cluster_losing_a_node_mid_index(airflow_env, emulator, logs, s3, fresh, tmp_path) -> None:  # noqa: F811
    """The search engine as two Elasticsearch processes on loopback, the indices made with one replica
    (``search.replicas: 1``). The DAG talks to node 0 through an Elasticsearch fault proxy, which SIGKILLs
    node 1 (a data node holding copies) when the 4th bulk request of the run arrives: the cluster goes yellow,
    copies on node 1 are promoted on node 0, and the run still ends with every document there exactly once."""
    from rds_slowlog.search import raw_request
    from rds_slowlog.testing.search_server import SearchServer

    with SearchServer("elasticsearch", nodes=2) as srv:
        cluster = make_client("elasticsearch", srv.url)
        proxy = FaultProxy(srv.node_urls[0].replace(f"{srv.username}:{srv.password}@", ""))
        killed: list[float] = []
        green: list[str] = []

        def kill_node_1(method: str, path: str) -> None:
            # Only once every copy is in sync: a replica still recovering from node 1 is not a copy, and losing
            # the only in-sync one leaves the index red until that node returns (ES's rule, not ours to test).
            status, health = raw_request(cluster, "elasticsearch", "GET", f"/_cluster/health/{prefix}-*",
                                         params={"wait_for_status": "green", "timeout": "45s"})
            green.append(health.get("status"))
            srv.kill_node(1)
            killed.append(len(proxy.bulk_ids))

        hook = proxy.arm("call", count=1, after=3, path=r"/_bulk", action=kill_node_1)
        env = {**airflow_env, "AIRFLOW_CONN_ELASTICSEARCH_CLUSTER": json.dumps({
            "conn_type": "elasticsearch", "host": "127.0.0.1", "port": proxy.listen_port, "schema": "http",
            "login": srv.username, "password": srv.password})}
        dags, prefix, _ = _s3_dags(tmp_path, s3, retries=3, retry_delay_seconds=1,
                                   search={"kind": "elasticsearch", "conn_id": "elasticsearch_cluster",
                                           "replicas": 1},
                                   knobs={"chunk_size": 10, "batch_size": 5, "chunks_per_index_task": 2})
        try:
            status, health = raw_request(cluster, "elasticsearch", "GET", "/_cluster/health")
            assert status == 200 and health["number_of_nodes"] == 2
            res = run_dag(env, dags, WINDOW_END)
            _assert_exact(res, logs, prefix, cluster)
            assert hook.hits == 1 and killed and srv.pid(1) is None and green == ["green"], green
            assert len(proxy.bulk_ids) > killed[0] + 3          # indexing went on after the node died
            status, health = raw_request(cluster, "elasticsearch", "GET", "/_cluster/health")
            assert health["number_of_nodes"] == 1 and health["status"] == "yellow", health
            status, settings = raw_request(cluster, "elasticsearch", "GET", f"/{prefix}-mysql-*/_settings")
            assert {s["settings"]["index"]["number_of_replicas"] for s in settings.values()} == {"1"}
        finally:
            proxy.close()
