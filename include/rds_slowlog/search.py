"""The search engine: building a client, telling its kind, raw requests — and what a client's errors mean.

Everything that talks to Elasticsearch or OpenSearch takes a client built here (or by the Airflow hooks):
``elasticsearch.Elasticsearch`` 8/9 or ``opensearchpy.OpenSearch``. The two libraries differ in how a request is
sent and how an HTTP error is raised; :func:`raw_request` and the error helpers hide that, so that
:mod:`rds_slowlog.templates`, :mod:`rds_slowlog.indexing` and the CLI never look at a library's internals.
Neither library is imported until a client is built or a request is made.

The target URL itself (parsing, redaction, asking a server its kind over plain HTTP) is
:mod:`rds_slowlog.target`.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from rds_slowlog.target import parse_target

__all__ = ["ENGINES", "build_client", "resolve_engine", "raw_request", "status_of", "refused_status",
           "is_connection_failure"]

ENGINES: Final = ("elasticsearch", "opensearch")


def resolve_engine(client: Any, engine: str = "auto") -> str:
    """``elasticsearch`` or ``opensearch``; ``auto`` looks at the client's class (no request)."""
    if engine in ENGINES:
        return engine
    if engine != "auto":
        raise ValueError(f"engine must be one of {ENGINES} or 'auto', got {engine!r}")
    for cls in type(client).__mro__:
        mod = cls.__module__.split(".", 1)[0]
        if mod == "elasticsearch":
            return "elasticsearch"
        if mod == "opensearchpy":
            return "opensearch"
    raise ValueError(f"cannot tell the engine of a {type(client).__name__} client; pass engine=")


def raw_request(client: Any, engine: str, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None) -> tuple[int, Any]:
    """``(HTTP status, parsed body)`` of one request; HTTP errors are returned, not raised."""
    if engine == "elasticsearch":
        from elasticsearch import ApiError

        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = "application/json"
        try:
            resp = client.perform_request(method, path, params=params, headers=headers, body=body)
        except ApiError as e:
            return e.meta.status, e.body
        return resp.meta.status, resp.body
    from opensearchpy.exceptions import TransportError

    try:
        resp = client.transport.perform_request(method, path, params=params, body=body)
    except TransportError as e:
        if isinstance(e.status_code, int):
            return e.status_code, e.info
        raise
    return 200, resp


def build_client(engine: str, url: str, *, username: str | None = None, password: str | None = None,
                 api_key: str | None = None, verify_certs: bool = True, ca_certs: str | None = None,
                 http_compress: bool = True, timeout: float = 60.0) -> Any:
    """A client for ``url`` (``scheme://[user:password@]host:port[/prefix]``).

    Credentials in the URL win over the keyword arguments; they are removed from the URL handed to the client
    so they never show up in its ``repr`` or in connection-error messages. The URL is read by
    :func:`rds_slowlog.target.parse_target`: the userinfo ends at the *last* ``@`` (unencoded ``@ : / # ?`` in a
    password are fine), a URL without a scheme is a :class:`~rds_slowlog.target.TargetError` (a ``ValueError``).
    TLS certificates are verified unless ``verify_certs=False``.
    """
    target = parse_target(url)
    if target.username is not None:
        username, password = target.username, target.password or ""
    clean = target.url()
    if engine == "elasticsearch":
        from elasticsearch import Elasticsearch

        kw: dict[str, Any] = {"verify_certs": verify_certs, "http_compress": http_compress,
                              "request_timeout": timeout}
        if ca_certs:
            kw["ca_certs"] = ca_certs
        if api_key:
            kw["api_key"] = api_key
        elif username is not None:
            kw["basic_auth"] = (username, password or "")
        return Elasticsearch(clean, **kw)
    if engine == "opensearch":
        from opensearchpy import OpenSearch

        okw: dict[str, Any] = {"use_ssl": target.scheme == "https", "verify_certs": verify_certs,
                               "http_compress": http_compress, "timeout": timeout}
        if ca_certs:
            okw["ca_certs"] = ca_certs
        if api_key:
            okw["headers"] = {"authorization": f"ApiKey {api_key}"}
        elif username is not None:
            okw["http_auth"] = (username, password or "")
        return OpenSearch([clean], **okw)
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


# ------------------------------------------------------------------------------------------- client errors

def status_of(e: BaseException) -> int | None:
    """The HTTP status a client library's exception carries (``meta.status`` on Elasticsearch,
    ``status_code`` on OpenSearch), or None when the server did not answer."""
    meta = getattr(e, "meta", None)
    status = getattr(meta, "status", None)
    if not isinstance(status, int):
        status = getattr(e, "status_code", None)
    return status if isinstance(status, int) else None


def _causes(e: BaseException | None) -> Iterator[BaseException]:
    """``e`` and the exceptions it was raised from or while handling (each once)."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def refused_status(e: BaseException) -> int | None:
    """401 or 403 when ``e`` (or what it was raised from, e.g. the client error behind a
    :class:`~rds_slowlog.exceptions.BulkRequestRejected`) is the server refusing the credentials, else None."""
    for c in _causes(e):
        status = status_of(c)
        if status is None:
            status = getattr(c, "status", None)
        if status in (401, 403):
            return status
    return None


def is_connection_failure(e: BaseException) -> bool:
    """Whether ``e`` is the client library failing to reach the server (no HTTP answer at all)."""
    if status_of(e) is not None:
        return False
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"ConnectionError", "ConnectionTimeout", "TlsError", "SSLError"})
