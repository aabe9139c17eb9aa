"""Load: a 24-window backfill of >= 1.5 GB of real MariaDB and PostgreSQL logs on the CeleryExecutor stack as
MWAA runs it (two workers with no shared disk, s3:// staging and raw archive on moto), index tasks bounded by
the DAG's search pool. Run by ``make test-load`` (deselected from ``make test``: see conftest.py).

The logs: the benchmark logs of ``make bench-logs`` (real MariaDB + sysbench and PostgreSQL + pgbench output at
full verbosity, ~200 MiB each; their size varies with the machine that made them). One pass is ~420 MiB, so
each is replicated ``COPIES`` = 4 times, every copy time-shifted on its own: copy *c* is spread over the 24
hours by ``spread_over_hours(minute=5 + 13c)`` and cut into hours by ``layout_hourly``; hour *k* of the
instance is then copy 0's hour *k*, copy 1's, … (in time order, the copies 13 minutes apart), cut again by
``layout_hourly`` into RDS's rotated files. Copies >= 1 bring the MariaDB start-up banner into the middle of
hour 0, as a ``FLUSH SLOW LOGS`` does on RDS.
Every entry keeps a distinct time, so every document has its own ``_id``; 4 passes, >= 1.5 GB in all.

The anchors: PostgreSQL — the log's ``duration:`` statement/execute lines (``hourly_windows``). MySQL —
pt-query-digest reads ~4 MB/s, ~7 minutes for 850 MiB on a loaded machine, so every window is counted by its
``# Query_time:`` lines (one per entry: MariaDB writes it for every logged statement) and that count is
checked against pt-query-digest (plus the banner rule of ``expected_per_window``) on a sample of windows.

Checked per run of the backfill: all 24 runs succeed; every window's documents == its entries, per instance;
peak RSS of every stage, index, summarize and cleanup task <= 256 MB from the task's own XCom (``peak_rss_mb``:
``ru_maxrss`` of the task process); no document failed or dead-lettered (a 429 the indexer retried and
overcame is counted in ``retries`` and printed, not a failure). Wall time and documents/s are printed.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ for the shared fixtures
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "airflow"))   # hourly_windows
from search_fixtures import make_client  # noqa: E402

from celery_stack import celery_stack, rds_emulator, search_server_in_background  # noqa: E402
from hourly_windows import count, dag_config, expected_per_window, window_counts  # noqa: E402
from rds_slowlog.testing.airflow_stack import AirflowStack  # noqa: E402
from rds_slowlog.testing.logdata import spread_over_hours  # noqa: E402
from rds_slowlog.testing.rds_emulator import layout_hourly  # noqa: E402

pytestmark = [pytest.mark.load, pytest.mark.slow, pytest.mark.timeout(4800)]

BENCH = Path.home() / ".cache" / "rds-slowlog" / "bench"
HOURS = 24
COPIES = 4
MIN_BYTES = 1_500_000_000
RSS_LIMIT_MB = 256.0
POOL_SLOTS = 2
NOW_HOUR = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
# the logs cover [H-25, H-1): the backfill's 24 runs; the scheduler's own run of [H-1, H) finds none
FIRST = NOW_HOUR - timedelta(hours=HOURS + 1)
#: instance -> (benchmark log, engine)
INSTANCES = {"load-mariadb": ("mysql-slowquery.log", "mysql"), "load-postgres": ("postgresql.log", "postgres")}
MYSQL = "load-mariadb"
PT_SAMPLE = (0, HOURS // 2)      # windows counted by pt-query-digest too (0 holds the mid-file banners)
BUCKET = "rds-slowlog-load"
DAG_ID = "rds_slowlog_hourly_load"
CONFIG = "rds_slowlog_load.json"


def window(k: int) -> datetime:
    return FIRST + timedelta(hours=k)


def replicated_hourly(root: Path, inst: str, log: Path, engine: str) -> list[Path]:
    """``COPIES`` time-shifted copies of ``log`` over ``HOURS`` hours, as one instance's RDS hourly files."""
    data = log.read_bytes()
    per_copy: list[list[Path]] = []
    for c in range(COPIES):
        src = root / f"{inst}.copy{c}.log"
        src.write_bytes(spread_over_hours(data, engine, FIRST.timestamp(), hours=HOURS, minute=5 + 13 * c))
        per_copy.append(layout_hourly(src, root / f"copy{c}" / inst, engine, current=False))
        src.unlink()
        assert len(per_copy[-1]) == HOURS, (inst, c, per_copy[-1])
    del data
    merged = root / f"{inst}.log"
    with open(merged, "wb") as out:
        for k in range(HOURS):
            for c in range(COPIES):
                with open(per_copy[c][k], "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
                per_copy[c][k].unlink()
    files = layout_hourly(merged, root / "instances" / inst, engine)
    merged.unlink()
    assert len(files) == HOURS, (inst, files)
    return files


def query_time_lines(path: Path) -> int:
    data = path.read_bytes()
    return data.count(b"\n# Query_time: ") + data.startswith(b"# Query_time: ")


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Any]:
    missing = [n for n, _ in INSTANCES.values() if not (BENCH / n).is_file()]
    if missing:
        pytest.fail(f"the benchmark logs are missing ({missing} in {BENCH}): run `make bench-logs` first",
                    pytrace=False)
    root = tmp_path_factory.mktemp("load-rds")
    t0 = time.monotonic()
    files = {inst: replicated_hourly(root, inst, BENCH / name, engine) for inst, (name, engine) in INSTANCES.items()}
    size = sum(p.stat().st_size for fs in files.values() for p in fs)
    print(f"\nload logs: {COPIES} copies of {', '.join(n for n, _ in INSTANCES.values())} over {HOURS} h: "
          f"{size / 1e9:.3f} GB ({size / 2**30:.3f} GiB) in {time.monotonic() - t0:.0f} s")
    assert size >= MIN_BYTES, size
    return {"root": root / "instances", "files": files, "instances": INSTANCES, "bytes": size}


@pytest.fixture(scope="module")
def want(logs) -> dict[str, list[int]]:
    """Per instance, per window: entries by the anchor (see the module docstring)."""
    pg = {i: v for i, v in INSTANCES.items() if i != MYSQL}
    out = expected_per_window({"instances": pg, "files": {i: logs["files"][i] for i in pg}})
    out[MYSQL] = [query_time_lines(p) for p in logs["files"][MYSQL]]
    sample = expected_per_window({"instances": {MYSQL: INSTANCES[MYSQL]},
                                  "files": {MYSQL: [logs["files"][MYSQL][k] for k in PT_SAMPLE]}})[MYSQL]
    assert sample == [out[MYSQL][k] for k in PT_SAMPLE], (sample, PT_SAMPLE, out[MYSQL])
    assert all(n > 0 for v in out.values() for n in v), out
    return out


@pytest.fixture(scope="module")
def emulator(logs):
    with rds_emulator(logs) as emu:
        yield emu


@pytest.fixture(scope="module")
def search():
    """A private Elasticsearch: millions of documents and a full-speed bulk load are not for the server other
    test sessions share. Started while the stack starts."""
    with search_server_in_background(heap="1g") as started:
        yield started


@pytest.fixture(scope="module")
def stack(tmp_path_factory, emulator, search):
    def connection() -> tuple[str, str, str | None, str | None]:
        srv = search.result(timeout=600)
        return "elasticsearch_load", srv.url, srv.username, srv.password

    with celery_stack(tmp_path_factory.mktemp("load-stack"), emulator, bucket=BUCKET, dag_id=DAG_ID,
                      search=connection, write_config=lambda st: write_config(st, f"load-boot-{uuid.uuid4().hex[:8]}"),
                      pool_slots=POOL_SLOTS, timeout=600) as st:
        yield st


def write_config(st: AirflowStack, prefix: str) -> None:
    """s3:// staging and archive on moto; 48 h of RDS retention so the oldest of the 24 windows is in it."""
    cfg = dag_config(INSTANCES, prefix, f"s3://aws_default@{BUCKET}/staging", "elasticsearch_load", "aws_default",
                     instance_extra={"archive": f"s3://aws_default@{BUCKET}/archive"},
                     knobs={"chunks_per_index_task": 8}, retries=4, retry_delay_seconds=10,
                     rds_retention_hours=48, max_active_runs=3)
    path = st.dags_folder / CONFIG
    tmp = path.with_name(f".{CONFIG}.tmp")
    tmp.write_text(json.dumps(cfg))
    tmp.replace(path)


def own_peak_rss(task_id: str, value: Any) -> float | None:
    """The task's own peak RSS from its XCom: stage -> stats, index -> the stats themselves, summarize and
    cleanup -> top level (summarize's ``stats.peak_rss_mb`` is the stage tasks' maximum, not its own)."""
    if task_id == "stage":
        return value["stats"]["peak_rss_mb"]
    if task_id in ("index", "summarize", "cleanup"):
        return value["peak_rss_mb"]
    return None


def test_24_window_backfill_of_1_5_gb(stack, logs, want, search) -> None:
    import boto3

    srv = search.result(timeout=600)
    client = make_client("elasticsearch", srv.url)
    prefix = f"load-{uuid.uuid4().hex[:8]}"
    write_config(stack, prefix)
    total = sum(sum(v) for v in want.values())

    t0 = time.monotonic()
    stack.backfill(DAG_ID, window(0), window(HOURS - 1), max_active_runs=3)
    runs = stack.wait_backfill(DAG_ID, timeout=4200)
    wall = time.monotonic() - t0
    print(f"\nbackfill: {HOURS} windows, {logs['bytes'] / 1e9:.3f} GB, {total} entries, wall {wall:.0f} s, "
          f"{total / wall:.0f} docs/s, {logs['bytes'] / 2**20 / wall:.2f} MiB/s")
    assert [r["state"] for r in runs] == ["success"] * HOURS, runs
    assert sorted(datetime.fromisoformat(r["data_interval_start"].replace("Z", "+00:00")) for r in runs) == \
        [window(k) for k in range(HOURS)]

    # every window exact, per instance
    got = {k: window_counts(client, "elasticsearch", prefix, window(k), INSTANCES) for k in range(HOURS)}
    bad = {k: (got[k], {i: want[i][k] for i in INSTANCES}) for k in range(HOURS)
           if got[k] != {i: want[i][k] for i in INSTANCES}}
    assert not bad, bad
    assert count(client, "elasticsearch", f"{prefix}-mysql-*,{prefix}-postgres-*") == total

    # every task succeeded; its own peak RSS and the indexing books, from its XCom
    peaks: dict[str, list[tuple[float, str]]] = {}
    starts: dict[str, list[float]] = {}          # RSS at the task's start: pages shared with the worker
    detail: dict[str, str] = {}
    hosts: set[str] = set()
    summary = {"docs": 0, "indexed": 0, "failed": 0, "dead_lettered": 0, "not_attempted": 0, "retries": 0}
    n_tis = 0
    for r in runs:
        for ti in stack.task_instances(DAG_ID, r["dag_run_id"]):
            n_tis += 1
            assert ti["state"] == "success", ti
            if ti["map_index"] >= 0:
                hosts.add(ti["hostname"])
            if ti["task_id"] not in ("stage", "index", "summarize", "cleanup"):
                continue
            value = stack.xcom(DAG_ID, r["dag_run_id"], ti["task_id"], ti["map_index"])
            peak = own_peak_rss(ti["task_id"], value)
            where = f"{r['dag_run_id']}:{ti['map_index']}"
            peaks.setdefault(ti["task_id"], []).append((float(peak or 0), where))
            if ti["task_id"] in ("stage", "index"):
                starts.setdefault(ti["task_id"], []).append(float(value.get("start_rss_mb") or 0))
                if ti["task_id"] == "stage":
                    detail[where] = (f"start {value.get('start_rss_mb')} MB, {value['stats']['bytes'] >> 20} MiB "
                                     f"read, {value['stats']['docs']} docs, files {value['files']}")
            if ti["task_id"] == "index":
                assert value["failed"] == 0 and value["dead_lettered"] == 0, value
            if ti["task_id"] == "summarize":
                for key in summary:
                    summary[key] += value["stats"][key]
    for task, xs in sorted(peaks.items()):
        top, where = max(xs)
        at_start = sorted(starts.get(task, []))
        print(f"  {task:<10} {len(xs):>4} task instances, peak RSS max {top:.0f} MB ({where}), "
              f"median {sorted(x for x, _ in xs)[len(xs) // 2]:.0f} MB, "
              f"{sum(1 for x, _ in xs if x > RSS_LIMIT_MB)} over {RSS_LIMIT_MB:.0f} MB"
              + (f"; RSS at start median {at_start[len(at_start) // 2]:.0f} MB" if at_start else ""))
    for peak, where in sorted(peaks.get("stage", []), reverse=True)[:5]:
        print(f"  stage peak {peak:.0f} MB at {where}: {detail.get(where)}")
    print(f"  {n_tis} task instances on {sorted(hosts)}; pool {POOL_SLOTS} slots; indexing books {summary}")
    assert set(peaks) == {"stage", "index", "summarize", "cleanup"}, set(peaks)
    unmeasured = {t: [w for x, w in xs if x <= 0] for t, xs in peaks.items()}
    assert not any(unmeasured.values()), f"tasks without their own peak RSS: {unmeasured}"
    # the books before the memory bound, so a run that breaks the bound still proves nothing was lost
    assert summary["docs"] == summary["indexed"] == total, summary
    assert summary["failed"] == summary["dead_lettered"] == summary["not_attempted"] == 0, summary
    s3 = boto3.client("s3", endpoint_url=stack.s3_endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    assert not [k for k in keys if k.endswith(".deadletter.ndjson")], keys
    assert len(hosts) == 2, hosts
    over = {t: sorted(((x, w) for x, w in xs if x > RSS_LIMIT_MB), reverse=True) for t, xs in peaks.items()}
    assert not any(over.values()), {t: (len(xs), xs[:5]) for t, xs in over.items() if xs}
