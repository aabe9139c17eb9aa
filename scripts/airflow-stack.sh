#!/usr/bin/env bash
# airflow-stack.sh -- a private local Airflow 3 deployment (PostgreSQL 15 + api-server + scheduler +
# dag-processor + triggerer, LocalExecutor) for the demo, CI and manual testing.
#
#   scripts/airflow-stack.sh start  [--home DIR] [--dags DIR] [--plugins DIR] [--port N] [--env K=V ...]
#                                   [--executor local|celery] [--workers N] [--worker-concurrency N]
#   scripts/airflow-stack.sh status [--home DIR]      # exit 0 when every component runs and health is green
#   scripts/airflow-stack.sh stop   [--home DIR]      # SIGTERM, then SIGKILL; stops PostgreSQL; leaves nothing
#
#   set -a; eval "$(scripts/airflow-stack.sh start)"; set +a   # AIRFLOW_URL, AIRFLOW_USER, ... in this shell
#   set -a; . "$AIRFLOW_ENV_FILE"; set +a                      # then `airflow dags list` talks to the stack
#
# `start` waits until /api/v2/monitor/health is green, prints KEY=value lines on stdout (AIRFLOW_URL,
# AIRFLOW_UI_URL, AIRFLOW_USER/AIRFLOW_PASSWORD = admin/admin, AIRFLOW_STACK_HOME, AIRFLOW_ENV_FILE,
# AIRFLOW_DB_URL, AIRFLOW_EXECUTOR) and returns; the stack keeps running until `stop`. Progress goes to stderr.
# Starting a home whose stack is already healthy (same DAGs folder and executor) only prints its lines.
#
# --executor celery runs it as MWAA does: CeleryExecutor with Debian's redis-server as broker (loopback, no
# persistence), moto_server as the stack's S3 (task logs go there; AIRFLOW_S3_ENDPOINT_URL is printed) and
# --workers (default 2) `airflow celery worker` processes, each with its own AIRFLOW_HOME, working directory,
# TMPDIR, log-server port and host name, so they share no disk. Point an aws connection's S3 at
# AIRFLOW_S3_ENDPOINT_URL (extra {"service_config": {"s3": {"endpoint_url": ...}}}) for s3:// staging.
#
# Defaults (why: one command from a fresh clone): --home ${AIRFLOW_STACK_HOME:-${TMPDIR:-/tmp}/rds-slowlog-airflow},
# --dags the repo's dags/, --plugins the repo's plugins/, --port ${AIRFLOW_STACK_PORT:-8080} (0 = a free one).
# Python: $PYTHON, else the repo's .venv (make install), else python3. Everything else is in
# include/rds_slowlog/testing/airflow_stack.py (the same code the tests use).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export AIRFLOW_STACK_HOME=${AIRFLOW_STACK_HOME:-${TMPDIR:-/tmp}/rds-slowlog-airflow}
export AIRFLOW_STACK_DAGS=${AIRFLOW_STACK_DAGS:-$ROOT/dags}
export AIRFLOW_STACK_PLUGINS=${AIRFLOW_STACK_PLUGINS:-$ROOT/plugins}

if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then
    PY=$ROOT/.venv/bin/python
else
    PY=python3
fi

case "${1:-}" in
start | stop | status) ;;
*)
    echo "usage: $0 start|stop|status [--home DIR] [--dags DIR] [--plugins DIR] [--port N] [--env K=V ...]" \
        "[--executor local|celery] [--workers N] [--worker-concurrency N]" >&2
    exit 2
    ;;
esac

# the package lives in include/ (installed editable by `make install`; PYTHONPATH covers a bare checkout)
export PYTHONPATH="$ROOT/include${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m rds_slowlog.testing.airflow_stack "$@"
