"""The Airflow hook behind ``s3://<conn_id>@bucket/…`` staging, archive and dead-letter URLs.

Thin over the Amazon provider's :class:`S3Hook`: it resolves the ``aws`` connection (keys or role, region, the
``s3`` ``endpoint_url`` of ``service_config``) and this hook hands the core a :class:`~rds_slowlog.s3store.S3Store`
over a boto3 client from the task's shared session (:mod:`rds_slowlog.airflow.session`), so a stage task's S3
and RDS clients share one botocore loader.
"""
from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from rds_slowlog.airflow.session import SharedSession, client_config

__all__ = ["S3StagingHook"]


class S3StagingHook(SharedSession, S3Hook):
    """:class:`S3Hook` that also builds the core's :class:`~rds_slowlog.s3store.S3Store`.

    :param aws_conn_id: the AWS connection (``aws_default``).
    :param max_attempts: botocore attempts per call, the first included (adaptive mode).
    """

    hook_name = "RDS slow-log staging on S3"

    def get_store(self) -> Any:
        """An :class:`~rds_slowlog.s3store.S3Store` over a client with the log sources' policy: adaptive
        retries, each failed attempt logged, an endpoint that refuses connections given up after a few attempts
        (the task fails and Airflow's retry tries again later, rather than botocore for minutes)."""
        from rds_slowlog.s3store import S3Store
        from rds_slowlog.sources.aws import register_retry_logging

        client = self.get_client_type(region_name=self.region_name,
                                      config=client_config(self, self.max_attempts, 60))
        register_retry_logging(client)
        return S3Store(client)
