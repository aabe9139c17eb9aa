from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from rds_slowlog import __version__
from rds_slowlog.airflow.get_provider_info import get_provider_info


def test_entry_point_is_registered() -> None:
    eps = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("rds_slowlog.")]
    assert len(eps) == 1
    assert eps[0].load() is get_provider_info


def test_provider_info_shape() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-rds-slowlog"
    assert info["versions"] == [__version__]


def test_airflow_providers_manager_discovers_the_provider(tmp_path) -> None:
    # A fresh interpreter so Airflow's settings come from this AIRFLOW_HOME, not from other tests.
    code = ("from airflow.providers_manager import ProvidersManager; "
            "print('airflow-provider-rds-slowlog' in ProvidersManager().providers)")
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.strip().splitlines()[-1] == "True", r.stderr[-2000:]


def test_core_does_not_import_airflow() -> None:
    code = ("import sys, rds_slowlog.cli, rds_slowlog.pipeline, rds_slowlog.digest, rds_slowlog.documents, "
            "rds_slowlog.staging, rds_slowlog.parsers.mysql, rds_slowlog.parsers.postgres; "
            "print(any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr
