# rds-slowlog — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := .ci/constraints.txt

.PHONY: install demo demo-index search-up search-down test test-fast conformance bench bench-logs bench-index clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[airflow,test]"
	touch $(STAMP)

install: $(STAMP)

## demo: parse the bundled sample logs and print a pt-query-digest-style report
demo: install
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

## test: the whole suite (conformance tests skip cleanly without ../shared or the reference tools)
test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow and not conformance"

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

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
