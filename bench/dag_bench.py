#!/usr/bin/env python3
"""Benchmark: one hourly window of a >= 200 MB real slow log through the REAL scheduler, side by side in one run
with ``rds-slowlog index`` of the same file and a raw ``_bulk`` of the same documents.

What runs, in this order, against the same Elasticsearch (each side into its own index prefix, each side's
indices deleted before the next side starts; first a throwaway raw bulk of ``--warm-up-docs`` documents, so
the first side measured does not pay alone for a JVM that may have just been started):

1. **DAG**: the benchmark MariaDB log (``bench/make_logs.py``: real MariaDB + sysbench) with all its times moved
   into ONE past hour (:func:`~rds_slowlog.testing.logdata.spread_over_hours` with ``hours=1``), laid out as an
   RDS hourly file (:func:`~rds_slowlog.testing.rds_emulator.layout_hourly`), served by the RDS emulator (its own
   process: its CPU is the "RDS" side, not ours), read by the project's ``dags/rds_slowlog_hourly.py`` with a
   configuration of its own under a private :class:`~rds_slowlog.testing.airflow_stack.AirflowStack`
   (PostgreSQL + api-server + scheduler + dag-processor + triggerer, LocalExecutor). After the DAG's own
   scheduled run of the latest hour (``catchup=False`` makes one; it reads no file of ours and is waited for
   first, so it cannot overlap), ONE manual run for the window is triggered and waited for. Task-instance
   timings come from the REST API (queued → start = scheduling/dispatch latency; start → end = the task's
   whole life in its worker process), task bodies from the tasks' own stats XComs and their logs, peak RSS
   per task from sampling ``/proc`` (``VmHWM`` of each task process, and its private memory — the part not
   shared with the LocalExecutor worker it was forked from).
2. **CLI**: ``rds-slowlog index FILE --target ES_URL --index-prefix P --instance <same id> --since H --until
   H+1 --staging DIR`` on the same (moved) file: same entries, same ``_id``\\ s. Wall time and peak RSS of the
   child process; its stdout lines are time-stamped as they arrive, so the stage phase is split off.
3. **raw**: the CLI's staged documents as ready ``_bulk`` bodies (``bench/index_bench.py``'s raw client: one
   keep-alive connection, one request in flight, built before the clock starts, no compression).

Checks (printed): documents in the DAG's index == the DAG's summarize ``indexed`` == the CLI's ``indexed`` ==
the raw side's count. Goals from the issue: the DAG >= 0.8x the CLI's end-to-end throughput; peak RSS of
every task <= 256 MB.

    bench/dag_bench.py [--log FILE] [--limit-mb N] [--pool-slots N] [--chunks-per-index-task N]
                       [--parallelism N] [--cli-http-compress|--no-cli-http-compress] [--warm-up-docs N]

The server comes from ES_URL, else a running ``scripts/search-engine.sh`` Elasticsearch is reused (and left
running), else one is started (and stopped at the end). The whole run takes ~5-10 min on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "bench"))

from index_bench import BENCH_LOG, machine_busy, raw_bodies, raw_bulk  # noqa: E402

from rds_slowlog.search import build_client, raw_request  # noqa: E402
from rds_slowlog.testing.airflow_stack import AirflowStack  # noqa: E402
from rds_slowlog.testing.logdata import spread_over_hours  # noqa: E402
from rds_slowlog.testing.rds_emulator import layout_hourly  # noqa: E402

PY = sys.executable
INSTANCE = "bench-mariadb"
DAG_NAME = "dagbench"
DAG_ID = f"rds_slowlog_hourly_{DAG_NAME}"
RSS_GOAL_MB = 256.0
RATIO_GOAL = 0.8


def say(msg: str) -> None:
    print(f"[dag-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ servers
def es_server() -> tuple[str, bool]:
    """(URL, whether this run started it): ES_URL, else a running search-engine.sh server, else a new one."""
    if os.environ.get("ES_URL"):
        return os.environ["ES_URL"], False
    script = str(ROOT / "scripts" / "search-engine.sh")
    st = subprocess.run([script, "status", "elasticsearch"], capture_output=True, text=True)
    if st.returncode == 0 and "=" in st.stdout:
        return st.stdout.strip().splitlines()[-1].split("=", 1)[1], False
    out = subprocess.run([script, "start", "elasticsearch"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"could not start Elasticsearch: {out.stderr.strip()[-2000:]}")
    return out.stdout.strip().splitlines()[-1].split("=", 1)[1], True


class Emulator:
    """``rds-slowlog rds-emulator`` in its own process (its CPU is the RDS side's, not the DAG's)."""

    def __init__(self, logs: Path) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "rds_slowlog.cli", "rds-emulator", "--logs", str(logs), "--instance", INSTANCE,
             "--engine", "mysql", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not line.startswith("endpoint_url="):
            self.stop()
            sys.exit(f"the RDS emulator did not start (said {line!r})")
        self.endpoint_url = line.split("=", 1)[1]

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ------------------------------------------------------------------------------------------------ /proc
CLK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """utime + stime of one process (its own, not its children's), seconds; 0 when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = raw.rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK


def _status_kib(pid: int, keys: tuple[bytes, ...]) -> dict[bytes, int]:
    out: dict[bytes, int] = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                k = line.split(b":", 1)[0]
                if k in keys:
                    out[k] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return out


def _private_kib(pid: int) -> int | None:
    """Private_Clean + Private_Dirty (USS): the task's own pages, not those shared with its forking parent."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            total = 0
            for line in fh:
                if line.startswith((b"Private_Clean:", b"Private_Dirty:")):
                    total += int(line.split()[1])
            return total
    except (OSError, ValueError, IndexError):
        return None


def find_es_pid() -> int | None:
    """The Elasticsearch JVM, when exactly one runs here (its CPU is reported per side)."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            if b"org.elasticsearch.bootstrap.Elasticsearch" in cmd:
                found.append(int(d))
    return found[0] if len(found) == 1 else None


class TaskSampler(threading.Thread):
    """Samples every Airflow task process (``airflow worker -- <task instance id>``) and every LocalExecutor
    worker (``airflow worker -- LocalExecutor: …``) every ``interval`` s: VmHWM, private memory, CPU."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True, name="task-sampler")
        self.interval = interval
        self.tasks: dict[str, dict[str, Any]] = {}          # task instance id -> figures
        self.workers: dict[int, dict[str, float]] = {}      # LocalExecutor worker pid -> cpu first/last
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def sample(self) -> None:
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            pid = int(d)
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if not cmd.startswith("airflow worker -- "):
                continue
            rest = cmd[len("airflow worker -- "):].strip()
            if rest.startswith("LocalExecutor"):
                c = proc_cpu(pid)
                with self.lock:
                    w = self.workers.setdefault(pid, {"first": c, "last": c})
                    w["last"] = max(w["last"], c)
                continue
            ti_id = rest.split()[0] if rest else ""
            st = _status_kib(pid, (b"VmHWM", b"VmRSS"))
            if not st:
                continue
            priv = _private_kib(pid)
            c = proc_cpu(pid)
            now = time.monotonic()
            with self.lock:
                t = self.tasks.setdefault(ti_id, {"pid": pid, "first_rss_kib": st.get(b"VmRSS", 0), "hwm_kib": 0,
                                                  "private_kib": 0, "cpu": 0.0, "first_seen": now,
                                                  "timeline": []})
                t["timeline"].append((now, st.get(b"VmRSS", 0), priv or 0))
                t["hwm_kib"] = max(t["hwm_kib"], st.get(b"VmHWM", 0))
                t["private_kib"] = max(t["private_kib"], priv or 0)
                t["cpu"] = max(t["cpu"], c)
                t["last_seen"] = now

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)

    def worker_cpu(self) -> float:
        with self.lock:
            return sum(w["last"] - w["first"] for w in self.workers.values())


# ------------------------------------------------------------------------------------------------ input
def prepare_log(src: Path, hour: datetime, work: Path, limit_mb: float | None) -> tuple[Path, Path]:
    """The bench log with all its times moved into ``[hour, hour + 1 h)`` (``spread_over_hours`` with
    ``hours=1``: one part, shifted to start at ``hour:10``), and the RDS layout of it for the emulator."""
    data = src.read_bytes()
    if limit_mb:
        cut = data.find(b"\n# Time: ", int(limit_mb * 1e6))
        data = data[:cut + 1] if cut > 0 else data
    moved = spread_over_hours(data, "mysql", hour.timestamp(), hours=1)
    del data
    path = work / "moved-mysql-slowquery.log"
    path.write_bytes(moved)
    del moved
    files = layout_hourly(path, work / "rds" / INSTANCE, "mysql", current=False)
    if len(files) != 1:
        sys.exit(f"the moved log spans {len(files)} hours ({[f.name for f in files]}): it must fit in one")
    return path, work / "rds" / INSTANCE


def count_entries(path: Path, since: float, until: float) -> tuple[int, int, float]:
    """(entries in the file, entries written in the window, seconds of write time they span)."""
    from rds_slowlog.entry import in_window
    from rds_slowlog.pipeline import read_path

    run, stream = read_path(path, "mysql")
    n = k = 0
    lo, hi = float("inf"), float("-inf")
    with stream:
        for e in run.entries:
            n += 1
            k += in_window(e.end_time, since, until)
            if e.end_time is not None:
                lo, hi = min(lo, e.end_time), max(hi, e.end_time)
    return n, k, hi - lo


def warm_up(client: Any, url: str, log: Path, prefix: str, docs: int) -> float:
    """A raw bulk of the log's first ``docs`` documents into a throwaway prefix, so the first side measured
    does not pay for a cold JVM (the server may have just been started); seconds taken."""
    import orjson

    from rds_slowlog.documents import DocumentBuilder
    from rds_slowlog.pipeline import Classifiers, classified, read_path
    from rds_slowlog.staging import ChunkWriter
    from rds_slowlog.templates import install_templates

    base = tempfile.mkdtemp(prefix="rds-dag-bench-warm-")
    try:
        writer = ChunkWriter(base, chunk_size=5000)
        builder = DocumentBuilder("warm-up", index_prefix=prefix)
        run, stream = read_path(log, "mysql")
        n = 0
        with stream:
            for e, qc in classified(run, Classifiers()):
                writer.add(orjson.dumps(builder.action(e, qc), option=orjson.OPT_APPEND_NEWLINE))
                n += 1
                if n >= docs:
                    break
        writer.close()
        install_templates(client, prefix=prefix, engine="elasticsearch")
        secs = raw_bulk(url, raw_bodies(base, 1000))
    finally:
        shutil.rmtree(base, ignore_errors=True)
        delete_all(client, prefix)
    return secs


# ------------------------------------------------------------------------------------------------ search
def count_docs(client: Any, pattern: str) -> int:
    raw_request(client, "elasticsearch", "POST", f"/{pattern}/_refresh", params={"ignore_unavailable": "true"})
    status, body = raw_request(client, "elasticsearch", "GET", f"/{pattern}/_count",
                               params={"ignore_unavailable": "true"})
    return int(body["count"]) if status == 200 else 0


def delete_data_indices(client: Any, prefix: str) -> None:
    status, body = raw_request(client, "elasticsearch", "GET", f"/_cat/indices/{prefix}-*",
                               params={"format": "json", "h": "index"})
    names = [r["index"] for r in body] if status == 200 else []
    if names:
        raw_request(client, "elasticsearch", "DELETE", "/" + ",".join(names))


def delete_all(client: Any, prefix: str) -> None:
    delete_data_indices(client, prefix)
    raw_request(client, "elasticsearch", "DELETE", f"/_index_template/{prefix}")
    for suffix in ("settings", "mappings", "mappings-mysql", "mappings-postgresql"):
        raw_request(client, "elasticsearch", "DELETE", f"/_component_template/{prefix}-{suffix}")


# ------------------------------------------------------------------------------------------------ Airflow
def ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def xcom(stack: AirflowStack, run_id: str, task_id: str, map_index: int = -1) -> Any:
    from urllib.parse import quote

    path = (f"dags/{quote(DAG_ID, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{quote(task_id, safe='')}/xcomEntries/return_value")
    try:
        value = stack.api("GET", path, params={"map_index": map_index})["value"]
    except Exception as e:  # noqa: BLE001 - a missing XCom is reported, not fatal
        say(f"no XCom for {task_id}[{map_index}]: {str(e)[:200]}")
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def log_phases(stack: AirflowStack, run_id: str, ti: dict[str, Any]) -> dict[str, float]:
    """Where a task's time went, from its own log (the task runner brackets ``execute`` between the end of the
    ``Pre Execute`` group — DAG file parsed in the worker — and the start of the ``Post Execute`` group — XCom
    push): ``pre`` (first line → execute), ``body`` (execute), ``post`` (execute → last line)."""
    d = stack.airflow_home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={ti['task_id']}"
    if ti["map_index"] >= 0:
        d = d / f"map_index={ti['map_index']}"
    try:
        lines = (d / f"attempt={ti['try_number'] or 1}.log").read_text(errors="replace").splitlines()
    except OSError:
        return {}
    marks: list[tuple[float, str]] = []
    for line in lines:
        try:
            item = json.loads(line)
            marks.append((datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00")).timestamp(),
                          str(item.get("event", ""))))
        except (ValueError, KeyError, TypeError):
            continue
    if not marks:
        return {}
    first, last = marks[0][0], marks[-1][0]
    pre_end = next((t for t, e in marks if e == "::endgroup::"), None)
    post = next((t for t, e in marks if e == "::group::Post Execute"), None)
    out = {"log_first": first, "log_last": last}
    if pre_end is not None and post is not None:
        out.update(pre=pre_end - first, body=post - pre_end, post=last - post)
    return out


def task_log_tail(stack: AirflowStack, run_id: str, ti: dict[str, Any], chars: int = 4000) -> str:
    """The end of a task's log file (for a failed task), events only."""
    d = stack.airflow_home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={ti['task_id']}"
    if ti["map_index"] >= 0:
        d = d / f"map_index={ti['map_index']}"
    out = []
    for f in sorted(d.glob("attempt=*.log")):
        for line in f.read_text(errors="replace").splitlines():
            try:
                item = json.loads(line)
                out.append(f"{item.get('timestamp', '')} {item.get('level', '')} {item.get('event', '')}"
                           + (f"\n{item['error_detail']}" if item.get("error_detail") else ""))
            except ValueError:
                out.append(line)
    return "\n".join(out)[-chars:]


def run_config(prefix: str, staging: Path, chunks_per_task: int) -> dict[str, Any]:
    cfg = json.loads((ROOT / "dags" / "rds_slowlog.json").read_text())
    cfg.update({"instances": [{"id": INSTANCE, "engine": "mysql", "aws_conn_id": "aws_dagbench"}],
                "search": {"kind": "elasticsearch", "conn_id": "elasticsearch_dagbench"}, "index_prefix": prefix,
                "staging": staging.as_uri(), "grace_minutes": 0, "retries": 0, "retry_delay_seconds": 2,
                "rds_retention_hours": 24})
    cfg["knobs"]["chunks_per_index_task"] = chunks_per_task
    return cfg


def dag_side(args: argparse.Namespace, work: Path, rds_root: Path, es_url: str, prefix: str,
             window: tuple[datetime, datetime], client: Any, es_pid: int | None) -> dict[str, Any]:
    dags = work / "dags"
    dags.mkdir()
    shutil.copyfile(ROOT / "dags" / "rds_slowlog_hourly.py", dags / "rds_slowlog_hourly.py")
    (dags / f"rds_slowlog_{DAG_NAME}.json").write_text(json.dumps(run_config(prefix, work / "staging",
                                                                             args.chunks_per_index_task)))
    emu = Emulator(rds_root)
    stack = AirflowStack(work / "stack", dags, port=0, pg_port=0, parallelism=args.parallelism)
    sampler = TaskSampler()
    out: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        stack.start()
        out["stack_start_s"] = time.monotonic() - t0
        stack.set_connection("aws_dagbench", "aws", login="testing", password="testing",
                             extra={"endpoint_url": emu.endpoint_url, "region_name": "us-east-1"})
        u = urlsplit(es_url)
        stack.set_connection("elasticsearch_dagbench", "elasticsearch", host=u.hostname, port=u.port,
                             schema=u.scheme, login=u.username, password=u.password)
        stack.create_pool("rds_slowlog_search", args.pool_slots, "bulk requests")
        stack.wait_dag(DAG_ID, timeout=180, fileloc=dags / "rds_slowlog_hourly.py")
        # catchup=False: the DAG gets one scheduled run of the latest hour as soon as it is parsed. It reads no
        # file of ours (our hour is 3 h back) but it costs CPU: wait for it to finish before ours starts.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            sched = stack.runs(DAG_ID, run_type="scheduled")
            if sched and all(r["state"] in ("success", "failed") for r in sched):
                break
            time.sleep(1)
        say(f"the DAG's own scheduled run(s): {[(r['dag_run_id'], r['state']) for r in stack.runs(DAG_ID)]}")
        for r in stack.runs(DAG_ID, run_type="scheduled", state="failed"):
            for ti in stack.task_instances(DAG_ID, r["dag_run_id"]):
                if ti["state"] == "failed":
                    say(f"  (not ours) {ti['task_id']} failed:\n{task_log_tail(stack, r['dag_run_id'], ti, 1500)}")
        time.sleep(3)                              # let the machine settle after it
        sampler.start()
        start, end = window
        comp = {n: p.pid for n, p in stack.procs.items()}
        cpu0 = {n: proc_cpu(p) for n, p in comp.items()}
        emu0, es0 = emu.cpu(), proc_cpu(es_pid) if es_pid else 0.0
        busy0, _ = machine_busy()
        load0 = os.getloadavg()[0]
        t0 = time.monotonic()
        run_id = stack.trigger(DAG_ID, end + timedelta(seconds=1), run_id=f"dagbench_{uuid.uuid4().hex[:6]}",
                               data_interval=(start, end))
        state = stack.wait_run(DAG_ID, run_id, timeout=args.timeout, poll=0.5)
        wall = time.monotonic() - t0
        busy1, _ = machine_busy()
        sampler.sample()
        sampler.stop()
        out.update(run_id=run_id, state=state, wall=wall, busy=(busy1 - busy0), load=(load0, os.getloadavg()[0]),
                   component_cpu={n: proc_cpu(p) - cpu0[n] for n, p in comp.items()},
                   worker_cpu=sampler.worker_cpu(), emulator_cpu=emu.cpu() - emu0,
                   es_cpu=(proc_cpu(es_pid) - es0) if es_pid else None)
        run = stack.run(DAG_ID, run_id)
        out["run"] = run
        tis = stack.task_instances(DAG_ID, run_id)
        for ti in tis:
            ti["sample"] = sampler.tasks.get(ti["id"], {})
            if ti["state"] != "success":
                continue
            if ti["task_id"] in ("stage", "index", "summarize", "list_files"):
                ti["xcom"] = xcom(stack, run_id, ti["task_id"], ti["map_index"])
            ti["phases"] = log_phases(stack, run_id, ti)
        out["tis"] = tis
        if state != "success":
            for ti in tis:
                if ti["state"] == "failed":
                    say(f"{ti['task_id']}[{ti['map_index']}] {ti['state']}:\n{task_log_tail(stack, run_id, ti)}")
        out["es_docs"] = count_docs(client, f"{prefix}-mysql-*")
        out["es_runs"] = count_docs(client, f"{prefix}-runs-*")
        out["es_history"] = count_docs(client, f"{prefix}-history-*")
        return out
    finally:
        if sampler.is_alive():
            sampler.stop()
        stack.stop()
        emu.stop()


# ------------------------------------------------------------------------------------------------ CLI
def cli_side(args: argparse.Namespace, log: Path, staging: Path, es_url: str, prefix: str,
             window: tuple[datetime, datetime], client: Any, es_pid: int | None, compress: bool) -> dict[str, Any]:
    """``rds-slowlog index`` as a child process: wall time, peak RSS (VmHWM, sampled), stdout time-stamped."""
    cmd = [str(Path(PY).with_name("rds-slowlog")), "index", str(log), "--target", es_url, "--index-prefix", prefix,
           "--instance", INSTANCE, "--since", window[0].isoformat(), "--until", window[1].isoformat(),
           "--staging", str(staging)]
    if not compress:
        cmd.append("--no-http-compress")
    lines: list[tuple[float, str]] = []
    es0 = proc_cpu(es_pid) if es_pid else 0.0
    busy0, _ = machine_busy()
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
    err: list[str] = []
    reader_err = threading.Thread(target=lambda: err.append(proc.stderr.read()),  # type: ignore[union-attr]
                                  daemon=True)
    reader_err.start()

    def read_out() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append((time.monotonic() - t0, line))

    reader = threading.Thread(target=read_out, daemon=True)
    reader.start()
    peak = 0
    cpu = 0.0
    while proc.poll() is None:
        st = _status_kib(proc.pid, (b"VmHWM",))
        peak = max(peak, st.get(b"VmHWM", 0))
        cpu = max(cpu, proc_cpu(proc.pid))
        time.sleep(0.02)
    wall = time.monotonic() - t0
    busy1, _ = machine_busy()
    reader.join()
    reader_err.join()
    chunks = [(t, json.loads(s)) for t, s in lines if s.startswith("{") and '"chunk"' in s]
    total = next((json.loads(s) for _, s in lines if s.startswith('{"total"')), None)
    if proc.returncode != 0 or total is None:
        say(f"rds-slowlog index exited {proc.returncode}: {''.join(err)[-2000:]}")
    first_t, first = chunks[0] if chunks else (wall, {"seconds": 0.0})
    return {"wall": wall, "rc": proc.returncode, "rss_mb": peak / 1024, "total": total or {}, "chunks": len(chunks),
            "stage_s": first_t - first.get("seconds", 0.0),          # until the first chunk's bulk began
            "index_s": (chunks[-1][0] - first_t + first.get("seconds", 0.0)) if chunks else 0.0,
            "busy": busy1 - busy0, "load": (load0, os.getloadavg()[0]), "cpu": cpu,
            "es_cpu": (proc_cpu(es_pid) - es0) if es_pid else None,
            "es_docs": count_docs(client, f"{prefix}-mysql-*"), "compress": compress}


# ------------------------------------------------------------------------------------------------ report
def f1(x: float | None, w: int = 7, d: int = 1) -> str:
    return f"{x:{w}.{d}f}" if x is not None else f"{'-':>{w}}"


def report(args: argparse.Namespace, meta: dict[str, Any], dag: dict[str, Any], clis: list[dict[str, Any]],
           raw: dict[str, Any]) -> None:
    cores = os.cpu_count()
    tis = dag["tis"]
    by = {}
    for ti in tis:
        by.setdefault(ti["task_id"], []).append(ti)
    summ = next((ti.get("xcom") for ti in by.get("summarize", [])), None) or {}
    sstats = summ.get("stats", {}) if isinstance(summ, dict) else {}
    docs = sstats.get("indexed") or dag["es_docs"]
    cli = clis[0]
    cli_docs = cli["total"].get("indexed", 0)

    print(f"\nrds-slowlog DAG benchmark — {cores} cores, python {sys.version.split()[0]}, load at start "
          f"{meta['load'][0]:.2f} / {meta['load'][1]:.2f} / {meta['load'][2]:.2f} (1/5/15 min)")
    print(f"input: {meta['src']} ({meta['mib']:.0f} MiB, {meta['entries']} entries) moved into the window "
          f"[{meta['window'][0]:%Y-%m-%dT%H:%M}Z, +1 h): {meta['in_window']} entries in it, their write times "
          f"spanning {meta['span']:.0f} s")
    print(f"DAG: {DAG_ID} (dags/rds_slowlog_hourly.py), LocalExecutor, parallelism {args.parallelism}, pool "
          f"rds_slowlog_search {args.pool_slots} slots, knobs default but chunks_per_index_task "
          f"{args.chunks_per_index_task}; ES connection without http_compress (the provider's default)")
    print(f"checks: docs in the DAG's index {dag['es_docs']} | DAG summarize indexed {sstats.get('indexed')} | "
          f"CLI indexed {cli_docs} (its index: {cli['es_docs']}) | raw in index {raw['es_docs']} -> "
          f"{'EQUAL' if dag['es_docs'] == cli_docs == raw['es_docs'] == sstats.get('indexed') else 'DIFFERENT'}; "
          f"DAG run/history docs {dag['es_runs']}/{dag['es_history']}")

    # side by side
    print(f"\n  {'side':<52} {'wall s':>8} {'docs':>8} {'docs/s':>8} {'vs CLI':>7} {'peak RSS':>9}  "
          f"{'machine CPU s':>13} {'ES CPU s':>8}  notes (machine CPU: every process here, others' too)")
    base = cli_docs / cli["wall"] if cli["wall"] else None

    def side(name: str, wall: float, n: int, rss: float | None, busy: float | None, es: float | None,
             note: str) -> None:
        rate = n / wall if wall else 0.0
        ratio = f"{rate / base:6.2f}x" if base else "      -"
        print(f"  {name:<52} {wall:8.1f} {n:8d} {rate:8.0f} {ratio:>7} {f1(rss, 6, 0)} MB  {f1(busy, 13)} "
              f"{f1(es, 8)}  {note}")

    run = dag["run"]
    run_secs = (ts(run.get("end_date")) or 0) - (ts(run.get("start_date")) or 0)
    task_peak = max((ti["sample"].get("hwm_kib", 0) for ti in tis), default=0) / 1024
    side("DAG: trigger -> run success (client clock)", dag["wall"], docs, task_peak, dag["busy"], dag["es_cpu"],
         f"run start->end {run_secs:.1f} s (Airflow's clock); RSS: largest task")
    for c in clis:
        side(f"CLI: rds-slowlog index{' (http_compress)' if c['compress'] else ' --no-http-compress'}", c["wall"],
             c["total"].get("indexed", 0), c["rss_mb"], c["busy"], c["es_cpu"],
             f"stage ~{c['stage_s']:.1f} s, index ~{c['index_s']:.1f} s, {c['chunks']} chunks, client CPU "
             f"{c['cpu']:.1f} s")
    side("raw _bulk of the CLI's staged docs (index only)", raw["secs"], raw["n"], None, raw["busy"], raw["es_cpu"],
         f"1 keep-alive connection, 1 request in flight, {raw['mb']:.0f} MB NDJSON built before the clock")

    ratio = (docs / dag["wall"]) / base if base else 0.0
    others = "".join(f" (vs the CLI {'with' if c['compress'] else 'without'} http_compress: "
                     f"{c['wall'] / dag['wall']:.2f}x)" for c in clis[1:])
    print(f"\n  goal DAG >= {RATIO_GOAL}x CLI end to end: {ratio:.2f}x -> {'met' if ratio >= RATIO_GOAL else 'MISSED'}"
          f"{others}; goal peak RSS of every task <= {RSS_GOAL_MB:.0f} MB: largest {task_peak:.0f} MB -> "
          f"{'met' if task_peak <= RSS_GOAL_MB else 'MISSED'}")

    # per task instance
    print(f"\n  per task instance (s; 'sched->queued' = the scheduler, including the wait for a pool slot; "
          f"'queued->start' = the executor handing it to a worker process;\n  start->end = the task's life in its "
          f"process = pre (DAG file parsed in the worker) + "
          f"body (execute) + post (XCom push) + rest (reporting the state, process exit); RSS in MB)")
    print(f"  {'task [map index]':<44} {'sched->queued':>13} {'queued->start':>13} {'start->end':>10} {'pre':>5} "
          f"{'body':>6} {'post':>5} {'rest':>5} {'body%':>5} {'CPU s':>6} {'peak RSS':>8} {'at fork':>7} "
          f"{'private':>7} {'XCom RSS':>8}  docs")
    t_trig = ts(run.get("queued_at")) or ts(run.get("start_date"))
    for ti in tis:
        sch, q, s, e = (ts(ti.get("scheduled_when")), ts(ti.get("queued_when")), ts(ti.get("start_date")),
                        ts(ti.get("end_date")))
        x = ti.get("xcom") if isinstance(ti.get("xcom"), dict) else {}
        stats = x.get("stats", x) if ti["task_id"] == "stage" else x if ti["task_id"] == "index" else {}
        ph = ti.get("phases") or {}
        sm = ti["sample"]
        lbl = ti.get("rendered_map_index") or (str(ti["map_index"]) if ti["map_index"] >= 0 else "")
        name = f"{ti['task_id']}{f' [{lbl}]' if lbl else ''}"[:44]
        dur = (e - s) if (s and e) else None
        body = ph.get("body")
        rest = (dur - (ph["log_last"] - ph["log_first"])) if (dur is not None and ph) else None
        pct = f"{100 * body / dur:4.0f}%" if (body is not None and dur) else f"{'-':>5}"
        xrss = stats.get("peak_rss_mb") if isinstance(stats, dict) else None
        n = stats.get("docs") if isinstance(stats, dict) else None
        print(f"  {name:<44} {f1((q - sch) if (q and sch) else None, 13, 2)} "
              f"{f1((s - q) if (q and s) else None, 13, 2)} "
              f"{f1(dur, 10, 2)} {f1(ph.get('pre'), 5, 2)} {f1(body, 6, 2)} {f1(ph.get('post'), 5, 2)} "
              f"{f1(rest, 5, 2)} {pct} {f1(sm.get('cpu'), 6)} "
              f"{f1(sm.get('hwm_kib', 0) / 1024 if sm else None, 8, 0)} "
              f"{f1(sm.get('first_rss_kib', 0) / 1024 if sm else None, 7, 0)} "
              f"{f1(sm.get('private_kib', 0) / 1024 if sm else None, 7, 0)} {f1(xrss or None, 8, 0)}  "
              f"{n if n is not None else ''}")

    # phases of the run (Airflow's clock), and where the wall time went
    def span(task: str) -> tuple[float, float] | None:
        xs = [(ts(t.get("start_date")), ts(t.get("end_date"))) for t in by.get(task, [])]
        xs = [(a, b) for a, b in xs if a and b]
        return (min(a for a, _ in xs), max(b for _, b in xs)) if xs else None

    print("\n  phases (Airflow's clock, from the run's queued_at):")
    prev = t_trig
    order = ["wait_for_rotation", "list_files", "stage", "plan_index", "index", "summarize", "cleanup"]
    for task in order:
        sp = span(task)
        if sp is None or prev is None:
            continue
        print(f"    {task:<18} gap before {sp[0] - prev:6.2f} s   span {sp[1] - sp[0]:7.2f} s")
        prev = sp[1]
    idx = by.get("index", [])
    durs = [ts(t["end_date"]) - ts(t["start_date"]) for t in idx if t.get("start_date") and t.get("end_date")]
    bodies = [t["phases"]["body"] for t in idx if (t.get("phases") or {}).get("body") is not None]
    qs = [ts(t["start_date"]) - ts(t["queued_when"]) for t in tis if t.get("queued_when") and t.get("start_date")]
    isp0 = span("index")
    if durs and isp0 and len(idx) > args.pool_slots:
        idle = args.pool_slots * (isp0[1] - isp0[0]) - sum(durs)
        print(f"  pool: {args.pool_slots} slots x index span {isp0[1] - isp0[0]:.1f} s - task time {sum(durs):.1f} s = "
              f"{idle:.1f} slot-seconds idle: <= {idle / (len(idx) - args.pool_slots):.2f} s per hand-over of a slot "
              f"from a finished index task to the next (scheduler loop + executor + process start; an upper bound: "
              f"the tail, where one slot has nothing left, is in it too)")
    if durs:
        print(f"  index tasks: {len(idx)} x ~{statistics.mean(durs):.1f} s (start->end), body ~"
              f"{statistics.mean(bodies) if bodies else float('nan'):.1f} s: per-task overhead outside the body "
              f"~{statistics.mean(durs) - (statistics.mean(bodies) if bodies else 0):.1f} s; "
              f"queued->start median {statistics.median(qs):.2f} s, max {max(qs):.2f} s over all tasks")
    st_ti = next(iter(by.get("stage", [])), None)
    isp = span("index")
    if st_ti and isp and (st_ti.get("phases") or {}).get("body") is not None:
        sbody = st_ti["phases"]["body"]
        rest = dag["wall"] - sbody - (isp[1] - isp[0])
        print(f"  DAG wall {dag['wall']:.1f} s = stage execute {sbody:.1f} s + index span {isp[1] - isp[0]:.1f} s "
              f"({len(idx)} task(s), bodies {sum(bodies):.1f} s in all over {args.pool_slots} pool slots) + "
              f"everything else {rest:.1f} s (trigger -> first task, scheduling gaps, the 5 small tasks, the "
              f"stage task's own start/stop)")
    stage = next(iter(by.get("stage", [])), None)
    if stage and isinstance(stage.get("xcom"), dict):
        dl = stage["xcom"].get("downloads") or []
        reports = ", ".join(f"{d.get('method')} {d.get('bytes')} B in {d.get('seconds')} s" for d in dl)
        print(f"  stage: download+parse+stage {stage['xcom']['stats'].get('seconds')} s in one streaming pass "
              f"(download report: {reports})")
    if stage and stage["sample"].get("timeline"):
        tl = stage["sample"]["timeline"]
        t0_, t1_ = tl[0][0], tl[-1][0]
        pts = []
        for frac in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
            t_, r_, p_ = min(tl, key=lambda x: abs(x[0] - (t0_ + frac * (t1_ - t0_))))
            pts.append(f"{frac:.0%} {r_ / 1024:.0f}/{p_ / 1024:.0f}")
        print(f"  stage RSS/private MB over its life: {', '.join(pts)}")
        from rds_slowlog.documents import OCCURRENCE_HORIZON

        if meta["span"] < OCCURRENCE_HORIZON:
            print(f"  (the log's {meta['entries']} entries lie within {meta['span']:.0f} s of write time, inside the "
                  f"{OCCURRENCE_HORIZON:.0f}-s id-numbering horizon: the document builder keeps one occurrence key "
                  f"per entry for the whole stage)")
    comp = dag["component_cpu"]
    print(f"  CPU during the DAG run: machine {dag['busy']:.1f} s of {dag['wall'] * (cores or 1):.0f} available; "
          f"task processes {sum(t['sample'].get('cpu', 0.0) for t in tis):.1f} s; LocalExecutor workers "
          f"(supervisors) {dag['worker_cpu']:.1f} s; "
          + ", ".join(f"{n} {v:.1f} s" for n, v in comp.items())
          + f"; RDS emulator {dag['emulator_cpu']:.1f} s; Elasticsearch {f1(dag['es_cpu'], 1)} s")
    base_rss = [t["sample"].get("hwm_kib", 0) / 1024 for t in tis if t["task_id"] in ("plan_index", "list_files",
                                                                                         "cleanup") and t["sample"]]
    forks = [t["sample"].get("first_rss_kib", 0) / 1024 for t in tis if t["sample"]]
    if base_rss:
        print(f"  RSS baseline: trivial tasks (list_files/plan_index/cleanup) peak {min(base_rss):.0f}-"
              f"{max(base_rss):.0f} MB; every task process starts at ~{statistics.median(forks):.0f} MB (pages "
              f"shared with the LocalExecutor worker it was forked from); 'private' = its own pages only")
    print(f"  load average during: DAG {dag['load'][0]:.2f}->{dag['load'][1]:.2f}, CLI "
          f"{cli['load'][0]:.2f}->{cli['load'][1]:.2f}, raw {raw['load'][0]:.2f}->{raw['load'][1]:.2f}; stack start "
          f"{dag['stack_start_s']:.0f} s (not counted)")


# ------------------------------------------------------------------------------------------------ main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", type=Path, default=BENCH_LOG, help="MySQL/MariaDB slow log (default: %(default)s)")
    ap.add_argument("--limit-mb", type=float, help="only the first N MB of the log (a quick check, not the bench)")
    ap.add_argument("--pool-slots", type=int, default=2, help="slots of the rds_slowlog_search pool")
    ap.add_argument("--chunks-per-index-task", type=int, default=16,
                    help="knob chunks_per_index_task (5,000-document chunks per mapped index task)")
    ap.add_argument("--parallelism", type=int, default=4, help="Airflow [core] parallelism (LocalExecutor workers)")
    ap.add_argument("--cli-http-compress", action=argparse.BooleanOptionalAction, default=None,
                    help="run the CLI with (or without) http_compress; default: both, defaults first")
    ap.add_argument("--warm-up-docs", type=int, default=200_000,
                    help="documents bulk-indexed (and deleted) before the first side, so that side does not pay for "
                         "a cold JVM (JIT) alone (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for the DAG run")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if not args.log.exists():
        print(f"missing {args.log}: run `make bench-logs` (bench/make_logs.py) first", file=sys.stderr)
        return 2
    meta: dict[str, Any] = {"load": os.getloadavg(), "src": args.log}
    now_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    # 3 h back: the DAG's own scheduled run of the latest hour lists files written since (H-1) - 300 s, which
    # never includes ours (last written at the end of its hour, H-2)
    window = (now_hour - timedelta(hours=3), now_hour - timedelta(hours=2))
    meta["window"] = window
    url, started = es_server()
    client = build_client("elasticsearch", url, http_compress=False, timeout=120)
    es_pid = find_es_pid()
    tag = uuid.uuid4().hex[:6]
    prefixes = {"dag": f"dagbench-{tag}-dag", "cli": f"dagbench-{tag}-cli", "warm": f"dagbench-{tag}-warm"}
    work = Path(tempfile.mkdtemp(prefix="rds-dag-bench-", dir="/tmp"))
    os.chmod(work, 0o755)
    t_all = time.monotonic()
    try:
        say(f"moving {args.log} into [{window[0]:%Y-%m-%dT%H:%M}Z, +1 h) under {work}")
        moved, rds_root = prepare_log(args.log, window[0], work, args.limit_mb)
        meta["mib"] = moved.stat().st_size / (1 << 20)
        meta["entries"], meta["in_window"], meta["span"] = count_entries(moved, window[0].timestamp(),
                                                                          window[1].timestamp())
        if meta["in_window"] != meta["entries"]:
            say(f"WARNING: only {meta['in_window']} of {meta['entries']} entries fall in the window")

        say(f"warming Elasticsearch up ({args.warm_up_docs} documents, raw, into {prefixes['warm']}-*)")
        say(f"warm-up took {warm_up(client, url, moved, prefixes['warm'], args.warm_up_docs):.1f} s")
        say("DAG side: starting the Airflow stack")
        dag = dag_side(args, work, rds_root, url, prefixes["dag"], window, client, es_pid)
        say(f"DAG run {dag['run_id']}: {dag['state']} in {dag['wall']:.1f} s; {dag['es_docs']} docs in its index")
        delete_all(client, prefixes["dag"])
        if not args.keep:
            shutil.rmtree(work / "stack", ignore_errors=True)
        time.sleep(5)

        clis = []
        variants = [True, False] if args.cli_http_compress is None else [args.cli_http_compress]
        for k, compress in enumerate(variants):
            staging = work / f"cli-staging-{k}"
            say(f"CLI side: rds-slowlog index (http_compress={compress})")
            c = cli_side(args, moved, staging, url, prefixes["cli"], window, client, es_pid, compress)
            say(f"CLI: {c['total'].get('indexed')} indexed in {c['wall']:.1f} s, peak RSS {c['rss_mb']:.0f} MB")
            clis.append(c)
            delete_data_indices(client, prefixes["cli"])     # keep the templates for the next side
            if k:
                shutil.rmtree(staging, ignore_errors=True)
            time.sleep(5)

        say("raw side: building the _bulk bodies from the CLI's staged chunks")
        bodies = raw_bodies(str(work / "cli-staging-0"), 1000)
        n = sum(b.count(b"\n") for b in bodies) // 2
        mb = sum(map(len, bodies)) / 1e6
        es0 = proc_cpu(es_pid) if es_pid else 0.0
        busy0, _ = machine_busy()
        load0 = os.getloadavg()[0]
        secs = raw_bulk(url, bodies)
        busy1, _ = machine_busy()
        raw = {"secs": secs, "n": n, "mb": mb, "busy": busy1 - busy0, "load": (load0, os.getloadavg()[0]),
               "es_cpu": (proc_cpu(es_pid) - es0) if es_pid else None,
               "es_docs": count_docs(client, f"{prefixes['cli']}-mysql-*")}
        del bodies
        say(f"raw: {n} docs in {secs:.1f} s")
        report(args, meta, dag, clis, raw)
        print(f"\n(total bench time {time.monotonic() - t_all:.0f} s)")
        return 0 if dag["state"] == "success" else 1
    finally:
        for p in prefixes.values():
            try:
                delete_all(client, p)
            except Exception as e:  # noqa: BLE001
                say(f"could not delete {p}-*: {e}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        if started:
            subprocess.run([str(ROOT / "scripts" / "search-engine.sh"), "stop", "elasticsearch"], check=False)


if __name__ == "__main__":
    sys.exit(main())
