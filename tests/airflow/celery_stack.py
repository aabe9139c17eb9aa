"""The hourly DAG's CeleryExecutor deployment as the tests set it up (``test_dag_celery.py`` and the load test
``tests/load/test_load.py``): one place, so the two prove things about the same deployment.

What a deployment has here: the project's :class:`~rds_slowlog.testing.airflow_stack.AirflowStack` in Celery
mode (two workers that share no disk), ONE ``aws_default`` connection aimed at the RDS emulator and the stack's
moto S3 (botocore per-service endpoints through the amazon provider's ``service_config`` extra), a search
connection, the DAG's search pool, the repo's DAG file with the test's configuration file beside it, and the
scheduler's own run of the latest hour (``catchup=False``; the logs hold none of it) out of the way.
"""
from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_stack_fixtures import release_shared_stack, require_stack_prerequisites

from rds_slowlog.testing.airflow_stack import AirflowStack

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def rds_emulator(logs: dict[str, Any]) -> Iterator[Any]:
    """The RDS emulator serving the instances of ``logs`` (``hourly_logs``' shape: ``root``, ``instances``)."""
    from rds_slowlog.testing.rds_emulator import InstanceSpec, RdsEmulator

    specs = {inst: InstanceSpec(root=logs["root"] / inst, engine=e) for inst, (_, e) in logs["instances"].items()}
    with RdsEmulator(specs) as emu:
        yield emu


@contextmanager
def search_server_in_background(**kwargs: Any) -> Iterator[concurrent.futures.Future[Any]]:
    """A private Elasticsearch (``SearchServer(**kwargs)``) starting in a thread: the future gives the running
    server. It starts while the stack starts — the two slowest set-up steps need not wait for each other."""
    from rds_slowlog.testing.search_server import SearchServer

    srv = SearchServer("elasticsearch", **kwargs)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    started = pool.submit(srv.start)
    try:
        yield started
    finally:
        try:
            started.result(timeout=600)
        finally:
            srv.close()
            pool.shutdown()


@contextmanager
def celery_stack(root: Path, emulator: Any, *, bucket: str, dag_id: str,
                 search: Callable[[], tuple[str, str, str | None, str | None]],
                 write_config: Callable[[AirflowStack], None], pool_slots: int,
                 extra_env: dict[str, str] | None = None, timeout: float = 300) -> Iterator[AirflowStack]:
    """A running Celery deployment of the hourly DAG (see the module docstring), stopped on exit.

    ``search()`` → ``(conn_id, url, login, password)`` of the search engine, called once the stack is up (so a
    server starting in the background can finish meanwhile); ``write_config(stack)`` writes the DAG's first
    configuration into the DAGs folder before the DAG file is added.
    """
    require_stack_prerequisites(celery=True)
    release_shared_stack()
    dags = root / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    st = AirflowStack(root / "home", dags, port=0, pg_port=0, executor="CeleryExecutor", parallelism=4,
                      celery_workers=2, extra_env=extra_env, start_timeout=max(180.0, timeout))
    st.start()
    try:
        st.create_bucket(bucket)
        st.set_connection("aws_default", "aws", login="testing", password="testing", extra={
            "region_name": "us-east-1",
            "service_config": {"rds": {"endpoint_url": emulator.endpoint_url},
                               "s3": {"endpoint_url": st.s3_endpoint_url}}})
        conn_id, url, login, password = search()
        from urllib.parse import urlsplit

        u = urlsplit(url)
        st.set_connection(conn_id, "elasticsearch", host=u.hostname, port=u.port, schema=u.scheme, login=login,
                          password=password)
        st.create_pool("rds_slowlog_search", pool_slots)
        write_config(st)
        st.add_dag_file(ROOT / "dags" / "rds_slowlog_hourly.py")
        st.wait_dag(dag_id, timeout=timeout, fileloc=dags / "rds_slowlog_hourly.py")
        deadline = time.monotonic() + timeout
        while not (sched := st.runs(dag_id, run_type="scheduled")) and time.monotonic() < deadline:
            time.sleep(1)
        for r in sched:
            st.wait_run(dag_id, r["dag_run_id"], timeout=timeout)
        yield st
    finally:
        st.stop()
