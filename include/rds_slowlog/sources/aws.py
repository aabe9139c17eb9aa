"""botocore clients for the log sources: adaptive retries, long read timeouts, every failed attempt logged.

One place for what the RDS and CloudWatch Logs sources (and the Airflow hooks, whose clients come from
connections) share, so retry policy and retry logging cannot drift apart between services.

Throttling is worth minutes of patience; an endpoint that cannot be connected to at all (connection refused,
no route, a name that does not resolve, a connect timeout) is not: botocore would retry it like any transient
error (``max_attempts`` times, with backoff up to 20 s: about a minute), and the sources used to retry that
again on top. Clients built here (or passed through :func:`register_retry_logging`) give up on such an endpoint
after :data:`CONNECT_ATTEMPTS` attempts with a :data:`CONNECT_TIMEOUT` connect timeout, the sources never
retry it themselves (:func:`is_unreachable`), and :func:`describe_unreachable` words it for a user.
"""
from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Collection, Iterator
from typing import Any, Final

log = logging.getLogger(__name__)

#: Seconds to open a TCP connection (AWS endpoints answer in milliseconds; 5 s covers two SYN retransmits).
CONNECT_TIMEOUT: Final = 5
#: Attempts, the first included, at an endpoint that cannot be connected to (other errors: ``max_attempts``).
CONNECT_ATTEMPTS: Final = 3
_REFUSED_ERRNOS: Final = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})

#: botocore's event-name service id per client service name.
_EVENT_SERVICE = {"rds": "rds", "logs": "cloudwatch-logs"}
_LABEL = {"rds": "RDS", "logs": "CloudWatch Logs", "s3": "S3"}


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
    """Log each failed attempt of ``client`` (also for clients built elsewhere, e.g. by an Airflow hook), and
    give up on an endpoint that cannot be connected to after :data:`CONNECT_ATTEMPTS` attempts
    (:func:`fail_fast_when_unreachable`)."""
    service = client.meta.service_model.service_name
    event = _EVENT_SERVICE.get(service, service)
    client.meta.events.register(f"needs-retry.{event}",
                                failed_attempt_logger(_LABEL.get(service, service), retried_codes),
                                unique_id=f"rds_slowlog.retry_log.{event}")
    fail_fast_when_unreachable(client)


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc``, the error botocore wrapped (``kwargs["error"]``) and the ``__cause__``/``__context__`` chain."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        wrapped = (getattr(e, "kwargs", None) or {}).get("error")
        todo.extend(x for x in (wrapped, e.__cause__, e.__context__) if isinstance(x, BaseException))


def _refused(exc: BaseException) -> bool:
    """A refused connection (or no route to the host) somewhere in ``exc``'s chain."""
    return any(isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) in _REFUSED_ERRNOS
               or "connection refused" in str(e).lower() for e in _causes(exc))


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says no connection to the endpoint could be opened: refused, no route, DNS failure or
    connect timeout (botocore ``EndpointConnectionError``, ``ConnectTimeoutError``, ``ProxyConnectionError``,
    or a ``ConnectionClosedError`` caused by a refused connection). Throttling, read timeouts and connections
    reset mid-answer are not."""
    try:
        from botocore.exceptions import (ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError,
                                         ProxyConnectionError)
    except ImportError:  # pragma: no cover - botocore is a dependency of every source that calls this
        return False
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)):
        return True
    return isinstance(exc, ConnectionClosedError) and _refused(exc)


def describe_unreachable(exc: BaseException, label: str = "the endpoint") -> str:
    """``cannot connect to <label> <endpoint url> (<why>)``, credentials in the URL (if any) redacted."""
    from rds_slowlog.target import redact

    kwargs = getattr(exc, "kwargs", None) or {}
    url = kwargs.get("endpoint_url") or kwargs.get("proxy_url") or ""
    chain = list(_causes(exc))
    text = " ".join(str(e) for e in chain).lower()
    errnos = {getattr(e, "errno", None) for e in chain}
    if errno.ECONNREFUSED in errnos or "connection refused" in text:
        why = "connection refused"
    elif any("ConnectTimeout" in type(e).__name__ for e in chain) or "timed out" in text:
        why = "connect timeout"
    elif errnos & {errno.EHOSTUNREACH, errno.ENETUNREACH}:
        why = "host or network unreachable"
    elif any(type(e).__name__ in ("gaierror", "NameResolutionError") for e in chain) or "resolve" in text:
        why = "the host name does not resolve"
    else:
        why = type(kwargs.get("error") or exc).__name__
    where = f"{label} {redact(url)}" if url else label
    return f"cannot connect to {where} ({why})"


def fail_fast_when_unreachable(client: Any, limit: int = CONNECT_ATTEMPTS) -> None:
    """Stop botocore retrying a call of ``client`` once ``limit`` attempts (the first included) could not
    even connect to the endpoint.

    A ``needs-retry`` handler registered first: for an :func:`is_unreachable` error at the ``limit``-th attempt
    it raises that error (what botocore raises when its own attempts are used up, only sooner); any other
    outcome is left to botocore's retry handler, so throttling keeps its adaptive retries.
    """
    event = client.meta.service_model.service_id.hyphenize()
    label = _LABEL.get(client.meta.service_model.service_name, event)

    def give_up_when_unreachable(attempts: int = 0, caught_exception: BaseException | None = None,
                                 operation: Any = None, **_: Any) -> None:
        if caught_exception is not None and attempts >= limit and is_unreachable(caught_exception):
            log.info("%s %s: %s after %d attempt(s); not retried", label, getattr(operation, "name", "?"),
                        describe_unreachable(caught_exception), attempts)
            raise caught_exception

    client.meta.events.register_first(f"needs-retry.{event}", give_up_when_unreachable,
                                      unique_id=f"rds_slowlog.fail_fast.{event}")


def make_client(service: str, region: str | None = None, endpoint_url: str | None = None, *,
                max_attempts: int = 10, read_timeout: int = 60, session: Any = None,
                retried_codes: Collection[str] | None = None, **config: Any) -> Any:
    """A boto3 client with adaptive retries; ``max_attempts`` counts the first try (an endpoint that cannot be
    connected to gets :data:`CONNECT_ATTEMPTS`, with a :data:`CONNECT_TIMEOUT` s connect timeout).

    Credentials come from the standard AWS chain through ``session`` (a ``boto3.Session``; default: new).
    ``config`` goes to ``botocore.config.Config`` and overrides these defaults.
    """
    import boto3
    from botocore.config import Config

    # total_max_attempts counts the first try; botocore's "max_attempts" key would mean retries (+1)
    cfg: dict[str, Any] = {"retries": {"mode": "adaptive", "total_max_attempts": max_attempts},
                           "read_timeout": read_timeout, "connect_timeout": CONNECT_TIMEOUT}
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
