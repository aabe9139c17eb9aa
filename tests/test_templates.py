"""rds_slowlog.templates: bodies, names and idempotent install on real Elasticsearch and OpenSearch."""
from __future__ import annotations

import pytest
from search_fixtures import delete_indices, engine_url, es_url, make_client, os_url, prefix  # noqa: F401

from rds_slowlog import templates
from rds_slowlog.search import raw_request


def test_load_templates_names_and_prefix() -> None:
    components, (name, body) = templates.load_templates("acme")
    assert list(components) == ["acme-settings", "acme-mappings", "acme-mappings-mysql", "acme-mappings-postgresql"]
    assert name == "acme" and body["index_patterns"] == ["acme-*"] and body["composed_of"] == list(components)
    assert all("_comment" not in b and b["_meta"][templates.META_KEY] for b in [*components.values(), body])
    props = components["acme-mappings-mysql"]["template"]["mappings"]["properties"]["mysql"]["properties"]
    assert props["slowlog"]["properties"]["bytes_sent"] == {"type": "long"}
    for bad in ("", "Upper", "a b", "a*"):
        with pytest.raises(ValueError):
            templates.load_templates(bad)


def test_replicas_fix_number_of_replicas_instead_of_auto_expanding() -> None:
    def index_settings(replicas):
        components, _ = templates.load_templates("acme", replicas)
        return components["acme-settings"]["template"]["settings"]["index"], components["acme-settings"]["_meta"]

    auto, auto_meta = index_settings(None)
    one, one_meta = index_settings(1)
    assert auto["auto_expand_replicas"] == "0-1" and "number_of_replicas" not in auto
    assert one["number_of_replicas"] == 1 and "auto_expand_replicas" not in one
    assert auto_meta[templates.META_KEY] != one_meta[templates.META_KEY]     # an installed template is updated
    with pytest.raises(ValueError):
        templates.load_templates("acme", -1)


def test_install_is_idempotent_and_mappings_apply(engine_url, prefix: str) -> None:  # noqa: F811
    engine, url = engine_url
    client = make_client(engine, url)
    try:
        first = templates.install_templates(client, prefix=prefix, engine=engine)
        assert set(first.values()) == {"created"} and len(first) == 5
        assert set(templates.install_templates(client, prefix=prefix).values()) == {"unchanged"}
        # a template changed behind our back is put back
        status, _ = raw_request(client, engine, "PUT", f"/_component_template/{prefix}-settings",
                                {"template": {"settings": {"index": {"number_of_shards": 2}}}})
        assert status == 200
        again = templates.install_templates(client, prefix=prefix, engine=engine)
        assert again[f"{prefix}-settings"] == "updated" and list(again.values()).count("unchanged") == 4
        # a new daily index gets the explicit mappings
        index = f"{prefix}-mysql-2024.01.01"
        assert raw_request(client, engine, "PUT", f"/{index}")[0] == 200
        status, body = raw_request(client, engine, "GET", f"/{index}/_mapping")
        props = body[index]["mappings"]["properties"]
        assert props["event"]["properties"]["duration"]["type"] == "long"
        assert props["source"]["properties"]["ip"]["type"] == "ip"
        assert props["slowlog"]["properties"]["query_id"]["type"] == "keyword"
        assert props["mysql"]["properties"]["slowlog"]["properties"]["query"]["fields"]["keyword"]["type"] == "keyword"
        assert props["postgresql"]["properties"]["log"]["properties"]["client_addr"]["type"] == "keyword"
        status, body = raw_request(client, engine, "GET", f"/{index}/_settings")
        assert body[index]["settings"]["index"]["number_of_shards"] == "1"
    finally:
        delete_indices(client, engine, prefix)
