"""Throwaway MariaDB and PostgreSQL servers for tests and for ``bench/make_logs.py``.

Why this exists: a parser is only proven on logs that real servers wrote, and the cases that break
parsers (``# Time:`` written in the server's local zone, many entries per second and thread, prepared
statements, huge statements) only appear when a real server runs a real workload. Starting such a server
by hand is fiddly and easy to get wrong in ways that leak (a datadir left in /tmp, a mariadbd that
outlives the test, a PostgreSQL that refuses to run as root), so the lifecycle lives here, once.

What the servers look like, and why:

* :class:`MariaDB` is Debian's ``mariadbd`` on a **unix socket only** (``--skip-networking``: nothing to
  collide with, nothing reachable from outside) with a **fresh datadir in a temp dir**, slow log at
  ``long_query_time=0`` into a file the caller chooses (so the log survives the server).
* :class:`Postgres` is PostgreSQL 15 on ``127.0.0.1`` and a free port, logging every statement with the RDS
  ``log_line_prefix``; as root it runs as ``nobody``, because ``postgres`` refuses to run as root.
* Both are context managers: the server is shut down cleanly, then SIGTERM, then SIGKILL, and the temp dir
  removed, also when start-up fails half-way. Servers get their own session (``start_new_session``), so a
  Ctrl-C in the terminal reaches the caller, who then stops them in ``finally``.

Only the standard library is used: ``bench/make_logs.py`` runs without the package's dependencies.

Typical use in a test::

    from rds_slowlog.testing.dbservers import MariaDB, missing_tools, run, sysbench_command

    if missing_tools("mariadbd", "sysbench"):
        pytest.skip(...)
    with MariaDB(tmp_path / "slow.log", "query_plan,explain", env={"TZ": "Asia/Kolkata"}) as db:
        db.query("CREATE DATABASE sbtest")
        run(sysbench_command("oltp_read_write", db.sysbench_args("root", ""), ["--tables=1"], "prepare"))
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "MARIADBD", "PG_BIN", "RDS_PG_PREFIX", "MariaDB", "Postgres", "ToolMissing", "free_port", "missing_tools",
    "require", "run", "stop_process", "sysbench_command",
]

#: Debian's MariaDB server binary (``apt-get install mariadb-server``).
MARIADBD = "/usr/sbin/mariadbd"
#: Debian's PostgreSQL 15 binaries (``apt-get install postgresql-15``); not on ``PATH`` there.
PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: The ``log_line_prefix`` RDS for PostgreSQL uses (and that our PostgreSQL parser defaults to).
RDS_PG_PREFIX = "%t:%r:%u@%d:[%p]:"

Log = Callable[[str], None]


def _stderr_log(msg: str) -> None:
    """Default progress sink: stderr, so a caller's stdout (a summary, a JSON line) stays clean."""
    print(f"[dbservers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class ToolMissing(RuntimeError):
    """A server or client program is not installed; tests skip on it, scripts turn it into a message."""


def _which(name: str | Path) -> str | None:
    return shutil.which(str(name))


def missing_tools(*names: str | Path) -> list[str]:
    """The ones of ``names`` that are not installed (empty when all are): for ``pytest.skip`` messages.

    ``"mariadbd"`` is looked up as :data:`MARIADBD` too, because Debian puts it in ``/usr/sbin``, which is
    not on a normal user's ``PATH``.
    """
    out = []
    for name in names:
        if _which(name) is None and not (str(name) == "mariadbd" and _which(MARIADBD)):
            out.append(str(name))
    return out


def require(name: str | Path) -> str:
    """Full path of an installed program; :class:`ToolMissing` (with the apt packages to install) if not."""
    exe = _which(name)
    if exe is None:
        raise ToolMissing(f"{name} not found (apt-get install mariadb-server sysbench postgresql-15)")
    return exe


def run(cmd: Sequence[str], *, input_text: str | None = None, check: bool = True, quiet: bool = True,
        user: str | None = None, timeout: float | None = None,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a client program; on failure raise with its stderr, because that is what explains the failure.

    ``quiet`` captures stdout/stderr (the default: a workload driver prints a lot); ``check=False`` is for
    scripts whose errors are part of the workload (failed statements are wanted in a slow log).
    """
    res = subprocess.run(list(cmd), input=input_text, text=True, capture_output=quiet, user=user,
                         timeout=timeout, env=None if env is None else dict(env))
    if check and res.returncode != 0:
        raise RuntimeError(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr or ''}"[-4000:])
    return res


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (good enough for a private test server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """Wait for a server we asked to shut down; escalate to SIGTERM then SIGKILL so nothing is left.

    A clean shutdown first, because it flushes the log we want to keep; the signals only so that a hung
    server cannot outlive the caller.
    """
    for sig, wait in ((None, grace), (signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            return
        if sig is not None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def sysbench_command(test: str, connection: Sequence[str], options: Sequence[str] = (),
                     action: str = "run", *, exe: str = "sysbench") -> list[str]:
    """``sysbench TEST <connection> <options> ACTION`` as an argv list.

    ``connection`` comes from :meth:`MariaDB.sysbench_args`; the order (connection first, action last) is
    the one sysbench's own docs use, and keeping it fixed makes recorded commands comparable across runs.
    """
    return [exe, test, *connection, *options, action]


# ----------------------------------------------------------------------------------------------- MariaDB
class MariaDB:
    """A throwaway mariadbd: temp datadir, unix socket only, slow log to a chosen file.

    :param slow_log: where the slow log goes (outside the temp dir, so it survives the server).
    :param verbosity: ``--log-slow-verbosity`` (e.g. ``"query_plan,explain"``).
    :param admin_statements: add ``--log-slow-admin-statements`` (ALTER, OPTIMIZE, … in the log).
    :param extra_args: more ``mariadbd`` options, appended last (so they win over the defaults).
    :param env: variables set for the server process on top of ``os.environ`` — e.g. ``{"TZ": …}``:
        MariaDB writes ``# Time:`` in the server's local time, so this is how a test gets a non-UTC log.
    :param log: progress sink (default: stderr).
    """

    def __init__(self, slow_log: Path, verbosity: str, *, admin_statements: bool = True,
                 extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 log: Log | None = None) -> None:
        self.slow_log = slow_log
        self.verbosity = verbosity
        self.admin_statements = admin_statements
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.log = log or _stderr_log
        self.tmp = Path(tempfile.mkdtemp(prefix="rds-slowlog-mariadb-"))
        self.socket = self.tmp / "mysqld.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = ""
        self.command: list[str] = []  # the mariadbd argv, for provenance records

    def __enter__(self) -> MariaDB:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        if _which(MARIADBD) is None:
            raise ToolMissing(f"{MARIADBD} not found (apt-get install mariadb-server)")
        is_root = os.geteuid() == 0
        me = pwd.getpwuid(os.geteuid()).pw_name
        datadir = self.tmp / "data"
        run([require("mariadb-install-db"), "--no-defaults", f"--user={me}", f"--datadir={datadir}",
             "--auth-root-authentication-method=normal", "--skip-test-db"])
        cmd = [MARIADBD, "--no-defaults", f"--datadir={datadir}", f"--socket={self.socket}",
               f"--pid-file={self.tmp / 'mysqld.pid'}", "--skip-networking", f"--log-error={self.tmp / 'error.log'}",
               "--slow-query-log", f"--slow-query-log-file={self.slow_log}", "--long-query-time=0",
               f"--log-slow-verbosity={self.verbosity}", "--innodb-buffer-pool-size=256M",
               # a *log* generator, not a durability test: don't let fsync pace the workload
               "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin"]
        if self.admin_statements:
            cmd.append("--log-slow-admin-statements")
        if is_root:
            cmd.append("--user=root")
        cmd += self.extra_args
        self.command = cmd
        env = {**os.environ, **self.env} if self.env else None
        err = open(self.tmp / "mariadbd.out", "wb")
        self.proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        err.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.tmp / "error.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"mariadbd exited early:\n{tail}")
            ping = subprocess.run(self.admin_command("ping"), capture_output=True, text=True)
            if ping.returncode == 0:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("mariadbd did not become ready in 60 s")
        self.version = self.query("SELECT VERSION()").strip()
        self.log(f"mariadbd {self.version} up (socket {self.socket}, slow log {self.slow_log})")

    def admin_command(self, *args: str) -> list[str]:
        """``mariadb-admin`` argv as root over the socket (ping, shutdown, refresh, flush-status, …)."""
        return ["mariadb-admin", "--no-defaults", f"--socket={self.socket}", "-uroot", *args]

    def client(self, user: str = "root", password: str = "", database: str = "") -> list[str]:
        """``mariadb`` client argv; ``--comments`` keeps ``/* … */`` in the statements the log records,
        ``--force`` keeps a script going past errors (failed statements are wanted in a slow log)."""
        cmd = ["mariadb", "--no-defaults", f"--socket={self.socket}", f"--user={user}", "--comments", "--force"]
        if password:
            cmd.append(f"--password={password}")
        if database:
            cmd.append(f"--database={database}")
        return cmd

    def query(self, sql: str, **kw: str) -> str:
        """Run ``sql`` (``-e``) and return tab-separated rows without a header; raises on error."""
        return run([*self.client(**kw), "-N", "-B", "-e", sql]).stdout

    def script(self, sql: str, **kw: str) -> None:
        """Run a multi-statement script in one session; errors are wanted (``--force`` keeps going)."""
        run(self.client(**kw), input_text=sql, check=False)

    def sysbench_args(self, user: str, password: str, database: str = "sbtest") -> list[str]:
        """sysbench's connection options for this server (see :func:`sysbench_command`)."""
        return ["--db-driver=mysql", f"--mysql-socket={self.socket}", f"--mysql-user={user}",
                f"--mysql-password={password}", f"--mysql-db={database}"]

    def __exit__(self, *exc: object) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                subprocess.run(self.admin_command("shutdown"), capture_output=True, timeout=60)
                stop_process(self.proc)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


# -------------------------------------------------------------------------------------------- PostgreSQL
class Postgres:
    """A throwaway PostgreSQL 15 with the RDS log prefix; runs as ``nobody`` when we are root.

    Every statement is logged (``log_min_duration_statement=0``) to ``logfile`` inside the temp dir, with
    timestamps in UTC like RDS. Set :attr:`keep` before leaving the ``with`` block and call
    :meth:`take_log` to keep the log, then remove :attr:`tmp` yourself.

    :param settings: more ``-c`` settings, applied after (and so overriding) the defaults.
    :param log: progress sink (default: stderr).
    """

    def __init__(self, *, settings: Mapping[str, str] | None = None, log: Log | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="rds-slowlog-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_as = "nobody" if os.geteuid() == 0 else None
        self.logfile = self.tmp / "log" / "postgresql.log"
        self.version = ""
        self.keep = False  # set once the caller wants the log out before the temp dir goes
        self.extra_settings = dict(settings or {})
        self.log = log or _stderr_log

    def __enter__(self) -> Postgres:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        if not (PG_BIN / "postgres").exists():
            raise ToolMissing(f"{PG_BIN / 'postgres'} not found (apt-get install postgresql-15)")
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        os.chmod(self.tmp, 0o700)
        data = self.tmp / "data"
        env = {**os.environ, "LC_ALL": "C"}
        res = subprocess.run([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                              "--locale=C", "--no-sync"], capture_output=True, text=True, user=self.run_as,
                             env=env, cwd=self.tmp)
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed: {res.stderr[-3000:]}")
        settings = {
            "listen_addresses": "127.0.0.1", "port": str(self.port), "unix_socket_directories": str(self.tmp),
            "log_min_duration_statement": "0", "log_line_prefix": RDS_PG_PREFIX, "log_destination": "stderr",
            "logging_collector": "on", "log_directory": str(self.tmp / "log"), "log_filename": "postgresql.log",
            "log_rotation_age": "0", "log_rotation_size": "0", "log_file_mode": "0644",
            # like RDS defaults: errors are logged with their STATEMENT, timestamps in UTC
            "log_min_error_statement": "error", "log_timezone": "UTC", "timezone": "UTC",
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "50",
            **self.extra_settings,
        }
        cmd = [str(PG_BIN / "postgres"), "-D", str(data)]
        for k, v in settings.items():
            cmd += ["-c", f"{k}={v}"]
        out = open(self.tmp / "postmaster.out", "wb")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, user=self.run_as, env=env,
                                     cwd=self.tmp, start_new_session=True)
        out.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited early:\n"
                                   + (self.tmp / "postmaster.out").read_text(errors="replace")[-3000:])
            ok = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                                 "-U", "postgres", "-d", "postgres"])
            if ok.returncode == 0:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("postgres did not become ready in 60 s")
        self.version = self.psql("SHOW server_version", quiet=True).strip()
        self.log(f"postgres {self.version} up on 127.0.0.1:{self.port} (as {self.run_as or 'current user'})")

    def conn(self, user: str = "postgres", db: str = "postgres") -> list[str]:
        """libpq connection options (``-h -p -U -d``) for psql/pgbench."""
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", db]

    def psql(self, sql: str, user: str = "postgres", db: str = "postgres", *, quiet: bool = False,
             appname: str = "psql") -> str:
        """Run SQL through psql in one session (errors wanted in the log, so ON_ERROR_STOP is off).

        ``quiet=True`` raises on a non-zero exit (for setup statements that must work); ``appname`` becomes
        ``application_name``, which the log records.
        """
        env = {**os.environ, "PGAPPNAME": appname}
        res = subprocess.run([str(PG_BIN / "psql"), *self.conn(user, db), "-X", "-q", "-t", "-A"], input=sql,
                             text=True, capture_output=True, env=env)
        if quiet and res.returncode != 0:
            raise RuntimeError(f"psql failed: {res.stderr}")
        return res.stdout

    def pgbench(self, args: Sequence[str], user: str, db: str) -> None:
        """Run ``pgbench`` against this server; raises with its stderr on failure."""
        run([str(PG_BIN / "pgbench"), *self.conn(user, db), *args])

    def __exit__(self, *exc: object) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)  # "fast" shutdown
                stop_process(self.proc)
        finally:
            # the logging collector is a child of the postmaster and exits with it
            if not self.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def take_log(self, dest: Path) -> None:
        """Move the log out of the server's private dir (call after the server stopped)."""
        shutil.move(str(self.logfile), dest)
        os.chown(dest, os.geteuid(), os.getegid())
        os.chmod(dest, 0o644)
