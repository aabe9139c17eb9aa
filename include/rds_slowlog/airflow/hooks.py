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


class _IndexHookMixin:
    engine: str

    def get_conn(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @cached_property
    def client(self) -> Any:
        return self.get_conn()

    def install_templates(self, prefix: str = "rds-slowlog") -> dict[str, str]:
        """Install the component and index templates for ``prefix`` (idempotent)."""
        from rds_slowlog.templates import install_templates

        return install_templates(self.client, prefix=prefix, engine=self.engine)

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


__all__ = ["ElasticsearchIndexHook", "OpenSearchIndexHook"]
