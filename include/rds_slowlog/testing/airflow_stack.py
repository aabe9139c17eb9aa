"""A real, private Airflow 3 deployment on this machine: PostgreSQL + api-server + scheduler + dag-processor
(+ triggerer), for tests, ``make demo`` and ``.ci/run``.

Why it exists: ``dag.test()`` runs every task in one process on SQLite, so it cannot show what only a real
deployment shows: the scheduler's data intervals for scheduled and backfill runs, mapped tasks in separate
worker processes, deferrable tasks handed to the triggerer, pools, connections from the environment and task
logs read back through the api-server. Starting such a deployment by hand is easy to get subtly wrong (a JWT
secret that differs between components, an execution API URL that points at the wrong port, a PostgreSQL
that refuses to run as root, a scheduler that outlives the test), so the lifecycle lives here, once.

What it looks like, and why:

* **PostgreSQL 15** (Debian's ``/usr/lib/postgresql/15/bin``) in a private data dir on ``127.0.0.1`` and a
  free port, no unix socket (nothing to collide with), ``fsync=off`` (a test DB, not a durable one). As root
  it runs as the ``postgres`` user (else ``nobody``), because PostgreSQL refuses to run as root. PG is what
  deployments use as the metadata DB; it needs ``psycopg2-binary`` *and* ``asyncpg`` (Airflow derives a
  ``postgresql+asyncpg://`` URL and ``db migrate`` dies without it).
* **Every component gets the same environment** (:attr:`AirflowStack.env`): the same JWT secret (else the
  api-server rejects the tokens the scheduler mints for tasks), the same API secret key (else log fetching
  fails), the same Fernet key (connections), an execution API URL on the api-server's port, examples off,
  DAGs unpaused at creation, ``parallelism`` also as ``max_active_tasks_per_dag`` (the default 32 forks 32
  LocalExecutor workers on a 2-core box), a 5 s DAG-folder refresh so new DAG files show up quickly, and free
  ports for the worker/triggerer log servers (the fixed defaults 8793/8794 collide between two stacks).
  ``AIRFLOW*`` variables of the calling process are dropped, so a developer's own Airflow settings cannot
  leak in; ``extra_env`` (connections, pools, options) is applied last and wins.
* **Each component in its own session** (``start_new_session``, i.e. ``setsid``): the pid is the process
  group id, so :meth:`AirflowStack.stop` can signal the component *and* every worker/task process it
  forked, and a Ctrl-C in the terminal reaches the caller only, who then stops the stack in ``finally``.
  Every process also carries ``RDS_SLOWLOG_AIRFLOW_STACK=<home>`` in its environment, so a final sweep over
  ``/proc`` finds anything that escaped its group (and ``stop`` works from another process via ``home``).
* **Ready means usable**: :meth:`AirflowStack.start` returns once ``/api/v2/monitor/health`` reports the
  metadatabase, scheduler, dag-processor (and triggerer) healthy; :meth:`AirflowStack.wait_dag` then waits for
  a DAG to be parsed (reporting import errors instead of timing out silently).
* **CeleryExecutor mode** (``executor="CeleryExecutor"``, as MWAA runs Airflow): Debian's ``redis-server`` on
  loopback without persistence as the broker, Celery results in a second database (``airflow_celery``) of the
  stack's PostgreSQL, ``moto_server`` as the stack's S3 (:attr:`AirflowStack.s3_endpoint_url`), and
  ``celery_workers`` (2) ``airflow celery worker`` processes. Each worker stands for a machine of its own: its
  own AIRFLOW_HOME (task logs), working directory (``run/<worker>``), TMPDIR, log-server port, celery node
  name and host name — the latter through ``[core] hostname_callable`` = :func:`worker_hostname`, which reads
  ``$AIRFLOW_HOME/hostname`` like ``/etc/hostname``, so task instances say which worker ran them. Only the
  DAGs folder is shared, as MWAA syncs ``dags/`` to every worker. Because no worker can serve another one's
  log files (one ``worker_log_server_port`` for all in the api-server), task logs are remote logs on the
  stack's S3, which the api-server reads — MWAA does the same with CloudWatch. Workers are ready when their
  log says ``<node> ready.``; the broker when it answers ``PING``. Faults for tests:
  :meth:`AirflowStack.kill_component` (``kill -9`` of a component and every process under it, task
  processes that ``setsid()`` included), :meth:`AirflowStack.start_component`,
  :meth:`AirflowStack.restart_component`.

Layout under ``home``: ``airflow/`` (AIRFLOW_HOME: passwords.json, task logs), ``workers/<worker>/{airflow,tmp}``
(a Celery worker's AIRFLOW_HOME and TMPDIR), ``pg/`` (data dir, server log;
a symlink into ``/tmp`` when the ``postgres`` user cannot reach ``home``, e.g. under pytest's 0700 tmp),
``logs/<component>.log`` (stdout+stderr of each process), ``state.json`` (pids and ports of the running
stack), ``secrets.json`` (kept across restarts: the Fernet key must match the DB), ``airflow.env`` (``export``
lines to run the ``airflow`` CLI against the stack from a shell).

Typical use::

    with AirflowStack(tmp / "stack", dags_folder=tmp / "dags", extra_env={"AIRFLOW_CONN_ES": "..."}) as st:
        st.wait_dag("my_dag")
        run_id = st.trigger("my_dag", "2026-12-01T11:00:00Z")
        assert st.wait_run("my_dag", run_id, timeout=120) == "success"

or from a shell (``scripts/airflow-stack.sh`` wraps this)::

    python -m rds_slowlog.testing.airflow_stack start --home /tmp/af --dags dags --plugins plugins
    python -m rds_slowlog.testing.airflow_stack start --home /tmp/afc --dags dags --executor celery --workers 2
    python -m rds_slowlog.testing.airflow_stack status --home /tmp/af
    python -m rds_slowlog.testing.airflow_stack stop --home /tmp/af

Only the standard library (plus Airflow itself, run as a subprocess) is used.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import fcntl
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "AirflowApiError", "AirflowStack", "DEFAULT_COMPONENTS", "MARKER", "PG_BIN", "StackError", "StackTimeout",
    "find_stack_processes", "free_port", "main", "worker_hostname",
]

def _pg_bin() -> Path:
    """Debian's PostgreSQL 15 binaries (not on ``PATH`` there); else the newest installed major version
    (``apt-get install postgresql`` on a newer Debian brings 16/17); ``RDS_SLOWLOG_PG_BIN`` overrides."""
    if os.environ.get("RDS_SLOWLOG_PG_BIN"):
        return Path(os.environ["RDS_SLOWLOG_PG_BIN"])
    default = Path("/usr/lib/postgresql/15/bin")
    if (default / "postgres").exists():
        return default
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else default


#: Where ``initdb``, ``pg_ctl``, ``postgres`` and ``psql`` are taken from.
PG_BIN = _pg_bin()
#: Environment variable every process of a stack carries (value: the stack's home), for the /proc sweep.
MARKER = "RDS_SLOWLOG_AIRFLOW_STACK"
#: Components in start order; the triggerer only matters for deferrable tasks.
DEFAULT_COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")
#: ``component -> key in /api/v2/monitor/health`` (the api-server is healthy when it answers at all).
HEALTH_KEYS: dict[str, str | None] = {
    "api-server": None, "scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer",
}
EXECUTORS = ("LocalExecutor", "CeleryExecutor")
#: CeleryExecutor mode's services, started before Airflow: the broker, and moto as the stack's S3.
CELERY_SERVICES: tuple[str, ...] = ("redis", "moto")
#: Celery workers are components ``celery-worker-1`` … ``celery-worker-N``.
WORKER_PREFIX = "celery-worker-"
#: The bucket on the stack's moto that holds task logs (``[logging] remote_base_log_folder``).
LOGS_BUCKET = "airflow-stack-logs"
#: Connection id of the stack's own S3 (remote task logs); the DAG's connections are the caller's business.
LOGS_CONN_ID = "airflow_stack_logs"
#: File in a worker's AIRFLOW_HOME with its host name (what :func:`worker_hostname` answers).
HOSTNAME_FILE = "hostname"
FINAL_RUN_STATES = frozenset({"success", "failed"})
FINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
USERNAME = PASSWORD = "admin"
PG_MARK_SUFFIX = "#postgres"   # PG processes carry MARKER=<home>#postgres: stopped last, by pg_ctl

Log = Callable[[str], None]


def _stderr_log(msg: str) -> None:
    """Default progress sink: stderr, so a caller's stdout (the ``KEY=value`` lines) stays clean."""
    print(f"[airflow-stack {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class StackError(RuntimeError):
    """The stack could not be started, driven or stopped; the message carries the log lines that explain it."""


class StackTimeout(StackError, TimeoutError):
    """A wait ran out; the message says what state things were left in."""


class AirflowApiError(StackError):
    """An HTTP error from the Airflow REST API, with the response body (Airflow's ``detail`` says why)."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:4000]}")
        self.method, self.path, self.status, self.body = method, path, status, body


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (good enough for a private test server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_HOSTNAME: str | None = None


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the stack's Celery workers: the name in ``$AIRFLOW_HOME/hostname``.

    Why: the two workers run on one machine but stand for two, so the task instances they run must say which
    one ran them (``hostname`` in the REST API, what a test checks to see work spread over both). Airflow asks
    ``hostname_callable`` for that name; each worker's own AIRFLOW_HOME holds a ``hostname`` file written by
    the stack (as ``/etc/hostname`` names a real machine), so no variable of ours is involved. Without the
    file (any other process) it answers what Airflow's default ``getfqdn`` would.
    """
    global _HOSTNAME
    if _HOSTNAME is None:
        home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
        try:
            _HOSTNAME = Path(home, HOSTNAME_FILE).read_text().strip() or socket.getfqdn()
        except OSError:
            _HOSTNAME = socket.getfqdn()
    return _HOSTNAME


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _iso(value: datetime | str | None) -> str | None:
    """ISO-8601 with an explicit zone for the REST API; naive datetimes are taken as UTC (Airflow's zone)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat().replace("+00:00", "Z")


def _q(segment: str) -> str:
    """URL-encode one path segment: run ids contain ``+`` and ``:`` (``scheduled__2026-…+00:00``)."""
    return urllib.parse.quote(segment, safe="")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------------- /proc helpers
def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()   # comm may contain spaces and parentheses
    return fields[0], int(fields[1]), int(fields[2])


def _alive(pid: int) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _marker_of(pid: int) -> str | None:
    """The value of :data:`MARKER` in a process's environment (None if absent or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = MARKER.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _ancestors() -> set[int]:
    """This process and its ancestors: never killed by a sweep, even if a shell sourced the stack's env."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        st = _proc_stat(pid)
        pid = st[1] if st else 0
    return out


def _cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def find_stack_processes(home: Path | str, *, postgres: bool | None = None) -> list[tuple[int, int, str]]:
    """``(pid, pgid, cmdline)`` of every live process of the stack in ``home``.

    ``postgres=True`` only the PostgreSQL ones, ``False`` only the Airflow ones, ``None`` both. This is what
    "no process left behind" is checked against, and what :meth:`AirflowStack.stop` sweeps. Why several
    signals: Airflow's processes call ``setproctitle``, which overwrites ``/proc/PID/environ`` (so the
    :data:`MARKER` variable is only readable in some of them), and task processes and PostgreSQL backends
    ``setsid()`` (so process groups do not hold everything). A process is the stack's when its working
    directory is ``home/run`` (where components start; children inherit it) or the PG data dir (the
    postmaster chdirs there), or it carries the marker, or it descends from such a process.
    """
    home_p = Path(home).resolve()
    run_dir = str(home_p / "run")
    pg_data = str((home_p / "pg").resolve() / "data")
    home_s = str(home_p)
    mine = _ancestors()
    table: dict[int, tuple[str, int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None:
                table[int(entry)] = st
    kind: dict[int, bool] = {}          # pid -> is postgres
    for pid in table:
        cwd = _cwd(pid)
        if cwd is not None and (cwd == pg_data or cwd.startswith(pg_data + "/")):
            kind[pid] = True
        elif cwd is not None and (cwd == run_dir or cwd.startswith(run_dir + "/")):
            kind[pid] = False
        else:
            mark = _marker_of(pid)
            if mark == home_s:
                kind[pid] = False
            elif mark == home_s + PG_MARK_SUFFIX:
                kind[pid] = True
    changed = True
    while changed:                       # descendants (a child that chdir'ed elsewhere is still ours)
        changed = False
        for pid, (_, ppid, _) in table.items():
            if pid not in kind and ppid in kind:
                kind[pid] = kind[ppid]
                changed = True
    out: list[tuple[int, int, str]] = []
    for pid, is_pg in sorted(kind.items()):
        state, _, pgid = table[pid]
        if pid in mine or state in ("Z", "X") or (postgres is not None and is_pg != postgres):
            continue
        out.append((pid, pgid, _cmdline(pid)))
    return out


# ------------------------------------------------------------------------------------------------ PostgreSQL
class _Postgres:
    """The stack's private PostgreSQL, driven with ``pg_ctl`` so that any process can stop it later."""

    def __init__(self, root: Path, port: int, marker: str, log: Log) -> None:
        self.root = root
        self.data = root / "data"
        self.logfile = root / "postgresql.log"
        self.port = port
        self.marker = marker
        self.log = log
        self.run_as = _pg_user() if os.geteuid() == 0 else None

    # Why explicit uid/gid/groups: ``user=`` alone keeps root's groups, and PostgreSQL's files would be
    # created with gid 0; the server only checks the uid, but a clean drop avoids surprises.
    def _ids(self) -> dict[str, Any]:
        if self.run_as is None:
            return {}
        pw = pwd.getpwnam(self.run_as)
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C",
                MARKER: self.marker + PG_MARK_SUFFIX}

    def _run(self, argv: Sequence[str], *, timeout: float = 120,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        out = self.root / "pg_ctl.out"
        with open(out, "a") as fh:
            res = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                 text=True, env=self._env(), cwd=self.root, timeout=timeout, **self._ids())
        if check and res.returncode != 0:
            raise StackError(f"{' '.join(argv)} failed ({res.returncode}):\n{_tail(out)}\n{_tail(self.logfile)}")
        return res

    def prepare_dir(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            pw = pwd.getpwnam(self.run_as)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o700)

    def init(self) -> None:
        """initdb once per data dir (a restart with the same home keeps the DB, hence the secrets file)."""
        if (self.data / "PG_VERSION").exists():
            return
        if not (PG_BIN / "initdb").exists():
            raise StackError(f"{PG_BIN / 'initdb'} not found (apt-get install postgresql)")
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"])
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write("\ninclude_if_exists = 'stack.conf'\n")

    def start(self) -> None:
        # Rewritten on every start: the port may be a new free one. Unix socket off: nothing to collide with.
        conf = self.data / "stack.conf"
        conf.write_text("\n".join([
            "# written by rds_slowlog.testing.airflow_stack",
            "listen_addresses = '127.0.0.1'", f"port = {self.port}", "unix_socket_directories = ''",
            "fsync = off", "synchronous_commit = off", "full_page_writes = off",
            # every Airflow process keeps a pool (5 + 10 overflow): 4 components + workers + tasks add up
            "max_connections = 300", "timezone = 'UTC'", "log_timezone = 'UTC'", "",
        ]))
        if self.run_as is not None:
            pw = pwd.getpwnam(self.run_as)
            os.chown(conf, pw.pw_uid, pw.pw_gid)
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60",
                   "start"])

    def postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def psql(self, sql: str, *, db: str = "postgres", user: str = "postgres") -> str:
        res = subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", db,
                              "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
        if res.returncode != 0:
            raise StackError(f"psql failed: {sql}\n{res.stderr}")
        return res.stdout

    def create_airflow_db(self, databases: Sequence[str] = ("airflow",)) -> None:
        """The ``airflow`` role and its databases (the metadata DB; ``airflow_celery`` for Celery results)."""
        if not self.psql("SELECT 1 FROM pg_roles WHERE rolname = 'airflow'").strip():
            self.psql("CREATE ROLE airflow LOGIN PASSWORD 'airflow'")
        for db in databases:
            if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'").strip():
                self.psql(f"CREATE DATABASE {db} OWNER airflow")

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (rolls back open transactions), then SIGQUIT, then SIGKILL the whole group."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        with contextlib.suppress(StackError, subprocess.TimeoutExpired):
            self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", str(int(timeout)),
                       "stop"], timeout=timeout + 10, check=False)
        for sig, wait in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            if not _alive(pid):
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)      # pg_ctl setsid()s the postmaster: its group holds all backends
            _wait_gone(lambda: _alive(pid), wait)


def _pg_user() -> str:
    """The user PostgreSQL runs as when we are root: ``postgres`` (Debian's package creates it), else nobody."""
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            if pwd.getpwnam(name).pw_uid != 0:
                return name
    raise StackError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


def _user_can_reach(path: Path, user: str | None) -> bool:
    """Whether ``user`` can traverse into ``path`` (every ancestor needs +x: pytest's tmp dirs are 0700)."""
    if user is None:
        return True
    pw = pwd.getpwnam(user)
    res = subprocess.run(["test", "-x", str(path)], user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                         capture_output=True)
    return res.returncode == 0


def _process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants (by parent pid, so processes that left the group count)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None and st[0] not in ("Z", "X"):
                children.setdefault(st[1], []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return [p for p in out if _alive(p)]


def _moto_server_cmd() -> str:
    """``moto_server`` of the running interpreter's venv (moto[server] is in the test extra), else PATH's."""
    cand = Path(sys.executable).with_name("moto_server")
    if cand.exists():
        return str(cand)
    found = shutil.which("moto_server")
    if found is None:
        raise StackError("moto_server not found (pip install 'moto[server]': the test extra)")
    return found


def _wait_gone(alive: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


# ------------------------------------------------------------------------------------------------ the stack
@dataclass
class _Proc:
    """One started component: ``pid`` is also its process group id (it was started in its own session)."""

    name: str
    pid: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None   # None when attached from another process
    log_start: int = 0                              # offset of this start's output in ``log`` (readiness)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _alive(self.pid)



class AirflowStack:
    """A private Airflow deployment (see the module docstring); a context manager that always cleans up.

    :param home: directory for AIRFLOW_HOME, PostgreSQL data, logs and pid/state files (created).
    :param dags_folder: ``[core] dags_folder``; new files there are picked up within ``refresh_interval``.
    :param plugins_folder: ``[core] plugins_folder`` (loaded by the api-server at start: restart to reload).
    :param port: api-server port on 127.0.0.1; 0 picks a free one.
    :param pg_port: PostgreSQL port; 0 picks a free one.
    :param executor: ``"LocalExecutor"`` or ``"CeleryExecutor"``. Celery adds the components ``redis``
        (Debian's ``redis-server`` on loopback, no persistence: the broker), ``moto`` (``moto_server``: the
        stack's S3, see :attr:`s3_endpoint_url`; task logs go there as remote logs) and ``celery-worker-1`` …
        ``celery-worker-N``, each with its own AIRFLOW_HOME, working directory, TMPDIR, log-server port and
        host name (:func:`worker_hostname`) — so nothing can lean on a local path another task wrote. Celery
        results go to a second database (``airflow_celery``) of the stack's PostgreSQL.
    :param parallelism: ``[core] parallelism`` and ``max_active_tasks_per_dag`` (LocalExecutor worker count).
    :param celery_workers: number of Celery workers (CeleryExecutor; default 2).
    :param worker_concurrency: ``--concurrency`` of each worker (default ``parallelism // celery_workers``).
    :param extra_env: more variables for every component, applied last (``AIRFLOW_CONN_*``,
        ``AIRFLOW__CORE__...``, ``AIRFLOW_VAR_*``); they win over the stack's own settings.
    :param triggerer: run the triggerer (needed for deferrable tasks); ignored when ``components`` is given.
    :param components: which components to run (default :data:`DEFAULT_COMPONENTS`, minus the triggerer
        when ``triggerer=False``).
    :param refresh_interval: ``[dag_processor] refresh_interval`` (seconds between DAG-folder listings).
    :param start_timeout: seconds to wait for health after the processes started.
    :param stop_grace: seconds between SIGTERM and SIGKILL (the api-server needs 6-10 s).
    :param airflow_cmd: argv prefix that runs Airflow (default: the ``airflow`` next to ``sys.executable``).
    :param log: progress sink (default: stderr).
    """

    def __init__(self, home: Path | str, dags_folder: Path | str, plugins_folder: Path | str | None = None, *,
                 port: int = 8080, pg_port: int = 0, executor: str = "LocalExecutor", parallelism: int = 4,
                 extra_env: Mapping[str, str] | None = None, triggerer: bool = True,
                 components: Sequence[str] | None = None, refresh_interval: int = 5,
                 start_timeout: float = 180.0, stop_grace: float = 30.0,
                 airflow_cmd: Sequence[str] | None = None, log: Log | None = None,
                 celery_workers: int = 2, worker_concurrency: int | None = None) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, not {executor!r}")
        if celery_workers < 1:
            raise ValueError(f"celery_workers must be at least 1, not {celery_workers}")
        self.celery_workers = celery_workers
        self.worker_concurrency = worker_concurrency or max(1, parallelism // celery_workers)
        self.home = Path(home).resolve()
        self.dags_folder = Path(dags_folder).resolve()
        self.plugins_folder = Path(plugins_folder).resolve() if plugins_folder else None
        self.requested_port, self.requested_pg_port = port, pg_port
        self.port, self.pg_port = port, pg_port
        self.executor = executor
        self.parallelism = parallelism
        self.extra_env = {str(k): str(v) for k, v in (extra_env or {}).items()}
        self.triggerer = triggerer
        self.components = tuple(components) if components is not None else self._default_components()
        unknown = [c for c in self.components if c not in HEALTH_KEYS and not self._is_celery_part(c)]
        if unknown:
            raise ValueError(f"unknown components {unknown}; known: {sorted(HEALTH_KEYS)}, "
                             f"{list(CELERY_SERVICES)} and {WORKER_PREFIX}<n> (CeleryExecutor)")
        self.refresh_interval = refresh_interval
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.airflow_cmd = list(airflow_cmd) if airflow_cmd else _default_airflow_cmd()
        self.log = log or _stderr_log
        self.airflow_home = self.home / "airflow"
        self.logs_dir = self.home / "logs"
        self.run_dir = self.home / "run"   # every component's cwd: how find_stack_processes recognises them
        self.state_file = self.home / "state.json"
        self.procs: dict[str, _Proc] = {}
        self.pg: _Postgres | None = None
        self.pg_root: Path | None = None
        self.pg_ephemeral = False      # the PG dir lives outside home (in /tmp) and is removed on stop
        self.timings: dict[str, float] = {}
        self._token: str | None = None
        self._secrets: dict[str, str] = {}
        self._atexit_registered = False

    # ------------------------------------------------------------------ configuration
    def _is_celery_part(self, name: str) -> bool:
        return self.executor == "CeleryExecutor" and (
            name in CELERY_SERVICES or (name.startswith(WORKER_PREFIX) and name[len(WORKER_PREFIX):].isdigit()))

    def _default_components(self) -> tuple[str, ...]:
        """Components for the executor, in start order: Celery's broker and S3 come first, workers last."""
        airflow = tuple(c for c in DEFAULT_COMPONENTS if self.triggerer or c != "triggerer")
        if self.executor == "CeleryExecutor":
            workers = tuple(f"{WORKER_PREFIX}{k}" for k in range(1, self.celery_workers + 1))
            return (*CELERY_SERVICES, *airflow, *workers)
        return airflow

    @property
    def workers(self) -> list[str]:
        """The Celery worker components (empty for LocalExecutor)."""
        return [c for c in self.components if c.startswith(WORKER_PREFIX)]

    def _executor_env(self) -> dict[str, str]:
        """Executor-specific settings: for Celery the broker, the result backend, the workers' host names,
        and task logs on the stack's S3 (workers share no disk, so the api-server reads them from there)."""
        env = {"AIRFLOW__CORE__EXECUTOR": self.executor}
        if self.executor != "CeleryExecutor":
            return env
        s = self._secrets or self._load_secrets()
        env.update({
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{s['redis_port']}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND":
                f"db+postgresql+psycopg2://airflow:airflow@127.0.0.1:{self.pg_port}/airflow_celery",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            # Airflow's own default; said here because a lost worker's task is only re-delivered after it
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "rds_slowlog.testing.airflow_stack.worker_hostname",
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{LOGS_BUCKET}/task-logs",
            "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": LOGS_CONN_ID,
            f"AIRFLOW_CONN_{LOGS_CONN_ID.upper()}": json.dumps({
                "conn_type": "aws", "login": "testing", "password": "testing",
                "extra": {"endpoint_url": self.s3_endpoint_url, "region_name": "us-east-1"}}),
        })
        return env

    @property
    def s3_endpoint_url(self) -> str | None:
        """The stack's S3 (moto) in CeleryExecutor mode: point an ``aws`` connection's S3 at it (the
        ``service_config`` extra ``{"s3": {"endpoint_url": ...}}`` keeps its other services elsewhere)."""
        if self.executor != "CeleryExecutor":
            return None
        s = self._secrets or self._load_secrets()
        return f"http://127.0.0.1:{s['moto_port']}"

    def _component_argv(self, name: str) -> list[str]:
        if name == "api-server":
            return [*self.airflow_cmd, "api-server", "--host", "127.0.0.1", "--port", str(self.port),
                    "--workers", "1"]
        s = self._secrets or self._load_secrets()
        if name == "redis":
            return ["redis-server", "--port", s["redis_port"], "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(self._component_cwd(name)), "--protected-mode", "no"]
        if name == "moto":
            return [_moto_server_cmd(), "-H", "127.0.0.1", "-p", s["moto_port"]]
        if name.startswith(WORKER_PREFIX):
            # celery node name <component>@<host name>: distinct, and what `celery inspect` shows
            return [*self.airflow_cmd, "celery", "worker", "--concurrency", str(self.worker_concurrency),
                    "--celery-hostname", f"{name}@{self.hostname_of(name)}"]
        return [*self.airflow_cmd, name]

    def hostname_of(self, worker: str) -> str:
        """The host name a Celery worker reports for the task instances it runs (REST API `hostname`)."""
        return f"{socket.gethostname()}-{worker}"

    def _component_cwd(self, name: str) -> Path:
        """Where a component starts: ``run/`` (how :func:`find_stack_processes` knows them), a worker in
        ``run/<worker>/``, its own working directory like on a machine of its own."""
        if name.startswith(WORKER_PREFIX) or name in CELERY_SERVICES:
            return self.run_dir / name
        return self.run_dir

    def worker_home(self, name: str) -> Path:
        """A Celery worker's own AIRFLOW_HOME (its task logs, its ``hostname`` file)."""
        return self.home / "workers" / name / "airflow"

    def _component_env(self, name: str) -> dict[str, str]:
        """:attr:`env`, plus for a Celery worker its own AIRFLOW_HOME, TMPDIR and log-server port."""
        env = self.env
        if name.startswith(WORKER_PREFIX):
            s = self._secrets or self._load_secrets()
            tmp = self.home / "workers" / name / "tmp"
            env.update({"AIRFLOW_HOME": str(self.worker_home(name)), "TMPDIR": str(tmp), "TMP": str(tmp),
                        "TEMP": str(tmp), "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": s[f"log_port_{name}"]})
        return env

    def _prepare_component(self, name: str) -> None:
        self._component_cwd(name).mkdir(parents=True, exist_ok=True)
        if name.startswith(WORKER_PREFIX):
            home = self.worker_home(name)
            for d in (home, home.parent / "tmp"):
                d.mkdir(parents=True, exist_ok=True)
            (home / HOSTNAME_FILE).write_text(self.hostname_of(name) + "\n")

    @property
    def url(self) -> str:
        """Base URL of the api-server (REST API, UI, execution API)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        """The Airflow UI; log in with :attr:`login`."""
        return self.url + "/"

    @property
    def login(self) -> tuple[str, str]:
        """(username, password) of the simple auth manager's only user (role admin)."""
        return USERNAME, PASSWORD

    @property
    def sql_alchemy_conn(self) -> str:
        return f"postgresql+psycopg2://airflow:airflow@127.0.0.1:{self.pg_port}/airflow"

    @property
    def airflow_env(self) -> dict[str, str]:
        """Only the stack's own variables (what ``airflow.env`` exports), ``extra_env`` included."""
        s = self._secrets or self._load_secrets()
        env = {
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder or self.airflow_home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
            "AIRFLOW__CORE__FERNET_KEY": s["fernet_key"],
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.airflow_home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__API_AUTH__JWT_SECRET": s["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": s["api_secret_key"],
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(self.refresh_interval),
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": s["worker_log_port"],
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": s["trigger_log_port"],
            **self._executor_env(),
        }
        env.update(self.extra_env)
        return env

    @property
    def env(self) -> dict[str, str]:
        """The full environment of every component; pass it to ``subprocess`` to run ``airflow`` CLI commands."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "_AIRFLOW")) and k != MARKER}
        return {**base, "PYTHONUNBUFFERED": "1", **self.airflow_env, MARKER: str(self.home)}

    def _load_secrets(self) -> dict[str, str]:
        """Secrets of this home, created once and kept: the Fernet key must keep matching the DB."""
        path = self.home / "secrets.json"
        data: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
        want: dict[str, Callable[[], str]] = {
            "jwt_secret": lambda: secrets.token_urlsafe(32),
            "api_secret_key": lambda: secrets.token_urlsafe(32),
            "fernet_key": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
        changed = False
        for key, make in want.items():
            if not data.get(key):
                data[key], changed = make(), True
        # log-server ports are per start (0 = the OS picks): stored here so attach() rebuilds the same env
        for key in self._port_keys():
            if not data.get(key):
                data[key], changed = str(free_port()), True
        if changed:
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=1))
            os.chmod(path, 0o600)
        self._secrets = data
        return data

    def _port_keys(self) -> list[str]:
        """Ports picked afresh for every start, kept in ``secrets.json`` for :meth:`attach`."""
        keys = ["worker_log_port", "trigger_log_port"]
        if self.executor == "CeleryExecutor":
            keys += ["redis_port", "moto_port", *(f"log_port_{w}" for w in self.workers)]
        return keys

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> AirflowStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop of one home across processes (two ``start`` commands at once)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @property
    def running(self) -> bool:
        """All started components are alive (health is :meth:`health`'s business)."""
        return bool(self.procs) and all(p.alive() for p in self.procs.values())

    def start(self) -> AirflowStack:
        """Start everything and wait for health; on any failure stop what was started, then raise."""
        t0 = time.monotonic()
        try:
            with self._lock():
                self._start(t0)
        except BaseException:
            self.log("start failed; stopping what was started")
            self.stop()
            raise
        self.timings["start_total"] = round(time.monotonic() - t0, 1)
        self.log(f"Airflow is up at {self.url} after {self.timings['start_total']} s "
                 f"(login {USERNAME}/{PASSWORD}; home {self.home})")
        return self

    def _start(self, t0: float) -> None:
        if find_stack_processes(self.home) or self.state_file.exists():
            self.log(f"leftovers of an earlier stack in {self.home}: stopping them first")
            self._stop_locked()
        for d in (self.home, self.airflow_home, self.logs_dir, self.run_dir, self.dags_folder):
            d.mkdir(parents=True, exist_ok=True)
        self.port = self.requested_port or free_port()
        self.pg_port = self.requested_pg_port or free_port()
        for what, port in (("api-server", self.port), ("PostgreSQL", self.pg_port)):
            if _port_in_use(port):   # fail in a second, not after db migrate with a crashed api-server
                raise StackError(f"port {port} for the {what} is in use on 127.0.0.1 (another Airflow?); "
                                 "pick another one, or 0 for a free one")
        if self.executor == "CeleryExecutor" and shutil.which("redis-server") is None:
            raise StackError("CeleryExecutor mode needs Debian's redis-server (apt-get install redis-server)")
        self._secrets = {}
        with contextlib.suppress(OSError, ValueError):   # fresh log-server ports for every start
            data = json.loads((self.home / "secrets.json").read_text())
            for key in self._port_keys():
                data.pop(key, None)
            (self.home / "secrets.json").write_text(json.dumps(data, indent=1))
        self._load_secrets()
        if not self._atexit_registered:          # safety net: a crashed caller must not leak a stack
            atexit.register(self._atexit_stop)
            self._atexit_registered = True

        self._start_postgres()
        self._write_state()
        self.timings["postgres"] = round(time.monotonic() - t0, 1)
        (self.airflow_home / "passwords.json").write_text(json.dumps({USERNAME: PASSWORD}))
        (self.home / "airflow.env").write_text(
            "# source me: set -a; . ./airflow.env; set +a  (written by rds_slowlog.testing.airflow_stack)\n"
            + "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(self.airflow_env.items())))
        os.chmod(self.home / "airflow.env", 0o600)

        services = [c for c in self.components if c in CELERY_SERVICES]
        for name in services:               # broker and S3 start while the DB is migrated
            self._spawn(name)
        t1 = time.monotonic()
        res = self.cli("db", "migrate", timeout=600, log_name="db-migrate")
        if res.returncode != 0:
            raise StackError(f"airflow db migrate failed ({res.returncode}):\n"
                             f"{_tail(self.logs_dir / 'db-migrate.log', 60)}")
        self.timings["db_migrate"] = round(time.monotonic() - t1, 1)

        t2 = time.monotonic()
        self._wait_services(services)
        for name in self.components:
            if name not in services:
                self._spawn(name)
        self._write_state()
        self._wait_healthy()
        self.timings["components_to_healthy"] = round(time.monotonic() - t2, 1)
        self._write_state()

    def _start_postgres(self) -> None:
        run_as = _pg_user() if os.geteuid() == 0 else None
        link = self.home / "pg"
        if link.is_symlink():
            link.unlink()
        if _user_can_reach(self.home, run_as):
            self.pg_root, self.pg_ephemeral = link, False
        else:   # e.g. pytest's 0700 tmp dirs: the postgres user cannot get in, so the data go to /tmp
            self.pg_root = Path(tempfile.mkdtemp(prefix="rds-slowlog-airflow-pg-", dir="/tmp"))
            self.pg_ephemeral = True
            link.symlink_to(self.pg_root)
        self.pg = _Postgres(self.pg_root, self.pg_port, str(self.home), self.log)
        self.pg.prepare_dir()
        self.pg.init()
        self.pg.start()
        self.pg.create_airflow_db(("airflow", "airflow_celery") if self.executor == "CeleryExecutor"
                                  else ("airflow",))
        self.log(f"postgres up on 127.0.0.1:{self.pg_port} (data {self.pg.data}, as {self.pg.run_as or 'me'})")

    def _spawn(self, name: str) -> None:
        log = self.logs_dir / f"{name}.log"
        self._prepare_component(name)
        with open(log, "ab") as fh:
            fh.write(f"\n===== {datetime.now(timezone.utc).isoformat()} starting {name}\n".encode())
            fh.flush()
            start = fh.tell()
            # start_new_session == setsid: the pid is the pgid, so stop() reaches every forked worker too
            popen = subprocess.Popen(self._component_argv(name), stdin=subprocess.DEVNULL, stdout=fh,
                                     stderr=subprocess.STDOUT, env=self._component_env(name),
                                     cwd=self._component_cwd(name), start_new_session=True)
        self.procs[name] = _Proc(name, popen.pid, log, popen, start)

    def _wait_services(self, names: Sequence[str], timeout: float = 60) -> None:
        """Wait for the broker and S3 to answer; then create the task-log bucket on S3."""
        deadline = time.monotonic() + timeout
        for name in names:
            while not self._component_ready(name):
                p = self.procs[name]
                if not p.alive():
                    raise StackError(f"{name} exited during start-up (log {p.log}):\n{_tail(p.log, 40)}")
                if time.monotonic() >= deadline:
                    raise StackTimeout(f"{name} not answering after {timeout:.0f} s:\n{_tail(p.log, 40)}")
                time.sleep(0.2)
        if "moto" in names:
            self.create_bucket(LOGS_BUCKET)

    def create_bucket(self, bucket: str) -> None:
        """Create a bucket on the stack's S3 (moto takes unsigned requests; an existing bucket is fine)."""
        if self.s3_endpoint_url is None:
            raise StackError("the stack has no S3 (CeleryExecutor mode only)")
        req = urllib.request.Request(f"{self.s3_endpoint_url}/{_q(bucket)}", method="PUT", data=b"")
        try:
            with urllib.request.urlopen(req, timeout=30):
                pass
        except urllib.error.HTTPError as e:
            if e.code != 409:               # BucketAlreadyOwnedByYou
                raise StackError(f"creating bucket {bucket} on moto failed: HTTP {e.code} {e.read()[:500]!r}")

    def _component_ready(self, name: str) -> bool:
        """Readiness of the components the health endpoint does not cover: the broker answers PING, moto
        answers HTTP, a Celery worker's log says ``ready.`` since its latest start."""
        s = self._secrets or self._load_secrets()
        if name == "redis":
            try:
                with socket.create_connection(("127.0.0.1", int(s["redis_port"])), timeout=2) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(64).startswith(b"+PONG")
            except OSError:
                return False
        if name == "moto":
            try:
                with urllib.request.urlopen(f"{self.s3_endpoint_url}/moto-api/data.json", timeout=5):
                    return True
            except urllib.error.HTTPError:
                return True                 # it answers
            except (OSError, ValueError):
                return False
        if name.startswith(WORKER_PREFIX):
            p = self.procs.get(name)
            if p is None or not p.alive():
                return False
            try:
                with open(p.log, "rb") as fh:
                    data = fh.read()
            except OSError:
                return False
            if not p.log_start:             # attached from another process: the latest start's output
                mark = data.rfind(f" starting {name}\n".encode())
                data = data[mark:] if mark >= 0 else data
            else:
                data = data[p.log_start:]
            return f"{name}@".encode() in data and b" ready." in data
        return True

    def kill_component(self, name: str, sig: int = signal.SIGKILL) -> list[int]:
        """Send ``sig`` (default SIGKILL: a machine that died) to a component and every process under it at
        once — its process group *and* descendants that left it (task processes ``setsid()``); returns the
        pids signalled. The component stays down until :meth:`start_component`."""
        p = self.procs.get(name)
        if p is None:
            raise StackError(f"no running component {name!r} (have {sorted(self.procs)})")
        pids = _process_tree(p.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL:
            _wait_gone(lambda: any(_alive(x) for x in pids) or p.alive(), 15)
        if p.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=5)
        self.log(f"{name}: signal {sig} to {len(pids)} process(es)")
        return pids

    def stop_component(self, name: str) -> None:
        """SIGTERM a component's group (a graceful stop: a Celery worker finishes its tasks), SIGKILL after
        ``stop_grace``."""
        p = self.procs.get(name)
        if p is None:
            return
        pids = _process_tree(p.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGTERM)
        if not _wait_gone(lambda: p.alive() or any(_alive(x) for x in pids), self.stop_grace):
            self.kill_component(name)
        elif p.popen is not None:
            p.popen.wait(timeout=5)

    def start_component(self, name: str, timeout: float | None = None) -> None:
        """(Re)start one component of a running stack with the same environment; waits until it is ready."""
        if name not in self.components:
            raise StackError(f"{name!r} is not a component of this stack ({self.components})")
        p = self.procs.get(name)
        if p is not None and p.alive():
            raise StackError(f"{name} is still running (pid {p.pid})")
        with self._lock():
            self._spawn(name)
            self._write_state()
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while name in self.unhealthy():
            if not self.procs[name].alive():
                raise StackError(f"{name} exited during start-up:\n{_tail(self.procs[name].log, 60)}")
            if time.monotonic() >= deadline:
                raise StackTimeout(f"{name} not ready after {timeout or self.start_timeout:.0f} s:\n"
                                   f"{_tail(self.procs[name].log, 40)}")
            time.sleep(0.5)

    def restart_component(self, name: str, *, kill: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL with ``kill``) and start one component again."""
        if kill:
            self.kill_component(name)
        else:
            self.stop_component(name)
        self.start_component(name)

    def health(self) -> dict[str, Any] | None:
        """``GET /api/v2/monitor/health`` (no auth), or None while the api-server does not answer."""
        try:
            with urllib.request.urlopen(self.url + "/api/v2/monitor/health", timeout=5) as resp:
                data = json.loads(resp.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def unhealthy(self, health: Mapping[str, Any] | None = None) -> list[str]:
        """Names of the stack's components (and the metadatabase) that are not healthy right now."""
        h = self.health() if health is None else health
        if h is None:
            return ["api-server"]
        bad = [] if (h.get("metadatabase") or {}).get("status") == "healthy" else ["metadatabase"]
        for name in self.components:
            key = HEALTH_KEYS.get(name)
            if key is not None and ((h.get(key) or {}).get("status") != "healthy"):
                bad.append(name)
            elif key is None and name in self.procs and not self._component_ready(name):
                bad.append(name)
        return bad

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        bad: list[str] = []
        while True:
            for p in self.procs.values():
                if not p.alive():
                    raise StackError(f"{p.name} exited during start-up (log {p.log}):\n{_tail(p.log, 60)}")
            bad = self.unhealthy()
            if not bad:
                return
            if time.monotonic() >= deadline:
                tails = "\n".join(f"----- {p.log} -----\n{_tail(p.log, 30)}" for p in self.procs.values()
                                  if p.name in bad or bad == ["api-server"])
                raise StackTimeout(f"not healthy within {self.start_timeout:.0f} s: {bad}\n{tails}")
            time.sleep(0.5)

    def _write_state(self) -> None:
        state = {
            "home": str(self.home), "url": self.url, "port": self.port, "pg_port": self.pg_port,
            "pg_root": str(self.pg_root) if self.pg_root else None, "pg_ephemeral": self.pg_ephemeral,
            "pids": {n: p.pid for n, p in self.procs.items()}, "timings": self.timings,
            "config": {
                "dags_folder": str(self.dags_folder),
                "plugins_folder": str(self.plugins_folder) if self.plugins_folder else None,
                "executor": self.executor, "parallelism": self.parallelism, "extra_env": self.extra_env,
                "components": list(self.components), "refresh_interval": self.refresh_interval,
                "airflow_cmd": self.airflow_cmd, "celery_workers": self.celery_workers,
                "worker_concurrency": self.worker_concurrency,
            },
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.state_file)

    @classmethod
    def attach(cls, home: Path | str, log: Log | None = None) -> AirflowStack:
        """The stack that a ``start`` (maybe in another process) left running in ``home``.

        Raises ``FileNotFoundError`` when ``home`` has no ``state.json``.
        """
        home = Path(home).resolve()
        state = json.loads((home / "state.json").read_text())
        cfg = state["config"]
        st = cls(home, cfg["dags_folder"], cfg["plugins_folder"], port=state["port"], pg_port=state["pg_port"],
                 executor=cfg["executor"], parallelism=cfg["parallelism"], extra_env=cfg["extra_env"],
                 components=cfg["components"], refresh_interval=cfg["refresh_interval"],
                 airflow_cmd=cfg["airflow_cmd"], log=log, celery_workers=cfg.get("celery_workers", 2),
                 worker_concurrency=cfg.get("worker_concurrency"))
        st.timings = dict(state.get("timings") or {})
        st.pg_root = Path(state["pg_root"]) if state.get("pg_root") else None
        st.pg_ephemeral = bool(state.get("pg_ephemeral"))
        if st.pg_root is not None:
            st.pg = _Postgres(st.pg_root, st.pg_port, str(home), st.log)
        ours = {pid for pid, _, _ in find_stack_processes(home, postgres=False)}
        for name, pid in state["pids"].items():
            if pid in ours:                          # pids get recycled: only ours
                st.procs[name] = _Proc(name, pid, st.logs_dir / f"{name}.log")
        return st

    def _atexit_stop(self) -> None:
        # Only for stacks this process owns (Popen children): a detached CLI start must survive its exit.
        if any(p.popen is not None for p in self.procs.values()) and not getattr(self, "_detached", False):
            with contextlib.suppress(Exception):
                self.stop()

    def detach(self) -> None:
        """Leave the stack running when this process exits (the CLI's ``start``)."""
        self._detached = True

    def stop(self) -> None:
        """SIGTERM every component's process group, SIGKILL after ``stop_grace``, then stop PostgreSQL.

        Safe to call twice, after a half-failed start, and from another process (via :meth:`attach`); it
        raises :class:`StackError` only if processes of this stack are still alive at the end.
        """
        with self._lock():
            self._stop_locked()

    def _stop_locked(self) -> None:
        t0 = time.monotonic()
        procs = list(self.procs.values())
        # Our components' groups, plus groups led by any other process of ours (orphans of an earlier start,
        # task processes that setsid()). Never a group whose leader is not ours: a `cli()` child shares the
        # caller's group, and killpg on that would hit the caller.
        found = find_stack_processes(self.home, postgres=False)
        found_pids = {pid for pid, _, _ in found}
        groups = {p.pid for p in procs} | {pgid for _, pgid, _ in found if pgid in found_pids}
        if groups:
            self.log(f"stopping Airflow components {[p.name for p in procs] or sorted(groups)}")
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)

        def airflow_left() -> bool:
            for p in procs:
                if p.popen is not None:
                    p.popen.poll()
            return bool(find_stack_processes(self.home, postgres=False))

        if not _wait_gone(airflow_left, self.stop_grace):
            left = find_stack_processes(self.home, postgres=False)
            self.log(f"{len(left)} Airflow processes ignored SIGTERM for {self.stop_grace:.0f} s: SIGKILL")
            left_pids = {pid for pid, _, _ in left}
            for pid, pgid, _ in left:
                if pgid in left_pids or pgid in groups:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pgid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            _wait_gone(airflow_left, 10)
        for p in procs:
            if p.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.popen.wait(timeout=5)
        self.timings["stop_airflow"] = round(time.monotonic() - t0, 1)

        pg = self.pg
        if pg is None:            # no state (e.g. `stop` after a crash): the data dir is home/pg
            link = self.home / "pg"
            if (link / "data" / "postmaster.pid").exists():
                pg = _Postgres(link.resolve(), self.pg_port, str(self.home), self.log)
                if link.is_symlink():     # it pointed into /tmp: remove it like a recorded ephemeral dir
                    self.pg_root, self.pg_ephemeral = link.resolve(), True
        if pg is not None and pg.postmaster_pid() is not None:
            self.log("stopping postgres")
            pg.stop()
        for pid, pgid, _ in find_stack_processes(self.home, postgres=True):   # a postmaster without pid file
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _wait_gone(lambda: bool(find_stack_processes(self.home)), 5)

        self.procs.clear()
        self._token = None
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        if self.pg_ephemeral and self.pg_root is not None:
            shutil.rmtree(self.pg_root, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (self.home / "pg").unlink()
            self.pg_root, self.pg, self.pg_ephemeral = None, None, False
        self.timings["stop"] = round(time.monotonic() - t0, 1)
        left = find_stack_processes(self.home)
        if left:
            raise StackError(f"processes of the stack in {self.home} survived SIGKILL: {left}")
        if groups or pg is not None:
            self.log(f"stopped in {self.timings['stop']} s")

    # ------------------------------------------------------------------ CLI
    def cli(self, *args: str, timeout: float = 300, check: bool = False,
            log_name: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` against the stack; stdout/stderr are captured (or go to ``logs/<log_name>.log``).

        Airflow's CLI mixes warnings into stdout: prefer :meth:`api` for anything you parse.
        """
        argv = [*self.airflow_cmd, *args]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if log_name is None:
            res = subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=self.run_dir,
                                 timeout=timeout, stdin=subprocess.DEVNULL)
        else:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            with open(self.logs_dir / f"{log_name}.log", "a") as fh:
                res = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, text=True, env=self.env,
                                     cwd=self.run_dir, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} failed ({res.returncode}):\n"
                             f"{(res.stderr or '')[-3000:]}{(res.stdout or '')[-2000:]}")
        return res

    def sql(self, query: str) -> str:
        """Run SQL on the metadata DB as ``airflow`` (``psql -tA`` output): for facts the REST API lacks."""
        if self.pg is None:
            raise StackError("the stack's PostgreSQL is not running")
        return self.pg.psql(query, db="airflow", user="airflow")

    # ------------------------------------------------------------------ REST
    def token(self) -> str:
        """A JWT from ``POST /auth/token`` (cached; :meth:`api` renews it on a 401)."""
        status, body = self._http("POST", "/auth/token", {"username": USERNAME, "password": PASSWORD}, auth=False)
        if status >= 400:
            raise AirflowApiError("POST", "/auth/token", status, body.decode(errors="replace"))
        self._token = json.loads(body)["access_token"]
        return self._token

    def _http(self, method: str, path: str, body: Any = None, *, auth: bool = True,
              params: Mapping[str, Any] | None = None, accept: str = "application/json",
              timeout: float = 60) -> tuple[int, bytes]:
        url = self.url + path
        if params:
            clean = {k: ("true" if v is True else "false" if v is False else v) for k, v in params.items()
                     if v is not None}
            url += "?" + urllib.parse.urlencode(clean, doseq=True)
        data = None if body is None else json.dumps(body, default=_iso).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self._token or self.token()}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def api(self, method: str, path: str, body: Any = None, *, params: Mapping[str, Any] | None = None,
            timeout: float = 60) -> Any:
        """Call the REST API with a bearer token; returns the parsed JSON (None for an empty body).

        ``path`` is absolute (``/api/v2/dags``) or relative to ``/api/v2/`` (``dags/my_dag``). Raises
        :class:`AirflowApiError` with the response body on HTTP errors (the body says what Airflow disliked).
        """
        if not path.startswith("/"):
            path = "/api/v2/" + path
        status, raw = self._http(method, path, body, params=params, timeout=timeout)
        if status == 401:                     # token expired (or the api-server restarted with a new secret)
            self._token = None
            status, raw = self._http(method, path, body, params=params, timeout=timeout)
        if status >= 400:
            raise AirflowApiError(method, path, status, raw.decode(errors="replace"))
        return json.loads(raw) if raw.strip() else None

    def _obj(self, method: str, path: str, body: Any = None, *,
             params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """:meth:`api` for endpoints that answer with one JSON object."""
        res = self.api(method, path, body, params=params)
        if not isinstance(res, dict):
            raise StackError(f"{method} {path}: expected a JSON object, got {type(res).__name__}")
        return res

    def _paginate(self, path: str, key: str, params: Mapping[str, Any] | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
        """All items of a list endpoint: ``[api] maximum_page_limit`` is 100, so page with offset."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.api("GET", path, params={**(params or {}), "limit": limit, "offset": len(items)})
            batch = list(page.get(key) or [])
            items.extend(batch)
            total = page.get("total_entries")
            if len(batch) < limit or (total is not None and len(items) >= total):
                return items

    def import_errors(self) -> list[dict[str, Any]]:
        """``GET /api/v2/importErrors``: every file the dag-processor failed to import, with its traceback."""
        return self._paginate("importErrors", "import_errors")

    def add_dag_file(self, src: Path | str, name: str | None = None) -> Path:
        """Copy a DAG file into the DAGs folder atomically (the dag-processor must never see half a file)."""
        src = Path(src)
        dest = self.dags_folder / (name or src.name)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return dest

    def write_dag_file(self, name: str, text: str) -> Path:
        """Write DAG source into the DAGs folder atomically; returns its path (for :meth:`wait_dag`)."""
        dest = self.dags_folder / name
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, dest)
        return dest

    def wait_dag(self, dag_id: str, timeout: float = 90, *, fileloc: Path | str | None = None,
                 unpause: bool = True) -> dict[str, Any]:
        """Wait until ``dag_id`` is parsed, listed and its file has no import error; returns the DAG.

        With ``fileloc`` (the file you wrote) an import error of that file newer than the file fails at once
        with the traceback; otherwise the import errors are reported when the wait runs out. ``unpause``
        unpauses a paused DAG (runs of a paused DAG stay queued forever).
        """
        deadline = time.monotonic() + timeout
        want = str(Path(fileloc).resolve()) if fileloc else None
        last: dict[str, Any] | None = None
        while True:
            try:
                last = self.api("GET", f"dags/{_q(dag_id)}")
            except AirflowApiError as e:
                if e.status != 404:
                    raise
                last = None
            if last is not None and not last.get("has_import_errors") and not last.get("is_stale"):
                if unpause and last.get("is_paused"):
                    last = self.api("PATCH", f"dags/{_q(dag_id)}", {"is_paused": False})
                return last
            errors = self.import_errors()
            if want is not None:
                mtime = datetime.fromtimestamp(Path(want).stat().st_mtime, timezone.utc)
                for err in errors:
                    if _same_file(err.get("filename", ""), want, self.dags_folder) and \
                            datetime.fromisoformat(err["timestamp"].replace("Z", "+00:00")) >= mtime:
                        raise StackError(f"DAG file {want} failed to import:\n{err.get('stack_trace', '')}")
            if time.monotonic() >= deadline:
                listed = "listed but its file has import errors" if last else "not listed"
                detail = "\n".join(f"--- {e.get('filename')}:\n{e.get('stack_trace', '')[-2000:]}" for e in errors)
                raise StackTimeout(
                    f"DAG {dag_id!r} {listed} after {timeout:.0f} s (dags folder {self.dags_folder}; "
                    f"dag-processor log {self.logs_dir / 'dag-processor.log'}); import errors: "
                    f"{detail or 'none'}")
            time.sleep(1.0)

    def trigger(self, dag_id: str, logical_date: datetime | str | None, run_id: str | None = None,
                conf: Mapping[str, Any] | None = None, *,
                data_interval: tuple[datetime | str, datetime | str] | None = None,
                run_after: datetime | str | None = None, note: str | None = None) -> str:
        """``POST /dags/D/dagRuns``; returns the run id.

        A manual run with logical date X covers the timetable's interval that ends at X (``[X-1h, X)`` for an
        hourly ``CronDataIntervalTimetable``): assert on ``data_interval_*``, not on X. ``data_interval``
        overrides that inference (Airflow honours it only together with a logical date).
        """
        body: dict[str, Any] = {"logical_date": _iso(logical_date), "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        if data_interval is not None:
            body["data_interval_start"], body["data_interval_end"] = map(_iso, data_interval)
        if run_after is not None:
            body["run_after"] = _iso(run_after)
        if note is not None:
            body["note"] = note
        run = self.api("POST", f"dags/{_q(dag_id)}/dagRuns", body)
        return str(run["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run (``GET /dags/D/dagRuns/R``)."""
        return self._obj("GET", f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 180, poll: float = 1.0) -> str:
        """Wait until the run is ``success`` or ``failed``; returns that state.

        Raises :class:`StackTimeout` with the task-instance states when it takes longer.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.run(dag_id, run_id)["state"]
            if state in FINAL_RUN_STATES:
                return str(state)
            if time.monotonic() >= deadline:
                tis = ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}"
                                for t in self.task_instances(dag_id, run_id))
                raise StackTimeout(f"run {dag_id}/{run_id} still {state} after {timeout:.0f} s: {tis}")
            time.sleep(poll)

    def runs(self, dag_id: str, *, run_type: str | Sequence[str] | None = None,
             state: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
        """All runs of a DAG (paged), oldest logical date first; filter by ``run_type`` / ``state``."""
        params: dict[str, Any] = {}
        if run_type:
            params["run_type"] = [run_type] if isinstance(run_type, str) else list(run_type)
        if state:
            params["state"] = [state] if isinstance(state, str) else list(state)
        runs = self._paginate(f"dags/{_q(dag_id)}/dagRuns", "dag_runs", params)
        return sorted(runs, key=lambda r: (r.get("logical_date") or r.get("run_after") or "", r["dag_run_id"]))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, one entry per map index of mapped tasks, sorted by (task, index)."""
        tis = self._paginate(f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances", "task_instances")
        return sorted(tis, key=lambda t: (t["task_id"], t["map_index"]))

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
        """A task instance's XCom value, deserialized (what the task returned, for ``return_value``)."""
        path = f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/xcomEntries/{_q(key)}"
        return self.api("GET", path, params={"map_index": map_index, "deserialize": True})["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """The task's log as text (structured lines rendered ``timestamp level event key=value``)."""
        path = f"dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/logs/{try_number}"
        lines: list[str] = []
        token: str | None = None
        for _ in range(1000):
            page = self.api("GET", path, params={"map_index": map_index, "full_content": True, "token": token})
            for item in page.get("content") or []:
                lines.append(_render_log_line(item))
            token = page.get("continuation_token")
            if not token or not page.get("content"):
                break
        return "\n".join(lines)

    def backfill(self, dag_id: str, from_date: datetime | str, to_date: datetime | str,
                 reprocess_behavior: str | None = None, max_active_runs: int | None = None, *,
                 run_backwards: bool = False, conf: Mapping[str, Any] | None = None,
                 wait_previous: float = 120.0) -> dict[str, Any]:
        """Create a backfill (both ends inclusive) via ``POST /api/v2/backfills``; returns the backfill.

        REST rather than ``airflow backfill create``: no 4-5 s CLI start-up, a JSON answer with the backfill
        id, and errors as HTTP bodies instead of tracebacks in mixed output. Only one backfill may run per
        DAG and a finished one is only marked complete by the scheduler's 30 s check, so an unfinished earlier
        backfill of this DAG is waited for first (up to ``wait_previous`` seconds).
        """
        pending = [b for b in self.backfills(dag_id) if not b.get("completed_at")]
        if pending and wait_previous > 0:
            self.wait_backfill(dag_id, timeout=wait_previous, backfill_id=int(pending[-1]["id"]))
        body: dict[str, Any] = {"dag_id": dag_id, "from_date": _iso(from_date), "to_date": _iso(to_date),
                                "run_backwards": run_backwards}
        if reprocess_behavior is not None:
            body["reprocess_behavior"] = reprocess_behavior
        if max_active_runs is not None:
            body["max_active_runs"] = max_active_runs
        if conf is not None:
            body["dag_run_conf"] = dict(conf)
        return self._obj("POST", "backfills", body)

    def backfills(self, dag_id: str) -> list[dict[str, Any]]:
        """All backfills of a DAG, oldest first."""
        return sorted(self._paginate("backfills", "backfills", {"dag_id": dag_id}), key=lambda b: int(b["id"]))

    def wait_backfill(self, dag_id: str, timeout: float = 300, backfill_id: int | None = None) -> list[dict[str, Any]]:
        """Wait until the backfill (default: the DAG's latest) has ``completed_at`` and all its runs finished;
        returns its runs, oldest first.

        ``completed_at`` is set by the scheduler's 30 s periodic check, up to ~30 s after the last run ended:
        budget for it in ``timeout``. A backfill's runs come from the ``backfill_dag_run`` table (the REST API
        has no such listing; with ``reprocess_behavior`` an existing run is re-run in place and keeps its type).
        """
        deadline = time.monotonic() + timeout
        while True:
            bfs = self.backfills(dag_id)
            if backfill_id is not None:
                bfs = [b for b in bfs if int(b["id"]) == backfill_id]
            if not bfs:
                raise StackError(f"no backfill {backfill_id if backfill_id is not None else ''} for DAG {dag_id!r}")
            bf = bfs[-1]
            runs = self._backfill_runs(dag_id, bf)
            if bf.get("completed_at") and all(r["state"] in FINAL_RUN_STATES for r in runs):
                return runs
            if time.monotonic() >= deadline:
                states = ", ".join(f"{r['dag_run_id']}={r['state']}" for r in runs)
                raise StackTimeout(f"backfill {bf['id']} of {dag_id!r} not complete after {timeout:.0f} s "
                                   f"(completed_at={bf.get('completed_at')}); runs: {states or 'none'}")
            time.sleep(1.0)

    def _backfill_runs(self, dag_id: str, bf: Mapping[str, Any]) -> list[dict[str, Any]]:
        all_runs = self.runs(dag_id)
        try:
            ids = set(self.sql(
                "SELECT r.run_id FROM backfill_dag_run b JOIN dag_run r ON r.id = b.dag_run_id "
                f"WHERE b.backfill_id = {int(bf['id'])}").split())
            return [r for r in all_runs if r["dag_run_id"] in ids]
        except StackError:      # schema changed or no DB access: backfill runs inside the window
            lo, hi = bf["from_date"], bf["to_date"]
            return [r for r in all_runs if r["run_type"] == "backfill" and lo <= (r.get("logical_date") or "") <= hi]

    def _upsert(self, collection: str, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST`` to a collection, or ``PATCH`` the object when it exists already (409)."""
        try:
            return self._obj("POST", collection, body)
        except AirflowApiError as e:
            if e.status != 409:
                raise
            return self._obj("PATCH", f"{collection}/{_q(key)}", body)

    def create_pool(self, name: str, slots: int, description: str = "",
                    include_deferred: bool = False) -> dict[str, Any]:
        """Create or update a pool (``POST``, then ``PATCH`` if it exists): pools need no restart."""
        body = {"name": name, "slots": slots, "description": description, "include_deferred": include_deferred}
        return self._upsert("pools", name, body)

    def set_variable(self, key: str, value: Any, description: str | None = None) -> dict[str, Any]:
        """Create or update a Variable; non-strings are stored as JSON (read them with ``deserialize_json``)."""
        body = {"key": key, "value": value if isinstance(value, str) else json.dumps(value),
                "description": description}
        return self._upsert("variables", key, body)

    def set_connection(self, conn_id: str, conn_type: str, **fields: Any) -> dict[str, Any]:
        """Create or update a connection in the DB (no restart needed, unlike ``AIRFLOW_CONN_*`` env vars).

        ``fields``: host, login, password, schema, port, extra (a dict is JSON-encoded), description.
        """
        if isinstance(fields.get("extra"), Mapping):
            fields["extra"] = json.dumps(fields["extra"])
        body = {"connection_id": conn_id, "conn_type": conn_type, **fields}
        return self._upsert("connections", conn_id, body)

    def status(self) -> dict[str, Any]:
        """What runs: ``{"components": {name: alive}, "health": ..., "unhealthy": [...], "url": ...}``."""
        health = self.health()
        return {"url": self.url, "home": str(self.home),
                "components": {n: p.alive() for n, p in self.procs.items()},
                "postgres": bool(self.pg and self.pg.postmaster_pid()),
                "health": health, "unhealthy": self.unhealthy(health)}

    def info_lines(self) -> list[str]:
        """The ``KEY=value`` lines the CLI prints (shell-quoted: ``eval`` them with ``set -a``)."""
        vals = {"AIRFLOW_URL": self.url, "AIRFLOW_UI_URL": self.ui_url, "AIRFLOW_USER": USERNAME,
                "AIRFLOW_PASSWORD": PASSWORD, "AIRFLOW_STACK_HOME": str(self.home),
                "AIRFLOW_ENV_FILE": str(self.home / "airflow.env"), "AIRFLOW_DB_URL": self.sql_alchemy_conn,
                "AIRFLOW_EXECUTOR": self.executor}
        if self.s3_endpoint_url:
            vals["AIRFLOW_S3_ENDPOINT_URL"] = self.s3_endpoint_url
            vals["AIRFLOW_CELERY_WORKERS"] = " ".join(self.workers)
        return [f"{k}={shlex.quote(v)}" for k, v in vals.items()]


def _same_file(reported: str, want: str, dags_folder: Path) -> bool:
    """Import errors carry the file relative to the bundle (3.x) or absolute (older): compare both ways."""
    if not reported:
        return False
    p = Path(reported)
    return str(p if p.is_absolute() else (dags_folder / p).resolve()) == want


def _render_log_line(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    rest = " ".join(f"{k}={v}" for k, v in item.items() if k not in ("timestamp", "level", "event", "logger"))
    return " ".join(s for s in (str(item.get("timestamp", "")), str(item.get("level", "")),
                                str(item.get("event", "")), rest) if s)


def _default_airflow_cmd() -> list[str]:
    """The ``airflow`` script of the running interpreter's venv, else ``python -m airflow``."""
    exe = Path(sys.executable)
    for cand in (exe.with_name("airflow"), exe.parent / "bin" / "airflow"):
        if cand.exists():
            return [str(cand)]
    return [sys.executable, "-m", "airflow"]


# ------------------------------------------------------------------------------------------------------- CLI
def _parse_env(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env wants KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``start|stop|status`` a detached stack in ``--home`` (``scripts/airflow-stack.sh`` wraps this).

    ``start`` prints ``KEY=value`` lines on stdout (everything else goes to stderr) and leaves the stack
    running after the command exits; starting a home whose stack is healthy only prints its lines.
    """
    ap = argparse.ArgumentParser(prog="python -m rds_slowlog.testing.airflow_stack", description=main.__doc__)
    ap.add_argument("action", choices=["start", "stop", "status"])
    ap.add_argument("--home", default=os.environ.get("AIRFLOW_STACK_HOME"),
                    required=not os.environ.get("AIRFLOW_STACK_HOME"), help="stack directory ($AIRFLOW_STACK_HOME)")
    ap.add_argument("--dags", default=os.environ.get("AIRFLOW_STACK_DAGS"), help="DAGs folder (start)")
    ap.add_argument("--plugins", default=os.environ.get("AIRFLOW_STACK_PLUGINS") or None, help="plugins folder")
    ap.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_STACK_PORT", "8080")),
                    help="api-server port, 0 = a free one (default 8080)")
    ap.add_argument("--pg-port", type=int, default=0, help="PostgreSQL port (default: a free one)")
    ap.add_argument("--parallelism", type=int, default=4)
    ap.add_argument("--no-triggerer", action="store_true", help="do not run the triggerer")
    ap.add_argument("--executor", choices=["local", "celery", *EXECUTORS], default="local",
                    help="local (default) or celery: redis-server broker, moto S3, --workers Celery workers")
    ap.add_argument("--workers", type=int, default=2, help="Celery workers (--executor celery; default 2)")
    ap.add_argument("--worker-concurrency", type=int, default=None,
                    help="tasks per Celery worker (default parallelism / workers)")
    ap.add_argument("--env", action="append", default=[], metavar="K=V", help="extra variable (repeatable)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for health")
    args = ap.parse_args(argv)
    home = Path(args.home).resolve()

    if args.action == "status":
        try:
            st = AirflowStack.attach(home)
        except FileNotFoundError:
            _stderr_log(f"no stack in {home}")
            return 1
        s = st.status()
        alive = all(s["components"].values()) and len(s["components"]) == len(st.components)
        _stderr_log(f"components {s['components']}, postgres {'up' if s['postgres'] else 'down'}, "
                    f"unhealthy {s['unhealthy'] or 'none'}")
        if alive and s["postgres"] and not s["unhealthy"]:
            print("\n".join(st.info_lines()))
            return 0
        return 1

    if args.action == "stop":
        try:
            st = AirflowStack.attach(home)
        except FileNotFoundError:
            st = AirflowStack(home, home / "airflow" / "dags")     # nothing recorded: sweep by marker
        st.stop()
        return 0

    if not args.dags:
        ap.error("start needs --dags (or $AIRFLOW_STACK_DAGS)")
    with contextlib.suppress(FileNotFoundError):
        running = AirflowStack.attach(home)
        want_exec = {"local": "LocalExecutor", "celery": "CeleryExecutor"}.get(args.executor, args.executor)
        if running.running and not running.unhealthy() and running.dags_folder == Path(args.dags).resolve() \
                and running.executor == want_exec:
            _stderr_log(f"already running at {running.url}")
            print("\n".join(running.info_lines()))
            return 0
    executor = {"local": "LocalExecutor", "celery": "CeleryExecutor"}.get(args.executor, args.executor)
    st = AirflowStack(home, args.dags, args.plugins, port=args.port, pg_port=args.pg_port, executor=executor,
                      parallelism=args.parallelism, extra_env=_parse_env(args.env), triggerer=not args.no_triggerer,
                      start_timeout=args.timeout, celery_workers=args.workers,
                      worker_concurrency=args.worker_concurrency)
    try:
        st.start()
    except KeyboardInterrupt:
        return 130
    except (StackError, OSError) as e:
        _stderr_log(f"ERROR: {e}")
        return 1
    st.detach()
    print("\n".join(st.info_lines()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
