"""rds-slowlog: RDS slow-query logs to Elasticsearch/OpenSearch.

The package root is the pure core (no Airflow import); ``rds_slowlog.airflow`` is the thin Airflow layer.
"""
from __future__ import annotations

__version__ = "0.1.0"
