"""The hourly DAG as MWAA runs it: CeleryExecutor, two workers that share no disk, s3:// staging and raw-log
archive, under the project's own Airflow stack (``AirflowStack(executor="CeleryExecutor")``: PostgreSQL, Debian's
redis-server as broker, ``moto_server`` as S3, api-server, scheduler, dag-processor, triggerer and two
``airflow celery worker`` processes, each with its own AIRFLOW_HOME, working directory and TMPDIR).

The RDS emulator serves real MariaDB and PostgreSQL logs spread over six hourly rotated files; documents go to
the real Elasticsearch. One stack for the module, one DAG; each test points the DAG's configuration file at a
fresh index prefix, so every test counts only its own documents (a rerun into the same index would hide a loss
behind the first run's documents, since ids are deterministic).

1. a 6-hour backfill: per window, documents == entries (pt-query-digest / ``duration:`` lines); mapped task
   instances ran on BOTH workers (their ``hostname`` in the REST API, which each worker takes from its own
   ``$AIRFLOW_HOME/hostname`` through ``[core] hostname_callable`` — a real Airflow mechanism, and a fact the
   REST API reports per task instance, unlike a worker's own log); the raw files archived on S3 once each,
   the staging removed;
2. faults, each in its own run, each ending with exact counts after Airflow's own retries:
   ``kill -9`` of the worker running a stage task (mid-download) and of the one running an index task
   (mid-bulk); the scheduler restarted mid-backfill; a private Elasticsearch really stopped and restarted
   while the index tasks run (never the shared server: other test sessions use it);
3. data-path faults, each in its own run of one window, armed before the run and firing at an exact point
   of the traffic: the RDS emulator throttling every 3rd call and answering ``AdditionalDataPending=false``
   early (and once claiming the end outright); S3 (behind :class:`~rds_slowlog.testing.fault_proxy.FaultProxy`
   in front of the stack's moto, through an ``aws`` connection of its own) cutting uploads and downloads and
   refusing connections for 20 s, twice; a staged chunk corrupted on S3 (refused by its sha256, staged again
   by the index task); the search engine as a two-node cluster losing a node mid-index.

A killed worker takes its task's supervisor with it, so nothing reports the task's end: the scheduler fails it
after ``[scheduler] task_instance_heartbeat_timeout`` (30 s here instead of 300 s) and Airflow's retry runs it
on a worker that is alive.
"""
from __future__ import annotations

import gzip
import itertools
import json
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ for the shared fixtures
from search_fixtures import delete_indices, es_url, make_client  # noqa: E402,F401

from celery_stack import celery_stack, rds_emulator, search_server_in_background  # noqa: E402
from hourly_windows import count, dag_config, expected_per_window, hourly_logs, instances  # noqa: E402
from hourly_windows import window_counts  # noqa: E402
import hourly_windows  # noqa: E402
from rds_slowlog.testing.airflow_stack import AirflowStack  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

NOW_HOUR = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
HOURS = 6
# the logs cover [H-7, H-1): the backfill creates all six runs; the scheduler's own run of [H-1, H) finds none
FIRST = NOW_HOUR - timedelta(hours=HOURS + 1)
INSTANCES = instances("cel")
BUCKET = "rds-slowlog-celery"
DAG_ID = "rds_slowlog_hourly_celery"
CONFIG = "rds_slowlog_celery.json"
TERMINAL = {"success", "failed", "upstream_failed", "skipped"}


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict:
    return hourly_logs(tmp_path_factory.mktemp("celery-rds"), INSTANCES, FIRST, HOURS)


@pytest.fixture(scope="module")
def want(logs) -> dict[str, list[int]]:
    return expected_per_window(logs)


@pytest.fixture(scope="module")
def emulator(logs):
    with rds_emulator(logs) as emu:
        yield emu


@pytest.fixture(scope="module")
def private_es():
    """A private Elasticsearch (it is stopped and restarted by a test), started while the stack starts."""
    with search_server_in_background() as started:
        yield started


@pytest.fixture(scope="module")
def stack(tmp_path_factory, emulator, es_url, private_es):  # noqa: F811
    u = urlsplit(es_url)
    boot = f"cel-boot-{uuid.uuid4().hex[:8]}"
    with celery_stack(tmp_path_factory.mktemp("celery-stack"), emulator, bucket=BUCKET, dag_id=DAG_ID,
                      search=lambda: ("elasticsearch_celery", es_url, u.username, u.password),
                      write_config=lambda st: write_config(st, boot, "elasticsearch_celery", wait=False), pool_slots=4,
                      extra_env={
                          # a lost worker's task is failed (and retried) after 30 s without a heartbeat
                          "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                          "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                      }) as st:
        delete_indices(make_client("elasticsearch", es_url), "elasticsearch", boot)
        yield st


def write_config(st: AirflowStack, prefix: str, conn: str, s3_root: str = f"s3://aws_default@{BUCKET}",
                 wait: bool = True, **over: Any) -> None:
    """The DAG's configuration: s3:// staging and raw archive under ``s3_root`` (moto through ``aws_default``;
    the fault tests go through the S3 fault proxy's connection). The operators read it when they run, so a
    test changes the index prefix (or search connection) between runs."""
    over.setdefault("knobs", {"chunk_size": 20, "chunks_per_index_task": 2})
    over.setdefault("retries", 4)
    over.setdefault("retry_delay_seconds", 5)
    cfg = dag_config(INSTANCES, prefix, f"{s3_root}/staging", conn, "aws_default",
                     instance_extra={"archive": f"{s3_root}/archive"}, **over)
    path = st.dags_folder / CONFIG
    tmp = path.with_name(f".{CONFIG}.tmp")
    tmp.write_text(json.dumps(cfg))
    tmp.replace(path)
    if wait:
        wait_retries_parsed(st, cfg["retries"], cfg["retry_delay_seconds"])


def wait_retries_parsed(st: AirflowStack, retries: int, delay: float, timeout: float = 120) -> None:
    """Until the dag-processor has parsed the DAG with these retries: unlike the rest of the configuration,
    which the operators read when they run, retries are the DAG's default_args (a run triggered before the
    reparse would fail after the previous configuration's number of tries)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            t = st.api("GET", f"/api/v2/dags/{DAG_ID}/tasks/stage")
        except Exception:       # the DAG not serialized yet (first start)
            t = {}
        if t.get("retries") == retries and (t.get("retry_delay") or {}).get("seconds") == delay:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"the DAG was not re-parsed with retries={retries}, retry delay {delay} s "
                                 f"within {timeout:.0f} s: {t.get('retries')}, {t.get('retry_delay')}")
        time.sleep(1)


def s3_client(st: AirflowStack) -> Any:
    """A client of the stack's S3 itself (never through the fault proxy)."""
    import boto3

    return boto3.client("s3", endpoint_url=st.s3_endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def staging_left(st: AirflowStack, prefix: str, timeout: float = 300) -> list[str]:
    """Staging keys under ``prefix`` once no run of the DAG is queued or running. The scheduler starts a
    scheduled run when the clock turns an hour, with the configuration of the moment: it stages that window
    under the same prefix and removes it at its own cleanup (seen once: a run of 19:00 started at 20:00)."""
    deadline = time.monotonic() + timeout
    while st.runs(DAG_ID, state=["queued", "running"]) and time.monotonic() < deadline:
        time.sleep(2)
    return s3_keys(st, prefix)


def s3_keys(st: AirflowStack, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3_client(st).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def s3_get(st: AirflowStack, key: str) -> bytes:
    return s3_client(st).get_object(Bucket=BUCKET, Key=key)["Body"].read()


def run_docs(client: Any, prefix: str, first: int, last: int) -> int:
    """Run documents (one per instance-window) of windows ``first`` … ``last``."""
    return hourly_windows.run_docs(client, "elasticsearch", prefix, window(first), window(last + 1))


def window(k: int) -> datetime:
    return FIRST + timedelta(hours=k)


def expect(want: dict[str, list[int]], k: int) -> dict[str, int]:
    return {i: want[i][k] for i in INSTANCES}


_TRIGGERS = itertools.count(1)


def trigger(st: AirflowStack, k: int, name: str) -> str:
    """A manual run of window k; its logical date a few seconds past the window's end (a new second per run),
    so it never collides with the backfill's run of that hour nor with another test's run of the window."""
    start = window(k)
    return st.trigger(DAG_ID, start + timedelta(hours=1, seconds=next(_TRIGGERS)),
                      run_id=f"{name}_{uuid.uuid4().hex[:6]}", data_interval=(start, start + timedelta(hours=1)))


def wait_ti(st: AirflowStack, run_id: str, task_id: str, states: set[str], timeout: float = 300,
            need: Any = None) -> dict[str, Any]:
    """The first task instance of ``task_id`` in one of ``states`` (and passing ``need``)."""
    deadline = time.monotonic() + timeout
    while True:
        for ti in st.task_instances(DAG_ID, run_id):
            if ti["task_id"] == task_id and ti["state"] in states and (need is None or need(ti)):
                return ti
        if time.monotonic() >= deadline:
            tis = ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}@{t['hostname']}"
                            for t in st.task_instances(DAG_ID, run_id))
            raise AssertionError(f"no {task_id} in {states} after {timeout:.0f} s: {tis}")
        time.sleep(0.3)


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def worker_of(st: AirflowStack, hostname: str) -> str:
    [name] = [w for w in st.workers if st.hostname_of(w) == hostname]
    return name


def kill_worker_running(st: AirflowStack, ti: dict[str, Any]) -> str:
    """``kill -9`` the worker (celery main process, pool, task supervisors and tasks) that runs ``ti``, then
    start it again (it comes back empty, like a replaced machine); returns the worker's name."""
    name = worker_of(st, ti["hostname"])
    pids = st.kill_component(name)
    assert len(pids) >= 3, pids          # main process, pool children, the task's supervisor and process
    st.start_component(name)
    return name


def xcom_values(st: AirflowStack, run_id: str, task_id: str) -> list[Any]:
    """The return values of every (mapped) instance of ``task_id`` in the run, by map index."""
    return [st.xcom(DAG_ID, run_id, task_id, ti["map_index"]) for ti in st.task_instances(DAG_ID, run_id)
            if ti["task_id"] == task_id]


def task_logs(st: AirflowStack, run_id: str, task_id: str) -> str:
    """Every try's log of every instance of ``task_id`` in the run (from the remote logs, as the UI shows)."""
    parts = []
    for ti in st.task_instances(DAG_ID, run_id):
        if ti["task_id"] == task_id:
            for n in range(1, ti["try_number"] + 1):
                parts.append(st.task_log(DAG_ID, run_id, task_id, try_number=n, map_index=ti["map_index"]))
    return "\n".join(parts)


def task_logs_with(st: AirflowStack, run_id: str, task_ids: tuple[str, ...], needle: str,
                   timeout: float = 60) -> str:
    """The logs of ``task_ids`` once ``needle`` is in them (or after ``timeout``: the caller's assertion then
    shows them). A try's log reaches the remote logs when its worker's supervisor uploads it, which can be
    after the run is already over; until then the API answers with the worker's unreachable served logs."""
    deadline = time.monotonic() + timeout
    while True:
        log = "\n".join(task_logs(st, run_id, t) for t in task_ids)
        if needle in log or time.monotonic() >= deadline:
            return log
        time.sleep(2)


def tries(st: AirflowStack, run_id: str, task_id: str) -> list[int]:
    return sorted(ti["try_number"] for ti in st.task_instances(DAG_ID, run_id) if ti["task_id"] == task_id)


def assert_window_exact(st: AirflowStack, run_id: str, client: Any, prefix: str, k: int,
                        want: dict[str, list[int]]) -> dict[str, Any]:
    """The run succeeded, window k holds documents == entries per instance, and the summary's books balance;
    returns the summary's stats."""
    state = st.wait_run(DAG_ID, run_id, timeout=600)
    instances = st.task_instances(DAG_ID, run_id)
    tis = ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}/{t['try_number']}" for t in instances)
    if state != "success":      # the failed tries' log tails: the cause, not only the states
        tails = [f"--- {t['task_id']}[{t['map_index']}] try {t['try_number']}:\n" + "\n".join(
                 st.task_log(DAG_ID, run_id, t["task_id"], try_number=t["try_number"],
                             map_index=t["map_index"]).splitlines()[-25:])
                 for t in instances if t["state"] == "failed"]
        tis += "\n" + "\n".join(tails)
    assert state == "success", tis
    assert window_counts(client, "elasticsearch", prefix, window(k), INSTANCES) == expect(want, k)
    assert run_docs(client, prefix, k, k) == len(INSTANCES)
    [summary] = xcom_values(st, run_id, "summarize")
    s = summary["stats"]
    total = sum(expect(want, k).values())
    assert s["docs"] == s["indexed"] == s["created"] + s["updated"] == total, s
    assert s["entries"] == s["docs"] + s["incomplete"] and s["incomplete"] == 0, s
    assert s["not_attempted"] == s["failed"] == s["dead_lettered"] == 0, s
    return s


def assert_retried(st: AirflowStack, run_id: str, ti: dict[str, Any], killed: str) -> None:
    """The task instance whose worker was killed ran again (Airflow's retry, after the heartbeat timeout)."""
    same = [t for t in st.task_instances(DAG_ID, run_id) if t["task_id"] == ti["task_id"]]
    [retried] = [t for t in same if t["map_index"] == ti["map_index"]]
    assert retried["try_number"] >= 2, (killed, same)


def test_six_hour_backfill_on_two_celery_workers(stack, logs, want, es_url) -> None:  # noqa: F811
    prefix = f"cel-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", es_url)
    write_config(stack, prefix, "elasticsearch_celery")
    try:
        t0 = time.monotonic()
        stack.backfill(DAG_ID, window(0), window(HOURS - 1))
        runs = stack.wait_backfill(DAG_ID, timeout=900)
        took = time.monotonic() - t0
        assert [r["state"] for r in runs] == ["success"] * HOURS, runs
        assert sorted(_dt(r["data_interval_start"]) for r in runs) == [window(k) for k in range(HOURS)]
        for k in range(HOURS):
            assert window_counts(client, "elasticsearch", prefix, window(k), INSTANCES) == expect(want, k), k
        total = sum(sum(v) for v in want.values())
        assert count(client, "elasticsearch", f"{prefix}-mysql-*,{prefix}-postgres-*") == total
        assert run_docs(client, prefix, 0, HOURS - 1) == HOURS * len(INSTANCES)
        assert count(client, "elasticsearch", f"{prefix}-history-*") > 0
        # mapped task instances ran on both workers, and only on them
        tis = [ti for r in runs for ti in stack.task_instances(DAG_ID, r["dag_run_id"])]
        mapped = [ti for ti in tis if ti["map_index"] >= 0]
        assert {ti["task_id"] for ti in mapped} == {"stage", "index"}
        hosts = {ti["hostname"] for ti in mapped}
        assert hosts == {stack.hostname_of(w) for w in stack.workers}, hosts
        assert {ti["state"] for ti in tis} == {"success"}
        # every rotated raw file archived on S3 under its RDS name (the current file once it is rotated);
        # the windows' staging removed by cleanup
        archived = {k.removeprefix("archive/") for k in s3_keys(stack, "archive/")}
        rotated = {f"{inst}/{p.parent.name}/{p.name}.gz" for inst, fs in logs["files"].items() for p in fs
                   if p.name[-1:].isdigit()}
        assert archived == rotated and len(rotated) == 2 * HOURS - 1, sorted(archived)
        assert staging_left(stack, f"staging/{DAG_ID}/") == []
        print(f"\n6-hour backfill on 2 celery workers: {took:.0f} s for {len(tis)} task instances "
              f"({sum(1 for t in mapped if t['task_id'] == 'stage')} stage, "
              f"{sum(1 for t in mapped if t['task_id'] == 'index')} index), {total} documents")
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_worker_killed_while_staging(stack, emulator, want, es_url) -> None:  # noqa: F811
    prefix = f"cel-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", es_url)
    write_config(stack, prefix, "elasticsearch_celery")
    # slow downloads (portions of 4 KiB, 0.3 s each) so the stage task is caught mid-download
    f = emulator.faults
    f.complete_file_denied, f.truncate, f.slow = 1, 4096, 0.3
    try:
        k = 1
        seen = len(emulator.calls)
        run_id = trigger(stack, k, "killstage")
        ti = wait_ti(stack, run_id, "stage", {"running"}, need=lambda t: bool(t["hostname"]))
        # which instance it stages: its mapped input, the list task's spec at its map index
        specs = stack.xcom(DAG_ID, run_id, "list_files")
        inst = specs[ti["map_index"]]["instance"]
        deadline = time.monotonic() + 120    # kill once its download is under way
        while not [c for c in emulator.calls[seen:]
                   if c.action == "DownloadDBLogFilePortion" and c.instance == inst]:
            assert time.monotonic() < deadline, "the stage task never downloaded"
            time.sleep(0.1)
        killed = kill_worker_running(stack, ti)
        f.complete_file_denied, f.truncate, f.slow = 0, 0, 0.0
        assert_window_exact(stack, run_id, client, prefix, k, want)
        assert_retried(stack, run_id, ti, killed)
    finally:
        f.complete_file_denied, f.truncate, f.slow = 0, 0, 0.0
        delete_indices(client, "elasticsearch", prefix)


def test_worker_killed_while_indexing(stack, want, es_url) -> None:  # noqa: F811
    from rds_slowlog.testing.fault_proxy import FaultProxy

    prefix = f"cel-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", es_url)
    proxy = FaultProxy(es_url)
    proxy.bulk_delay = 0.5                   # slow bulk requests: the worker is killed while it sends them
    u = urlsplit(es_url)
    stack.set_connection("elasticsearch_celery_proxy", "elasticsearch", host="127.0.0.1", port=proxy.listen_port,
                         schema="http", login=u.username, password=u.password)
    write_config(stack, prefix, "elasticsearch_celery_proxy",
                 knobs={"chunk_size": 20, "chunks_per_index_task": 2, "batch_size": 5, "max_workers": 1})
    try:
        k = 2
        run_id = trigger(stack, k, "killindex")
        wait_ti(stack, run_id, "index", {"running"})
        deadline = time.monotonic() + 60
        while len(proxy.bulk_ids) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proxy.bulk_ids, "no bulk request reached the search engine"
        # an index task that is sending bulk requests right now (each is held 0.5 s, a task sends ~10)
        ti = wait_ti(stack, run_id, "index", {"running"}, need=lambda t: bool(t["hostname"]), timeout=30)
        killed = kill_worker_running(stack, ti)
        proxy.bulk_delay = 0.0
        assert_window_exact(stack, run_id, client, prefix, k, want)
        assert_retried(stack, run_id, ti, killed)
    finally:
        proxy.close()
        delete_indices(client, "elasticsearch", prefix)


def test_scheduler_restarted_mid_backfill(stack, want, es_url) -> None:  # noqa: F811
    prefix = f"cel-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", es_url)
    write_config(stack, prefix, "elasticsearch_celery")
    try:
        # the two windows' runs exist (test 1): "completed" re-runs them in place, into the new prefix
        created = datetime.now(timezone.utc)
        bf = stack.backfill(DAG_ID, window(3), window(4), reprocess_behavior="completed", wait_previous=180)
        run_ids = [r["dag_run_id"] for r in stack.runs(DAG_ID, run_type="backfill")
                   if r["data_interval_start"] and _dt(r["data_interval_start"]) in (window(3), window(4))]
        assert len(run_ids) == 2, run_ids
        # restart once the backfill is under way: a stage task of this backfill finished, much still to do
        deadline = time.monotonic() + 300
        done: list[dict[str, Any]] = []
        while not done and time.monotonic() < deadline:
            done = [t for r in run_ids for t in stack.task_instances(DAG_ID, r)
                    if t["task_id"] == "stage" and t["state"] == "success" and _dt(t["start_date"]) > created]
            time.sleep(0.5)
        assert done, "the backfill never got going"
        old = stack.procs["scheduler"].pid
        stack.restart_component("scheduler")
        assert stack.procs["scheduler"].pid != old
        runs = stack.wait_backfill(DAG_ID, timeout=900, backfill_id=int(bf["id"]))
        assert [r["state"] for r in runs] == ["success", "success"], runs
        for k in (3, 4):
            assert window_counts(client, "elasticsearch", prefix, window(k), INSTANCES) == expect(want, k), k
        assert run_docs(client, prefix, 3, 4) == 2 * len(INSTANCES)
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_search_engine_stopped_and_restarted_mid_run(stack, want, private_es) -> None:
    from rds_slowlog.testing.fault_proxy import FaultProxy

    srv = private_es.result(timeout=600)
    prefix = f"cel-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", srv.url)
    # the proxy only slows bulk requests down, so the server is stopped while an index task sends them
    proxy = FaultProxy(srv.url)
    proxy.bulk_delay = 0.5
    stack.set_connection("elasticsearch_celery_private", "elasticsearch", host="127.0.0.1",
                         port=proxy.listen_port, schema="http", login=srv.username, password=srv.password)
    # the indexer gives up fast on a dead server: Airflow's retries (5 s, 10 s, 20 s, 40 s) ride out the outage
    write_config(stack, prefix, "elasticsearch_celery_private",
                 knobs={"chunk_size": 20, "chunks_per_index_task": 2, "batch_size": 5, "max_workers": 1,
                        "es_retry_count": 1, "es_timeout": 10})
    try:
        k = 5
        run_id = trigger(stack, k, "esdown")
        wait_ti(stack, run_id, "index", {"running"})
        deadline = time.monotonic() + 60
        while not proxy.bulk_ids and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proxy.bulk_ids, "no bulk request reached the search engine"
        t_stop = time.monotonic()
        srv.stop()                                   # the server process, SIGTERM (SIGKILL after 60 s)
        assert srv.pid(0) is None
        proxy.bulk_delay = 0.0
        # the outage reaches the index tasks: they fail and wait for their retry
        wait_ti(stack, run_id, "index", {"up_for_retry", "failed"}, timeout=240)
        down_for = time.monotonic() - t_stop
        srv.start()                                  # same data dir and port: a real restart
        assert stack.wait_run(DAG_ID, run_id, timeout=600) == "success"
        idx = [t for t in stack.task_instances(DAG_ID, run_id) if t["task_id"] == "index"]
        assert max(t["try_number"] for t in idx) >= 2, idx
        assert window_counts(client, "elasticsearch", prefix, window(k), INSTANCES) == expect(want, k)
        assert run_docs(client, prefix, k, k) == len(INSTANCES)
        print(f"\nElasticsearch stopped mid-index, down {down_for:.0f} s (until an index task had failed), "
              "restarted; counts exact")
    finally:
        proxy.close()
        delete_indices(client, "elasticsearch", prefix)


# ------------------------------------------------------------------------------------------ data-path faults
# Each fault in its own run of one window, armed on the RDS emulator or on a fault proxy before the run and
# firing at an exact point of the traffic: the run must end with documents == entries per instance, books
# that balance, and the retries that got it there visible in the task instances and their logs.

CHUNK = r"/chunk-\d+\.ndjson\.gz$"
FAULTY_AWS = "aws_faulty_s3"


@pytest.fixture(scope="module")
def s3_proxy(stack, emulator):
    """A fault proxy in front of the stack's S3 (moto), and an ``aws`` connection whose S3 goes through it (RDS
    still at the emulator): the fault tests stage and archive through it; task logs and the other tests do not."""
    from rds_slowlog.testing.fault_proxy import FaultProxy

    with FaultProxy(stack.s3_endpoint_url, flavor="s3") as proxy:
        stack.set_connection(FAULTY_AWS, "aws", login="testing", password="testing", extra={
            "region_name": "us-east-1",
            "service_config": {"rds": {"endpoint_url": emulator.endpoint_url},
                               "s3": {"endpoint_url": proxy.endpoint_url}}})
        yield proxy


@pytest.fixture
def fresh(emulator, s3_proxy):
    """Faults off before and after each test (the emulator and the proxy are shared by the module)."""
    from rds_slowlog.testing.rds_emulator import Faults

    emulator.faults = Faults()
    s3_proxy.heal()
    yield
    emulator.faults = Faults()
    s3_proxy.heal()


def faulty_root() -> tuple[str, str]:
    """``(s3_root, key)``: a test's own staging/archive root on S3 through the fault proxy."""
    key = f"faults-{uuid.uuid4().hex[:8]}"
    return f"s3://{FAULTY_AWS}@{BUCKET}/{key}", key


def test_rds_throttling_and_an_early_end_of_data(stack, emulator, logs, want, es_url, fresh) -> None:  # noqa: F811
    """Every 3rd RDS call throttled, ``AdditionalDataPending=false`` long before the end of each file, and once
    RDS claiming the end outright (no data, pending false) for one instance's file until the walk gives up;
    the complete-file endpoint is denied, so everything goes through the portion API. The early ``false`` is
    read past (the listed size says there is more); the outright stop is a download that ended short, which
    fails that stage task before its manifest commits, and Airflow's retry — on whichever worker — reads the
    file whole."""
    from rds_slowlog.testing.rds_emulator import Faults

    longest = max(len(line) for fs in logs["files"].values() for p in fs
                  for line in p.read_bytes().splitlines(keepends=True))
    mysql = next(i for i, (_, e) in INSTANCES.items() if e == "mysql")
    prefix = f"cel-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", es_url)
    write_config(stack, prefix, "elasticsearch_celery", retries=2, retry_delay_seconds=2)
    emulator.faults = Faults(throttle_every=3, early_pending_false=0.3, stop_short=5, stop_short_instance=mysql,
                             complete_file_denied=1, truncate=max(2048, longest + 1))
    emulator.reset_calls()
    try:
        k = 0
        run_id = trigger(stack, k, "rdsfaults")
        assert_window_exact(stack, run_id, client, prefix, k, want)
        assert emulator.count(error="Throttling") >= 3
        assert emulator.faults.stop_short == 0
        downloads = [d for v in xcom_values(stack, run_id, "stage") for d in v["downloads"]]
        assert downloads and all(d["method"] == "portions" and d["complete"] and not d["losses"]
                                 for d in downloads), downloads
        assert emulator.count("DownloadCompleteDBLogFile", error="AccessDenied") >= len(downloads)
        early = [c for c in emulator.calls if c.action == "DownloadDBLogFilePortion" and c.status == 200
                 and c.pending is False and c.data_bytes
                 and int(c.marker.split(":")[1]) < emulator.path(c.instance, c.log_file).stat().st_size]
        assert len(early) >= len(downloads)
        # the MySQL stage task failed on the short download and succeeded on its retry; the other never failed
        assert tries(stack, run_id, "stage") == [1, 2]
        log = task_logs_with(stack, run_id, ("stage",), "was read only in part")
        assert "was read only in part" in log and "RDS stopped returning data before the listed size" in log
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_s3_refusing_and_cutting_requests_for_a_while(stack, emulator, want, es_url, s3_proxy, fresh) -> None:  # noqa: F811
    """S3 behind the proxy: chunk uploads answered by a dropped connection (the object was stored, the answer
    lost), the port refusing connections for 20 s from the first manifest commit (a stage task fails and is
    retried) and again for 20 s from the first chunk read (an index task fails and is retried), and chunk
    downloads cut in the middle of the body (botocore/s3fs retry them)."""
    proxy = s3_proxy
    cut_puts = proxy.arm("cut", count=3, method="PUT", path=CHUNK)
    refuse_stage = proxy.arm("refuse", seconds=20, method="PUT", path=r"/manifest\.json$")
    refuse_index = proxy.arm("refuse", seconds=20, method="GET", path=CHUNK)
    cut_gets = proxy.arm("cut", count=2, method="GET", path=CHUNK)
    prefix = f"cel-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", es_url)
    root, key = faulty_root()
    write_config(stack, prefix, "elasticsearch_celery", s3_root=root, retries=6, retry_delay_seconds=2)
    try:
        k = 1
        run_id = trigger(stack, k, "s3faults")
        assert_window_exact(stack, run_id, client, prefix, k, want)
        assert cut_puts.hits == 3 and cut_gets.hits == 2
        assert refuse_stage.started is not None and refuse_index.started is not None
        # every refused request is one of the two faults' (two workers can both reach the port as it closes,
        # or on a connection opened before: a fault may refuse more than one)
        assert refuse_stage.hits >= 1 and refuse_index.hits >= 1
        assert proxy.count("refuse") == refuse_stage.hits + refuse_index.hits and proxy.count("cut") == 5
        assert max(tries(stack, run_id, "stage")) >= 2 and max(tries(stack, run_id, "index")) >= 2
        assert "Could not connect to the endpoint URL" in task_logs_with(
            stack, run_id, ("stage", "index"), "Could not connect to the endpoint URL")
        # the raw archive was written through the same faults: every rotated file the window read, whole
        stages = xcom_values(stack, run_id, "stage")
        rotated = {f"{v['instance']}/{f}.gz" for v in stages for f in v["files"] if f[-1:].isdigit()}
        archived = {a.removeprefix(f"{key}/archive/"): a for a in s3_keys(stack, f"{key}/archive/")}
        assert rotated and set(archived) == rotated, (sorted(archived), sorted(rotated))
        for name, obj in archived.items():
            inst, log_file = name.split("/", 1)
            body = gzip.decompress(s3_get(stack, obj))
            assert body == emulator.path(inst, log_file[:-3]).read_bytes(), name
        assert staging_left(stack, f"{key}/staging/") == []
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_a_chunk_corrupted_on_s3_is_refused_and_staged_again(stack, want, es_url, s3_proxy, fresh) -> None:  # noqa: F811
    """Right after the first stage task commits its manifest, its first chunk is overwritten on S3 with the
    same length of different bytes. The index task refuses it by its sha256, stages the window again into a
    scratch prefix, gets the identical chunk (same sha256, same ids), puts it back and indexes it: the run
    ends exact without a retry, and nothing was indexed from the corrupted object."""
    corrupted: list[str] = []

    def corrupt(method: str, path: str) -> None:
        obj = path.split("?", 1)[0].lstrip("/").split("/", 1)[1].rsplit("/", 1)[0] + "/chunk-00000.ndjson.gz"
        body = bytearray(s3_get(stack, obj))
        mid = len(body) // 2
        body[mid:mid + 16] = bytes(b ^ 0xFF for b in body[mid:mid + 16])
        s3_client(stack).put_object(Bucket=BUCKET, Key=obj, Body=bytes(body))
        corrupted.append(obj)

    hook = s3_proxy.arm("call", count=1, method="PUT", path=r"/manifest\.json$", action=corrupt)
    prefix = f"cel-{uuid.uuid4().hex[:8]}"
    client = make_client("elasticsearch", es_url)
    root, _ = faulty_root()
    write_config(stack, prefix, "elasticsearch_celery", s3_root=root, retries=0)
    try:
        k = 2
        run_id = trigger(stack, k, "corrupt")
        s = assert_window_exact(stack, run_id, client, prefix, k, want)
        assert hook.hits == 1 and len(corrupted) == 1
        assert s["created"] == s["docs"] and s["updated"] == 0     # the repaired chunk was never indexed before
        assert set(tries(stack, run_id, "index")) == {1}
        log = task_logs_with(stack, run_id, ("index",), "staged chunk-00000.ndjson.gz again")
        assert "does not match its manifest (sha256 differs)" in log
        assert "staged chunk-00000.ndjson.gz again" in log and "as in the manifest" in log
        # the scratch prefix is gone with the window's staging
        assert s3_keys(stack, corrupted[0].rsplit("/", 1)[0]) == []
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_a_two_node_cluster_losing_a_node_mid_index(stack, want) -> None:
    """The search engine as two Elasticsearch processes on loopback, the indices made with one replica
    (``search.replicas: 1``). The DAG talks to node 0 through an Elasticsearch fault proxy, which SIGKILLs
    node 1 (a data node holding copies) when the 4th bulk request of the run arrives: the cluster goes yellow,
    copies on node 1 are promoted on node 0, and the run still ends with every document there exactly once."""
    from rds_slowlog.search import raw_request
    from rds_slowlog.testing.fault_proxy import FaultProxy
    from rds_slowlog.testing.search_server import SearchServer

    prefix = f"cel-{uuid.uuid4().hex[:8]}"
    with SearchServer("elasticsearch", nodes=2) as srv:
        cluster = make_client("elasticsearch", srv.url)
        proxy = FaultProxy(srv.node_urls[0].replace(f"{srv.username}:{srv.password}@", ""))
        killed: list[int] = []
        green: list[str] = []

        def kill_node_1(method: str, path: str) -> None:
            # Only once every copy is in sync: a replica still recovering from node 1 is not a copy, and losing
            # the only in-sync one leaves the index red until that node returns (ES's rule, not ours to test).
            _, health = raw_request(cluster, "elasticsearch", "GET", f"/_cluster/health/{prefix}-*",
                                    params={"wait_for_status": "green", "timeout": "45s"})
            green.append(health.get("status"))
            srv.kill_node(1)
            killed.append(len(proxy.bulk_ids))

        hook = proxy.arm("call", count=1, after=3, path=r"/_bulk", action=kill_node_1)
        stack.set_connection("elasticsearch_cluster", "elasticsearch", host="127.0.0.1", port=proxy.listen_port,
                             schema="http", login=srv.username, password=srv.password)
        write_config(stack, prefix, "elasticsearch_cluster", retries=3, retry_delay_seconds=2,
                     search={"kind": "elasticsearch", "conn_id": "elasticsearch_cluster", "replicas": 1},
                     knobs={"chunk_size": 10, "batch_size": 5, "chunks_per_index_task": 2})
        try:
            _, health = raw_request(cluster, "elasticsearch", "GET", "/_cluster/health")
            assert health["number_of_nodes"] == 2
            k = 3
            run_id = trigger(stack, k, "twonode")
            assert_window_exact(stack, run_id, cluster, prefix, k, want)
            assert hook.hits == 1 and killed and srv.pid(1) is None and green == ["green"], green
            assert len(proxy.bulk_ids) > killed[0] + 3          # indexing went on after the node died
            _, health = raw_request(cluster, "elasticsearch", "GET", "/_cluster/health")
            assert health["number_of_nodes"] == 1 and health["status"] == "yellow", health
            _, settings = raw_request(cluster, "elasticsearch", "GET", f"/{prefix}-mysql-*/_settings")
            assert {v["settings"]["index"]["number_of_replicas"] for v in settings.values()} == {"1"}
        finally:
            proxy.close()


def test_stop_leaves_no_process_behind(stack) -> None:
    """Last: stopping the Celery stack ends every process of it — workers, their pools and task processes,
    redis, moto — and frees the broker's and S3's ports (the fixture's own stop is then a no-op)."""
    from rds_slowlog.testing.airflow_stack import find_stack_processes

    pids = {name: p.pid for name, p in stack.procs.items()}
    assert set(stack.workers) <= set(pids) and {"redis", "moto"} <= set(pids)
    ports = [urlsplit(stack.s3_endpoint_url).port, urlsplit(stack.airflow_env["AIRFLOW__CELERY__BROKER_URL"]).port]
    stack.stop()
    assert find_stack_processes(stack.home) == []
    for port in ports:
        with pytest.raises(OSError):
            socket_connect(port)


def socket_connect(port: int) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
