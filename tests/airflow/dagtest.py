"""Helpers for ``dag.test()`` runs of the hourly DAG: a DAG folder with its own configuration, and one run in a
fresh interpreter (``dagtest_runner.py``; Airflow reads its settings once per process)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("dagtest_runner.py")


def write_dags(tmp_path: Path, instances: Mapping[str, tuple[str, str]], stem: str, /,
               **overrides: Any) -> tuple[Path, str]:
    """``tmp_path/dags`` with the project's DAG file and a config for ``instances`` (id → (log, engine)) under a
    fresh index prefix ``<stem>-<hex>``; ``overrides`` replace config keys (``knobs`` is merged)."""
    prefix = f"{stem}-{uuid.uuid4().hex[:8]}"
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / "rds_slowlog_hourly.py", dags)
    cfg = json.loads((ROOT / "dags" / "rds_slowlog.json").read_text())
    cfg["instances"] = [{"id": i, "engine": e} for i, (_, e) in instances.items()]
    cfg.update({"index_prefix": prefix, "staging": (tmp_path / "staging").as_uri(), "rds_retention_hours": 1e6,
                "retries": 0, "grace_minutes": 1})
    for k, v in overrides.items():
        if k == "knobs":
            cfg["knobs"].update(v)
        else:
            cfg[k] = v
    (dags / "rds_slowlog.json").write_text(json.dumps(cfg))
    return dags, prefix


def run_dag(env: Mapping[str, str], dags: Path, window_end_hour: float, mark_success: str | None = None,
            timeout: float = 900) -> dict[str, Any]:
    """``dag.test`` of a manual run whose window is the hour before ``window_end_hour`` (its logical date);
    tasks matching ``mark_success`` are marked successful without running."""
    logical = datetime.fromtimestamp(window_end_hour, timezone.utc).isoformat()
    args = [sys.executable, str(RUNNER), str(dags), logical] + ([mark_success] if mark_success else [])
    p = subprocess.run(args, env={**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}, capture_output=True, text=True,
                       timeout=timeout)
    line = next((x for x in p.stdout.splitlines() if x.startswith("DAGTEST-RESULT ")), None)
    assert line is not None, p.stdout[-3000:] + p.stderr[-5000:]
    out = json.loads(line.split(" ", 1)[1])
    out["log"] = p.stdout + p.stderr
    return out


def states(result: Mapping[str, Any]) -> Counter:
    return Counter((ti["task_id"], ti["state"]) for ti in result["tis"])
