"""
### RDS slow-query logs → Elasticsearch / OpenSearch, one hour at a time

Every hour, for each configured (or tag-discovered) RDS instance and the window `[H, H+1)`:
**list** the instance's log files for the window → **stage** them (download, parse, fingerprint, chunk; one
mapped task per instance-window) → **index** the chunks (mapped per group of chunks, in the
`rds_slowlog_search` pool) → **summarize** (stats, top query classes, run and per-class history documents,
an Asset event) → **clean up** (the window's staging, indices past retention).

Configuration: `rds_slowlog.json` beside this file (see the README); every further `rds_slowlog_<name>.json`
there makes one more DAG, `rds_slowlog_hourly_<name>` (another region, account or search cluster).
Connections are Airflow connections (`aws_default`, `elasticsearch_default` / `opensearch_default`). Backfill
with `airflow backfill create --dag-id rds_slowlog_hourly --from-date … --to-date …`; reruns overwrite, never
duplicate (deterministic document ids).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, task

from rds_slowlog.airflow.config import dag_settings
from rds_slowlog.airflow.operators import (IndexSlowLogChunksOperator, ListSlowLogFilesOperator,
                                           SlowLogRetentionOperator, StageSlowLogOperator,
                                           SummarizeSlowLogOperator)

HERE = Path(__file__).resolve().parent


def hourly_dag(dag_id: str, config: str) -> DAG:
    """The hourly DAG for one configuration file (read here only for its DAG-level settings)."""
    settings = dag_settings(config)
    with DAG(
        dag_id=dag_id,
        doc_md=__doc__,
        schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=settings["max_active_runs"],
        tags=["rds", "slow-log", "elasticsearch"],
        default_args={
            "retries": settings["retries"],
            "retry_delay": timedelta(seconds=settings["retry_delay_seconds"]),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=10),
        },
    ) as dag:
        wait = TimeDeltaSensor(
            task_id="wait_for_rotation",
            delta=timedelta(minutes=settings["grace_minutes"]),
            deferrable=True,
            doc_md="Wait a grace delay after the window closes, so its last entries are written and rotated.",
        )
        listed = ListSlowLogFilesOperator(task_id="list_files", config_path=config)
        staged = StageSlowLogOperator.partial(
            task_id="stage", config_path=config, map_index_template="{{ slowlog_label }}",
        ).expand(spec=listed.output)

        @task(trigger_rule="none_failed")
        def plan_index(stage_results: list[dict] | None) -> list[dict]:
            """Install the index templates once for the run and cut the staged chunks into index tasks."""
            from rds_slowlog.airflow.config import load_config
            from rds_slowlog.airflow.operators import install_index_templates, plan_index_groups

            results = [r for r in (stage_results or []) if r]
            groups = plan_index_groups(results, load_config(config).knobs.chunks_per_index_task)
            if groups:
                install_index_templates(config)
            return groups

        indexed = IndexSlowLogChunksOperator.partial(
            task_id="index", config_path=config, pool=settings["pool"], map_index_template="{{ slowlog_label }}",
        ).expand(group=plan_index(staged.output))
        summary = SummarizeSlowLogOperator(
            task_id="summarize", stage_results=staged.output, index_results=indexed.output, config_path=config,
            # a name without a URI scheme: no provider lookup while the file is parsed
            outlets=[Asset(f"{dag_id}_windows")], trigger_rule="none_failed",
        )
        cleanup = SlowLogRetentionOperator(
            task_id="cleanup", stage_results=staged.output, config_path=config, trigger_rule="none_failed",
        )
        wait >> listed
        indexed >> summary >> cleanup
    return dag


for _config in sorted(HERE.glob("rds_slowlog*.json")):
    _name = _config.stem[len("rds_slowlog"):].lstrip("_")
    _dag_id = "rds_slowlog_hourly" + (f"_{_name}" if _name else "")
    globals()[_dag_id] = hourly_dag(_dag_id, str(_config))
