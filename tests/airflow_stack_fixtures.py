"""One real Airflow deployment (:class:`~rds_slowlog.testing.airflow_stack.AirflowStack`) per test session,
shared by every test module that asks for it.

Why shared: a stack costs ~15-35 s to start (PostgreSQL, ``db migrate``, four components) and ~6-10 s to stop;
starting one per module would dominate the suite. So there is one session-wide stack with a session-wide DAGs
folder, into which each module copies its own DAG files.

Use from a test module (like ``search_fixtures``, import the fixture; the shared state lives in this module,
so importing it into several modules still gives ONE stack)::

    from airflow_stack_fixtures import airflow_stack_factory  # noqa: F401

    @pytest.fixture(scope="module")
    def stack(airflow_stack_factory):
        st = airflow_stack_factory(dag_files=[HERE / "dags" / "mymod_dag.py"],
                                   extra_env={"AIRFLOW_CONN_MYMOD_ES": "http://127.0.0.1:9200"})
        st.wait_dag("mymod_dag", fileloc=st.dags_folder / "mymod_dag.py")
        return st

Rules that make sharing work:

* **Unique names**: the DAGs folder is shared, so DAG ids and file names must be unique across modules (prefix
  them with the module's name). Files stay for the whole session.
* **Environment**: ``extra_env`` is merged into the running stack's environment. A new key, or a key with a
  different value, restarts the stack once with the merged environment (~45 s), because Airflow reads its
  environment only at start. To avoid restarts, use unique keys and pass everything a module needs in one
  call, or create runtime objects instead: ``st.set_connection``, ``st.set_variable``, ``st.create_pool``
  need no restart. ``plugin_files`` likewise restart (the api-server loads plugins at start).
* **Other runs exist**: each ``catchup=False`` DAG gets one scheduled run as soon as it is parsed; identify
  your runs by run id (``trigger(..., run_id=...)``) or ``run_type``, never by "the latest run".
* **Stopping is allowed**: a test may ``stop()`` the stack (``tests/testing/test_airflow_stack.py`` checks
  that nothing is left behind); the factory starts a fresh one for the next module that asks.
* With pytest-xdist every worker is its own session and so gets its own stack (all ports are picked free).

Prerequisites (PostgreSQL 15 binaries, psycopg2, asyncpg): a developer's machine without them SKIPS these
tests with the install command; under CI (``CI`` set, as ``.ci/run`` runs) they FAIL instead, because there
a missing prerequisite is a broken install step, not a choice.
"""
from __future__ import annotations

import filecmp
import importlib.util
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from rds_slowlog.testing.airflow_stack import PG_BIN, AirflowStack

StackFactory = Callable[..., AirflowStack]


def missing_prerequisites(celery: bool = False) -> list[str]:
    """What a local Airflow stack (``celery``: in CeleryExecutor mode) needs that this machine lacks."""
    missing = []
    if celery:
        if shutil.which("redis-server") is None:
            missing.append("redis-server (apt-get install redis-server)")
        for mod, pkg in (("airflow.providers.celery", "apache-airflow-providers-celery"),
                         ("moto.server", "moto[server]"), ("s3fs", "apache-airflow-providers-amazon[s3fs]")):
            if importlib.util.find_spec(mod.split(".")[0]) is None or importlib.util.find_spec(mod) is None:
                missing.append(f"{mod} (make install: {pkg})")
    if not (PG_BIN / "postgres").exists():
        missing.append(f"{PG_BIN}/postgres (apt-get install postgresql)")
    for mod, pkg in (("airflow", "apache-airflow"), ("psycopg2", "psycopg2-binary"), ("asyncpg", "asyncpg")):
        if importlib.util.find_spec(mod) is None:
            missing.append(f"{mod} (make install: {pkg})")
    return missing


def require_stack_prerequisites(celery: bool = False) -> None:
    """Skip (locally) or fail (under CI) when the stack cannot run here."""
    missing = missing_prerequisites(celery)
    if missing:
        msg = "a local Airflow stack needs: " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


class SharedAirflowStack:
    """The session's stack and its folders; :meth:`get` is what the factory fixture hands out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dags = root / "dags"
        self.plugins = root / "plugins"
        self.home = root / "home"
        for d in (self.dags, self.plugins):
            d.mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {}
        self.stack: AirflowStack | None = None
        self.starts = 0

    def _copy_plugins(self, plugin_files: Iterable[Path | str]) -> bool:
        changed = False
        for f in map(Path, plugin_files):
            dest = self.plugins / f.name
            if not dest.exists() or not filecmp.cmp(f, dest, shallow=False):
                shutil.copyfile(f, dest)
                changed = True
        return changed

    def get(self, dag_files: Iterable[Path | str] = (), extra_env: Mapping[str, str] | None = None,
            plugin_files: Iterable[Path | str] = ()) -> AirflowStack:
        """The running shared stack with ``dag_files`` copied into its DAGs folder (restarted if needed)."""
        wanted = {**self.env, **{str(k): str(v) for k, v in (extra_env or {}).items()}}
        plugins_changed = self._copy_plugins(plugin_files)
        st = self.stack
        healthy = st is not None and st.running and not st.unhealthy()
        if not healthy or wanted != self.env or plugins_changed:
            if st is not None:
                st.stop()
            self.env = wanted
            st = self.stack = AirflowStack(self.home, self.dags, self.plugins, port=0, pg_port=0,
                                           extra_env=self.env)
            self.starts += 1
            st.start()
        assert st is not None
        for f in dag_files:
            st.add_dag_file(f)
        return st

    def close(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack = None


_SHARED: SharedAirflowStack | None = None


def release_shared_stack() -> None:
    """Stop the session's shared stack now (the factory starts a fresh one for the next module that asks).

    For modules that run a stack of their own (the CeleryExecutor one): two deployments at once on two cores
    would slow both down for nothing.
    """
    if _SHARED is not None:
        _SHARED.close()


@pytest.fixture(scope="session")
def airflow_stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """``factory(dag_files=(), extra_env=None, plugin_files=()) -> AirflowStack``: the session's one stack."""
    global _SHARED
    require_stack_prerequisites()
    if _SHARED is None:
        _SHARED = SharedAirflowStack(tmp_path_factory.mktemp("airflow-stack"))
    yield _SHARED.get
    if _SHARED is not None:       # every importing module's copy of this fixture ends here; the first one stops
        _SHARED.close()


@pytest.fixture(scope="session")
def airflow_stack(airflow_stack_factory: StackFactory) -> AirflowStack:
    """The shared stack with no files of its own (copy DAGs in with ``add_dag_file``)."""
    return airflow_stack_factory()
