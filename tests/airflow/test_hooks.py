"""The thin hooks build working clients from real Airflow connections and index a chunk on real servers."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ for search_fixtures
from search_fixtures import SAMPLE_LOGS, count, delete_indices, es_url, make_client, os_url, prefix, stage_logs  # noqa: E402,F401
from api_key_gate import ApiKeyGate  # noqa: E402

from rds_slowlog.airflow.hooks import ElasticsearchIndexHook, OpenSearchIndexHook  # noqa: E402
from rds_slowlog.search import raw_request  # noqa: E402
from rds_slowlog.staging import chunk_urls  # noqa: E402


def _conn_json(conn_type: str, url: str, **extra: object) -> str:
    u = urlsplit(url)
    return json.dumps({"conn_type": conn_type, "host": u.hostname, "port": u.port, "schema": u.scheme,
                       "login": u.username, "password": u.password, "extra": extra})


def _index_one_chunk(hook, engine: str, client, prefix: str, tmp_path: Path) -> None:
    base = str(tmp_path / "stage")
    entries = stage_logs([SAMPLE_LOGS / "mysql80-rds-slowquery.log"], base, prefix)
    assert hook.install_templates(prefix)[prefix] in ("created", "unchanged")
    stats = hook.index_chunk(chunk_urls(base)[0])
    assert stats["indexed"] == entries > 0
    assert count(client, engine, prefix) == entries


def test_elasticsearch_hook_basic_auth_from_env_connection(es_url, prefix, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", _conn_json("elasticsearch", es_url))
    hook = ElasticsearchIndexHook()
    client = make_client("elasticsearch", es_url)
    try:
        assert type(hook.client).__name__ == "Elasticsearch"
        _index_one_chunk(hook, "elasticsearch", client, prefix, tmp_path)
    finally:
        delete_indices(client, "elasticsearch", prefix)


def test_elasticsearch_hook_api_key(es_url, monkeypatch) -> None:  # noqa: F811
    key = "aWQ6c2VjcmV0LWtleQ=="
    gate = ApiKeyGate(es_url, key)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_ES_KEY", _conn_json("elasticsearch", gate.url, api_key=key))
        client = ElasticsearchIndexHook(elasticsearch_conn_id="es_key").get_conn()
        assert client.cluster.health()["status"] in ("green", "yellow")
        monkeypatch.setenv("AIRFLOW_CONN_ES_NOAUTH", _conn_json("elasticsearch", gate.url))
        from elasticsearch import AuthenticationException

        with pytest.raises(AuthenticationException):
            ElasticsearchIndexHook(elasticsearch_conn_id="es_noauth").get_conn().cluster.health()
        assert gate.seen == ["ApiKey", ""]
    finally:
        gate.close()


def test_opensearch_hook_indexes_a_chunk(os_url, prefix, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("AIRFLOW_CONN_OPENSEARCH_DEFAULT", _conn_json("opensearch", os_url))
    hook = OpenSearchIndexHook()
    client = make_client("opensearch", os_url)
    try:
        assert type(hook.client).__name__ == "OpenSearch"
        _index_one_chunk(hook, "opensearch", client, prefix, tmp_path)
    finally:
        delete_indices(client, "opensearch", prefix)


def test_tls_verification_is_on_by_default(monkeypatch) -> None:
    from airflow.models.connection import Connection

    es = Connection(conn_id="es_tls", conn_type="elasticsearch", host="db.example", port=9243, schema="https",
                    login="u", password="p")
    monkeypatch.setenv("AIRFLOW_CONN_ES_TLS", es.as_json())
    node = ElasticsearchIndexHook(elasticsearch_conn_id="es_tls").get_conn().transport.node_pool.all()[0]
    assert node.config.scheme == "https" and node.config.verify_certs is True
    os_ = Connection(conn_id="os_tls", conn_type="opensearch", host="db.example", port=9243, login="u",
                     password="p", extra=json.dumps({"use_ssl": True}))
    monkeypatch.setenv("AIRFLOW_CONN_OS_TLS", os_.as_json())
    conn = OpenSearchIndexHook(opensearch_conn_id="os_tls").get_conn().transport.connection_pool.connections[0]
    assert conn.use_ssl and conn.pool.cert_reqs == "CERT_REQUIRED"
    off = Connection(conn_id="os_off", conn_type="opensearch", host="db.example", port=9243,
                     extra=json.dumps({"use_ssl": True, "verify_certs": False}))
    monkeypatch.setenv("AIRFLOW_CONN_OS_OFF", off.as_json())
    conn = OpenSearchIndexHook(opensearch_conn_id="os_off").get_conn().transport.connection_pool.connections[0]
    assert conn.pool.cert_reqs == "CERT_NONE"
