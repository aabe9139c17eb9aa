"""botocore clients for the log sources: adaptive retries, long read timeouts, every failed attempt logged.

One place for what the RDS and CloudWatch Logs sources (and the Airflow hooks, whose clients come from
connections) share, so retry policy and retry logging cannot drift apart between services.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

log = logging.getLogger(__name__)

#: botocore's event-name service id per client service name.
_EVENT_SERVICE = {"rds": "rds", "logs": "cloudwatch-logs"}
_LABEL = {"rds": "RDS", "logs": "CloudWatch Logs"}


def failed_attempt_logger(label: str, retried_codes: Collection[str] | None = None) -> Callable[..., None]:
    """A botocore ``needs-retry`` hook that logs each failed attempt; botocore decides about the retry.

    ``retried_codes`` limits logging to error codes botocore retries (None: any error code or 5xx).
    """

    def hook(attempts: int = 0, response: Any = None, caught_exception: Any = None, operation: Any = None,
             **_: Any) -> None:
        reason = None
        if caught_exception is not None:
            reason = type(caught_exception).__name__
        elif response is not None:
            http, parsed = response
            status = getattr(http, "status_code", 200)
            code = (parsed or {}).get("Error", {}).get("Code") or ""
            if status >= 500 or (code and (retried_codes is None or code in retried_codes)):
                reason = code or f"HTTP {status}"
        if reason is not None:
            log.info("%s %s attempt %d failed (%s); botocore retries if attempts remain",
                     label, getattr(operation, "name", "?"), attempts, reason)

    return hook


def register_retry_logging(client: Any, retried_codes: Collection[str] | None = None) -> None:
    """Log each failed attempt of ``client`` (also for clients built elsewhere, e.g. by an Airflow hook)."""
    service = client.meta.service_model.service_name
    event = _EVENT_SERVICE.get(service, service)
    client.meta.events.register(f"needs-retry.{event}",
                                failed_attempt_logger(_LABEL.get(service, service), retried_codes),
                                unique_id=f"rds_slowlog.retry_log.{event}")


def make_client(service: str, region: str | None = None, endpoint_url: str | None = None, *,
                max_attempts: int = 10, read_timeout: int = 60, session: Any = None,
                retried_codes: Collection[str] | None = None, **config: Any) -> Any:
    """A boto3 client with adaptive retries; ``max_attempts`` counts the first try.

    Credentials come from the standard AWS chain through ``session`` (a ``boto3.Session``; default: new).
    ``config`` goes to ``botocore.config.Config`` and overrides these defaults.
    """
    import boto3
    from botocore.config import Config

    # total_max_attempts counts the first try; botocore's "max_attempts" key would mean retries (+1)
    cfg: dict[str, Any] = {"retries": {"mode": "adaptive", "total_max_attempts": max_attempts},
                           "read_timeout": read_timeout, "connect_timeout": 20}
    cfg.update(config)
    session = session or boto3.Session()
    client = session.client(service, region_name=region, endpoint_url=endpoint_url, config=Config(**cfg))
    register_retry_logging(client, retried_codes)
    return client


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (None for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def retry_attempts(obj: Any) -> int:
    """How many retries botocore made for a response (or a ClientError's response)."""
    meta = obj.get("ResponseMetadata", {}) if isinstance(obj, dict) else {}
    try:
        return int(meta.get("RetryAttempts", 0) or 0)
    except (TypeError, ValueError):
        return 0
