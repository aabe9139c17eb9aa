"""Thin hooks: build an Elasticsearch/OpenSearch client from an Airflow connection and call the core indexer.

Connections (both auth styles, TLS verified by default):

* ``elasticsearch_default`` (conn type ``elasticsearch``), read by apache-airflow-providers-elasticsearch's
  ``ElasticsearchSQLHook``: host, port, schema ``http``/``https``; login/password for basic auth, or
  ``{"api_key": "<base64 id:key>"}`` in the extras; other extras (``ca_certs``, ``verify_certs``,
  ``http_compress``, ``request_timeout``) go to the ``Elasticsearch`` client as they are. elasticsearch-py
  verifies certificates unless the extras say ``"verify_certs": false``.
* ``opensearch_default`` (conn type ``opensearch``), read by apache-airflow-providers-opensearch's
  ``OpenSearchHook``: host, port, login/password or ``{"api_key": …}``; extras ``use_ssl``, ``verify_certs``,
  ``ca_certs``, ``http_compress``, ``timeout``. Unlike ``OpenSearchHook`` (which defaults ``verify_certs`` to
  false) we verify unless the extras explicitly say ``"verify_certs": false``.

Neither hook reads its connection before :meth:`get_conn` is called, so DAG parsing touches no connection.
:meth:`check_connection` is the DAG's first-task preflight: a missing connection, an unreachable server, a
certificate that does not verify and refused credentials each fail it with a message naming the connection
and the cause, before anything is downloaded or indexed.
"""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch
    from opensearchpy import OpenSearch

    from rds_slowlog.indexing import BulkOptions
    from rds_slowlog.stats import Stats


class SearchConnectionError(ConnectionError):
    """The search connection cannot be used; the message names the connection, the server and the cause."""


def _tls_failure(e: BaseException) -> str | None:
    """The certificate-verification message anywhere in ``e``'s chain (client errors wrap urllib3's, which
    wrap ``ssl``'s), or None when ``e`` is not a verification failure."""
    import re
    import ssl

    seen: set[int] = set()
    c: BaseException | None = e
    while c is not None and id(c) not in seen:
        seen.add(id(c))
        if isinstance(c, ssl.SSLCertVerificationError):
            return c.verify_message or str(c)
        for inner in getattr(c, "errors", ()) or ():
            if isinstance(inner, BaseException):
                found = _tls_failure(inner)
                if found:
                    return found
        c = c.__cause__ or c.__context__
    m = re.search(r"certificate verify failed:? ?([^()\n]*)", str(e), re.I)
    return (m.group(1).strip() or "certificate verify failed") if m else None


class _IndexHookMixin:
    engine: str
    conn_name_attr: str

    def get_conn(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _where(self) -> str:
        """``scheme://host:port`` of the connection (never its credentials)."""
        conn = self.get_connection(getattr(self, self.conn_name_attr))  # type: ignore[attr-defined]
        if self.engine == "opensearch":
            scheme = "https" if conn.extra_dejson.get("use_ssl") else "http"
        else:
            scheme = conn.schema or "http"
        return f"{scheme}://{conn.host}:{conn.port}"

    def check_connection(self, prefix: str = "rds-slowlog") -> None:
        """Raise :class:`SearchConnectionError` unless the server answers this connection's credentials.

        Why a read of our index templates and not cluster health: it needs only the privilege a run needs
        anyway (``manage_index_templates``), so a least-privilege user passes, and it touches no index.
        Certificate verification is never turned off to get an answer: a failure says so and how to fix it.
        """
        from rds_slowlog.search import is_connection_failure, raw_request, refused_status

        conn_id = getattr(self, self.conn_name_attr)
        try:
            where = self._where()
        except Exception as e:
            if type(e).__name__ == "AirflowNotFoundException":
                raise SearchConnectionError(f"the {self.engine} connection '{conn_id}' is not defined "
                                            f"(add it as an Airflow connection): {e}") from None
            raise
        try:
            status, body = raw_request(self.client, self.engine, "GET", f"/_index_template/{prefix}*")
        except Exception as e:
            tls = _tls_failure(e)
            if tls is not None:
                raise SearchConnectionError(
                    f"TLS certificate verification failed for {self.engine} at {where} (connection '{conn_id}'): "
                    f"{tls}. Set the connection's extra 'ca_certs' to the CA bundle (PEM) that signed the "
                    f"server's certificate; verification stays on") from e
            status = refused_status(e)
            if status is None and is_connection_failure(e):
                raise SearchConnectionError(f"cannot reach {self.engine} at {where} (connection '{conn_id}'): "
                                            f"{str(e)[:300]}") from e
            if status is None:
                raise
        if status in (401, 403):
            raise SearchConnectionError(f"{self.engine} at {where} refused the credentials of connection "
                                        f"'{conn_id}' (HTTP {status})")
        if status not in (200, 404):
            raise SearchConnectionError(f"{self.engine} at {where} (connection '{conn_id}') answered HTTP {status} "
                                        f"to a read of the index templates: {str(body)[:300]}")

    @cached_property
    def client(self) -> Any:
        return self.get_conn()

    def install_templates(self, prefix: str = "rds-slowlog", replicas: int | None = None) -> dict[str, str]:
        """Install the component and index templates for ``prefix`` (idempotent); ``replicas`` fixes
        ``number_of_replicas`` (default: auto-expand 0-1)."""
        from rds_slowlog.templates import install_templates

        return install_templates(self.client, prefix=prefix, engine=self.engine, replicas=replicas)

    def index_chunk(self, url: str, options: BulkOptions | None = None) -> Stats:
        """Index one staged chunk; see :func:`rds_slowlog.indexing.index_chunk`."""
        from rds_slowlog.indexing import index_chunk

        return index_chunk(self.client, url, engine=self.engine, options=options)


class ElasticsearchIndexHook(_IndexHookMixin, BaseHook):
    """Elasticsearch client from an ``elasticsearch`` connection, for the rds-slowlog indexer.

    .. seealso:: ``airflow.providers.elasticsearch.hooks.elasticsearch.ElasticsearchSQLHook``
    :param elasticsearch_conn_id: the connection id (default ``elasticsearch_default``).
    """

    conn_name_attr = "elasticsearch_conn_id"
    default_conn_name = "elasticsearch_default"
    conn_type = "elasticsearch"
    hook_name = "RDS slow-log indexer (Elasticsearch)"
    engine = "elasticsearch"

    def __init__(self, elasticsearch_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.elasticsearch_conn_id = elasticsearch_conn_id

    def get_conn(self) -> Elasticsearch:
        """The provider's client (``ElasticsearchSQLHook(...).get_conn().es``)."""
        from airflow.providers.elasticsearch.hooks.elasticsearch import ElasticsearchSQLHook

        return ElasticsearchSQLHook(elasticsearch_conn_id=self.elasticsearch_conn_id).get_conn().es


class OpenSearchIndexHook(_IndexHookMixin, BaseHook):
    """OpenSearch client from an ``opensearch`` connection, for the rds-slowlog indexer.

    .. seealso:: ``airflow.providers.opensearch.hooks.opensearch.OpenSearchHook``
    :param opensearch_conn_id: the connection id (default ``opensearch_default``).
    """

    conn_name_attr = "opensearch_conn_id"
    default_conn_name = "opensearch_default"
    conn_type = "opensearch"
    hook_name = "RDS slow-log indexer (OpenSearch)"
    engine = "opensearch"

    def __init__(self, opensearch_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.opensearch_conn_id = opensearch_conn_id

    def get_conn(self) -> OpenSearch:
        """The provider hook's client, with certificate verification on unless the extras turn it off."""
        from airflow.providers.opensearch.hooks.opensearch import OpenSearchHook
        from opensearchpy import Urllib3HttpConnection

        hook = OpenSearchHook(open_search_conn_id=self.opensearch_conn_id, log_query=False,
                              open_search_conn_class=Urllib3HttpConnection)
        extra = hook.conn.extra_dejson
        if "verify_certs" not in extra:
            hook.verify_certs = True
        if extra.get("api_key"):
            hook.headers = {**(hook.headers or {}), "authorization": f"ApiKey {extra['api_key']}"}
        if not extra.get("ca_certs"):
            return hook.client
        # OpenSearchHook has no ca_certs knob: same arguments as its ``client`` plus the bundle.
        from opensearchpy import OpenSearch as _OpenSearch

        kw: dict[str, Any] = {"use_ssl": hook.use_ssl, "verify_certs": hook.verify_certs,
                              "ca_certs": extra["ca_certs"], "connection_class": Urllib3HttpConnection}
        for name in ("scheme", "url_prefix", "timeout", "headers", "http_compress", "opaque_id"):
            if getattr(hook, name, None) is not None:
                kw[name] = getattr(hook, name)
        if hook.conn.login and hook.conn.password:
            kw["http_auth"] = (hook.conn.login, hook.conn.password)
        client = _OpenSearch(hosts=[{"host": hook.conn.host, "port": hook.conn.port}], **kw)
        return client


__all__ = ["ElasticsearchIndexHook", "OpenSearchIndexHook", "SearchConnectionError"]
