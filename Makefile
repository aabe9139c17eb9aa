# rds-slowlog — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := .ci/constraints.txt

.PHONY: install demo demo-down demo-digest demo-index search-up search-down airflow-up airflow-up-celery airflow-down airflow-status test test-fast test-load conformance bench bench-logs bench-index bench-dag clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[airflow,test,stack]"
	touch $(STAMP)

install: $(STAMP)

## demo: the product end to end: Elasticsearch, the RDS emulator over the bundled logs, a local Airflow
## running the hourly DAG, a backfill of the sample windows, stats and top classes read from the index
demo: install
	$(PY) scripts/demo.py

## demo-down: stop what `make demo` left running (Airflow, the RDS emulator, Elasticsearch)
demo-down: install
	$(PY) scripts/demo.py down

## demo-digest: no servers: parse the bundled sample logs and print a pt-query-digest-style report
demo-digest: install
	$(VENV)/bin/rds-slowlog digest include/sample_logs/*.log --limit 10

## demo-index: start a real local Elasticsearch, index the samples, show the top classes from the index
demo-index: install
	@eval "export $$(scripts/search-engine.sh start elasticsearch)" && \
	  $(VENV)/bin/rds-slowlog index include/sample_logs/*.log --instance demo --target "$$ES_URL" && \
	  $(PY) bench/top_queries.py "$$ES_URL"

## search-up / search-down: a real single-node Elasticsearch (ENGINE=opensearch for OpenSearch)
ENGINE ?= elasticsearch
search-up:
	@scripts/search-engine.sh start $(ENGINE)
search-down:
	@scripts/search-engine.sh stop $(ENGINE)

## airflow-up / airflow-down: a private local Airflow (PostgreSQL + api-server, scheduler, dag-processor,
## triggerer) on dags/ and plugins/; AIRFLOW_STACK_HOME / AIRFLOW_STACK_PORT override home and port
airflow-up: install
	@scripts/airflow-stack.sh start
airflow-down:
	@scripts/airflow-stack.sh stop
airflow-status:
	@scripts/airflow-stack.sh status
## airflow-up-celery: the same stack as MWAA runs it: CeleryExecutor, redis broker, moto S3, 2 workers that share
## no disk (stop it with airflow-down)
airflow-up-celery: install
	@scripts/airflow-stack.sh start --executor celery --workers 2

## test: the whole suite (conformance tests skip cleanly without ../shared or the reference tools)
test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow and not conformance"

## test-load: 24-window backfill of >= 1.6 GiB of real logs on the CeleryExecutor stack (~25 min here; not in `make test`)
test-load: install bench-logs
	$(PY) -m pytest -q -s -m load tests/load

conformance: install
	$(PY) bench/mysql_conformance.py
	$(PY) bench/postgres_conformance.py
	$(PY) bench/fingerprint_conformance.py

bench-logs: install
	$(PY) bench/make_logs.py

## bench: throughput and peak RSS against pt-query-digest and pgBadger on >= 200 MB real logs
bench: install bench-logs
	$(PY) bench/run.py

bench-index: install
	$(PY) bench/index_bench.py

## bench-dag: one window of a >= 200 MB real log through the real scheduler (LocalExecutor), next to
## `rds-slowlog index` of the same file and a raw `_bulk` of the same documents, in one run
bench-dag: install bench-logs
	$(PY) bench/dag_bench.py

## mwaa-bundle: dist/mwaa/ for Amazon MWAA (plugins.zip, requirements.txt, dags/, DEPLOY.md, IAM policy);
## MWAA_PYTHON=3.11 builds it for Python 3.11 instead of MWAA's 3.12
MWAA_PYTHON ?= 3.12
.PHONY: mwaa-bundle
mwaa-bundle: install
	$(PY) scripts/mwaa_bundle.py --python-version $(MWAA_PYTHON)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
