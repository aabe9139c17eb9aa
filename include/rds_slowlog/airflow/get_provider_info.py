"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

Kept import-free (no Airflow import) because Airflow calls it while discovering providers.
"""
from __future__ import annotations

from typing import Any

from rds_slowlog import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-rds-slowlog",
        "name": "RDS slow-query logs",
        "description": "Turns AWS RDS slow-query logs (MySQL, MariaDB, Aurora MySQL, PostgreSQL) into "
                       "aggregated, searchable Elasticsearch/OpenSearch documents.",
        "versions": [__version__],
        "hooks": [
            {
                "integration-name": "RDS slow-query logs",
                "python-modules": ["rds_slowlog.airflow.hooks", "rds_slowlog.airflow.hooks_rds",
                                   "rds_slowlog.airflow.hooks_s3"],
            }
        ],
        "integrations": [
            {
                "integration-name": "RDS slow-query logs",
                "external-doc-url": "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_LogAccess.html",
                "tags": ["aws", "database", "logging"],
            }
        ],
    }
