"""Airflow hooks that turn an AWS connection into one of the core's log sources.

Deliberately thin: the Amazon provider's hooks already resolve an ``aws`` connection (keys or role, region,
``endpoint_url`` and botocore ``config_kwargs`` from the extras — the RDS emulator and moto are used through
``endpoint_url``), and the core sources do everything else. What the hooks add is the client configuration
the sources rely on: adaptive retries with enough attempts, a long read timeout for 1 MB RDS portions, and a log
line per retry. Connection-level ``config_kwargs`` still win over those defaults.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.providers.amazon.aws.hooks.rds import RdsHook

from rds_slowlog.airflow.session import SharedSession, client_config

if TYPE_CHECKING:
    from rds_slowlog.sources.cloudwatch import CloudWatchLogSource
    from rds_slowlog.sources.objectstore import ObjectStoreLogSource
    from rds_slowlog.sources.rds import RdsLogSource

__all__ = ["CloudWatchSlowLogHook", "RdsSlowLogHook", "object_storage_log_source"]


class RdsSlowLogHook(SharedSession, RdsHook):
    """:class:`RdsHook` that also builds an :class:`~rds_slowlog.sources.rds.RdsLogSource`.

    :param aws_conn_id: the AWS connection (``aws_default``); its ``endpoint_url`` extra points the RDS client
        (and the complete-file REST download) at another endpoint, e.g. ``rds-slowlog rds-emulator``.
    :param max_attempts: botocore attempts per call, the first included (adaptive mode).
    """

    hook_name = "RDS slow-query logs"

    def get_slowlog_client(self) -> Any:
        """A boto3 RDS client from the connection, tuned for log downloads (not cached, unlike ``conn``)."""
        from rds_slowlog.sources.aws import register_retry_logging

        client = self.get_client_type(region_name=self.region_name,
                                      config=client_config(self, self.max_attempts, 120))
        register_retry_logging(client)
        return client

    def get_log_source(self, instance: str, engine: str | None = None, **kwargs: Any) -> RdsLogSource:
        """The instance's slow logs; ``kwargs`` go to :class:`RdsLogSource` (``api_version``, ``pace``…)."""
        from rds_slowlog.sources.rds import RdsLogSource

        client = self.get_slowlog_client()
        # sign the complete-file REST call with the connection's credentials (no private botocore access)
        kwargs.setdefault("credentials", self.get_session(region_name=self.region_name).get_credentials())
        return RdsLogSource(client, instance, engine, **kwargs)


class CloudWatchSlowLogHook(SharedSession, AwsLogsHook):
    """:class:`AwsLogsHook` that also builds a :class:`~rds_slowlog.sources.cloudwatch.CloudWatchLogSource`."""

    hook_name = "RDS slow-query logs in CloudWatch Logs"

    def get_slowlog_client(self) -> Any:
        """A boto3 ``logs`` client from the connection with adaptive retries and retry logging."""
        from rds_slowlog.sources.cloudwatch import register_retry_logging

        client = self.get_client_type(region_name=self.region_name,
                                      config=client_config(self, self.max_attempts, 60))
        register_retry_logging(client)
        return client

    def get_log_source(self, instance: str | None = None, engine: str | None = None, *,
                       cluster: str | None = None, **kwargs: Any) -> CloudWatchLogSource:
        """The slow-log streams of ``instance`` (or Aurora ``cluster``); ``kwargs`` go to the source."""
        from rds_slowlog.sources.cloudwatch import CloudWatchLogSource

        return CloudWatchLogSource(self.get_slowlog_client(), instance, engine, cluster=cluster, **kwargs)


def object_storage_log_source(location: Any, engine: str | None = None, *, conn_id: str | None = None,
                              **kwargs: Any) -> ObjectStoreLogSource:
    """An :class:`ObjectStoreLogSource` over an ``ObjectStoragePath`` (or a URL made into one).

    ``s3://bucket/prefix`` with ``conn_id`` becomes ``ObjectStoragePath("s3://bucket/prefix", conn_id=…)``,
    whose filesystem (s3fs, from ``apache-airflow-providers-amazon[s3fs]``) takes credentials and
    ``endpoint_url`` from that Airflow connection.
    """
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from rds_slowlog.sources.objectstore import ObjectStoreLogSource

    if not isinstance(location, ObjectStoragePath):
        location = ObjectStoragePath(str(location), conn_id=conn_id)
    return ObjectStoreLogSource(location, engine, **kwargs)
