#!/usr/bin/env python3
"""``make demo``: the product end to end on the bundled sample logs, on this machine.

1. a real Elasticsearch (``scripts/search-engine.sh``; reused when one is running);
2. the bundled real MariaDB and PostgreSQL logs moved into the three hours before the latest complete one
   and laid out as RDS's hourly rotated files, served by the RDS API emulator (real boto3 talks to it);
3. a local Airflow stack (api-server, scheduler, dag-processor, triggerer; LocalExecutor on a private
   PostgreSQL) with the project's DAG and a configuration for the two demo instances;
4. a backfill of the three windows (the scheduler also runs the latest one by itself), then per window the
   DAG's stats and the top query classes read back from the index, and the UI's address and login.

Everything stays up until ``make demo-down`` (``scripts/demo.py down``). State lives in
``~/.cache/rds-slowlog/demo``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from rds_slowlog.search import build_client, raw_request  # noqa: E402
from rds_slowlog.testing.airflow_stack import AirflowStack  # noqa: E402
from rds_slowlog.testing.logdata import spread_over_hours  # noqa: E402
from rds_slowlog.testing.rds_emulator import layout_hourly  # noqa: E402

HOME = Path(os.environ.get("RDS_SLOWLOG_DEMO_HOME", "~/.cache/rds-slowlog/demo")).expanduser()
SAMPLES = ROOT / "include" / "sample_logs"
INSTANCES = {"demo-mariadb": ("mariadb-slowquery.log", "mysql"), "demo-postgres": ("postgresql.log", "postgres")}
DAG_ID = "rds_slowlog_hourly"
PREFIX = "rds-slowlog-demo"
EMULATOR_PORT = int(os.environ.get("RDS_SLOWLOG_DEMO_EMULATOR_PORT", "5510"))
AIRFLOW_PORT = int(os.environ.get("RDS_SLOWLOG_DEMO_AIRFLOW_PORT", "8080"))
OWN_SEARCH_ENGINE = HOME / "started-search-engine"   # the demo started the Elasticsearch it uses


def say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def search_engine() -> str:
    """The demo's Elasticsearch: a running one is reused (and left running by ``down``), else one is started."""
    script = str(ROOT / "scripts" / "search-engine.sh")
    if subprocess.run([script, "status", "elasticsearch"], capture_output=True, timeout=60).returncode != 0:
        HOME.mkdir(parents=True, exist_ok=True)
        OWN_SEARCH_ENGINE.touch()
    out = subprocess.run([script, "start", "elasticsearch"], check=True,
                         capture_output=True, text=True, timeout=900).stdout
    return next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("ES_URL="))


def lay_out_logs(first: datetime) -> Path:
    root = HOME / "rds"
    shutil.rmtree(root, ignore_errors=True)
    for inst, (name, engine) in INSTANCES.items():
        src = HOME / f"{inst}.log"
        src.write_bytes(spread_over_hours((SAMPLES / name).read_bytes(), engine, first.timestamp()))
        files = layout_hourly(src, root / inst, engine)
        say(f"{inst}: {', '.join(p.name for p in files)}")
    return root


def start_emulator(root: Path) -> str:
    stop_emulator()
    log = open(HOME / "emulator.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "rds_slowlog.cli", "rds-emulator", "--logs", str(root),
                             "--port", str(EMULATOR_PORT)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT / "include")})
    (HOME / "emulator.pid").write_text(str(proc.pid))
    url = f"http://127.0.0.1:{EMULATOR_PORT}"
    for _ in range(100):
        if b"endpoint_url=" in (HOME / "emulator.log").read_bytes():
            return url
        if proc.poll() is not None:
            raise SystemExit(f"the RDS emulator did not start: {(HOME / 'emulator.log').read_text()[-2000:]}")
        time.sleep(0.1)
    raise SystemExit("the RDS emulator did not start within 10 s")


def stop_emulator() -> None:
    pid_file = HOME / "emulator.pid"
    if pid_file.exists():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError, PermissionError):
            pass
        pid_file.unlink()


def write_dags() -> Path:
    dags = HOME / "dags"
    shutil.rmtree(dags, ignore_errors=True)
    dags.mkdir(parents=True)
    shutil.copy(ROOT / "dags" / "rds_slowlog_hourly.py", dags)
    cfg = json.loads((ROOT / "dags" / "rds_slowlog.json").read_text())
    cfg.update({"index_prefix": PREFIX, "staging": (HOME / "staging").as_uri(), "grace_minutes": 0})
    (dags / "rds_slowlog.json").write_text(json.dumps(cfg, indent=2))
    return dags


def up() -> int:
    HOME.mkdir(parents=True, exist_ok=True)
    now_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    first = now_hour - timedelta(hours=3)
    say("starting Elasticsearch (first time: a download from Maven Central)")
    es_url = search_engine()
    say(f"laying out the sample logs as RDS hourly files for {first:%H:00}-{now_hour:%H:00} UTC")
    emulator = start_emulator(lay_out_logs(first))
    say(f"RDS API emulator at {emulator}")
    from urllib.parse import urlsplit

    u = urlsplit(es_url)
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "demo", "password": "demo",
                                                "extra": {"endpoint_url": emulator, "region_name": "us-east-1"}}),
        "AIRFLOW_CONN_ELASTICSEARCH_DEFAULT": json.dumps({
            "conn_type": "elasticsearch", "host": u.hostname, "port": u.port, "schema": u.scheme,
            "login": u.username, "password": u.password}),
    }
    if (HOME / "airflow" / "state.json").exists():
        say("stopping the previous demo's Airflow")
        stop_airflow()
    stack = AirflowStack(HOME / "airflow", write_dags(), port=AIRFLOW_PORT, extra_env=env)
    say("starting Airflow (PostgreSQL, db migrate, api-server, scheduler, dag-processor, triggerer)")
    stack.start()
    stack.detach()   # the stack outlives this script, until `make demo-down`
    stack.create_pool("rds_slowlog_search", 4)
    stack.wait_dag(DAG_ID, timeout=300)
    client = build_client("elasticsearch", es_url)
    raw_request(client, "elasticsearch", "DELETE", f"/{PREFIX}-*")
    say("backfilling the three sample windows")
    stack.backfill(DAG_ID, first, first + timedelta(hours=2), reprocess_behavior="completed")
    runs = stack.wait_backfill(DAG_ID, timeout=900)
    # the scheduler ran the latest window by itself (catchup=False): report it too
    for r in stack.runs(DAG_ID, run_type="scheduled"):
        stack.wait_run(DAG_ID, r["dag_run_id"], timeout=600)
    runs = sorted({r["dag_run_id"]: stack.run(DAG_ID, r["dag_run_id"])
                   for r in [*runs, *stack.runs(DAG_ID, run_type="scheduled")]}.values(),
                  key=lambda r: r["data_interval_start"])
    report(stack, client, [r["dag_run_id"] for r in runs])
    user, password = stack.login
    print(f"\nAirflow UI: {stack.ui_url}  (login {user} / {password})")
    print(f"Elasticsearch: {u.scheme}://{u.hostname}:{u.port} (user {u.username}), indices {PREFIX}-*")
    print("Everything stays up until: make demo-down")
    return 0 if all(r["state"] == "success" for r in runs) else 1


def report(stack: AirflowStack, client: object, run_ids: list[str]) -> None:
    raw_request(client, "elasticsearch", "POST", f"/{PREFIX}-*/_refresh")
    for run_id in run_ids:
        run = stack.run(DAG_ID, run_id)
        start = run["data_interval_start"]
        end = run["data_interval_end"]
        xcom = stack.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/summarize/xcomEntries/return_value")
        summary = xcom.get("value") if isinstance(xcom, dict) else None
        if isinstance(summary, str):
            summary = json.loads(summary)
        stats = (summary or {}).get("stats", {})
        print(f"\n=== window [{start[:16]}, {end[:16]}) run {run_id}: {run['state']}")
        print("    " + ", ".join(f"{k} {stats.get(k)}" for k in ("entries", "docs", "indexed", "created", "updated",
                                                               "failed", "dead_lettered", "incomplete",
                                                               "quarantined")))
        q = {"size": 0, "query": {"range": {"event.end": {"gte": start, "lt": end}}},
             "aggs": {"classes": {"terms": {"field": "slowlog.query_id", "size": 5,
                                            "order": {"total": "desc"}},
                                  "aggs": {"total": {"sum": {"field": "event.duration"}},
                                           "fp": {"top_hits": {"size": 1, "_source": ["slowlog.fingerprint",
                                                                                      "rds.instance"]}}}}}}
        _, body = raw_request(client, "elasticsearch", "POST", f"/{PREFIX}-mysql-*,{PREFIX}-postgres-*/_search", q,
                              params={"ignore_unavailable": "true"})
        print(f"    docs in the index for the window: {body.get('hits', {}).get('total', {}).get('value')}")
        print(f"    {'query id':<34}{'count':>6}{'total s':>10}  instance        fingerprint")
        for b in body.get("aggregations", {}).get("classes", {}).get("buckets", []):
            src = b["fp"]["hits"]["hits"][0]["_source"]
            print(f"    {b['key']:<34}{b['doc_count']:>6}{b['total']['value'] / 1e9:>10.4f}  "
                  f"{src['rds']['instance']:<15} {src['slowlog']['fingerprint'][:60]}")


def stop_airflow() -> None:
    try:
        AirflowStack.attach(HOME / "airflow").stop()
        say("Airflow stopped")
    except FileNotFoundError:
        pass
    except Exception as e:  # noqa: BLE001 - tell, and go on stopping the rest
        say(f"Airflow: {e}")


def down() -> int:
    stop_airflow()
    stop_emulator()
    say("RDS emulator stopped")
    if OWN_SEARCH_ENGINE.exists():     # only the one the demo started: a reused server is someone else's
        subprocess.run([str(ROOT / "scripts" / "search-engine.sh"), "stop", "elasticsearch"], check=False)
        OWN_SEARCH_ENGINE.unlink()
    else:
        say("Elasticsearch was running before the demo: left running")
    return 0


if __name__ == "__main__":
    sys.exit(down() if sys.argv[1:] == ["down"] else up())
