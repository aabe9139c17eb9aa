"""The DAG's configuration: every mistake names its key; defaults are the seed's knobs."""
from __future__ import annotations

import json

import pytest

from rds_slowlog.airflow.config import ConfigError, load_config, parse_config

GOOD = {"instances": [{"id": "db-1"}], "search": {"kind": "opensearch"}}


def test_defaults_and_the_connection_name() -> None:
    cfg = parse_config(GOOD)
    assert cfg.instances[0].engine == "mysql" and cfg.instances[0].aws_conn_id == "aws_default"
    assert cfg.search.connection == "opensearch_default" and cfg.store_query and cfg.search.replicas is None
    assert parse_config({**GOOD, "search": {"replicas": 1}}).search.replicas == 1
    k = cfg.knobs
    assert (k.chunk_size, k.batch_size, k.max_workers, k.es_timeout, k.es_retry_count) == (5000, 1000, 2, 60.0, 5)


@pytest.mark.parametrize(("change", "message"), [
    ({"instances": [{"id": "db-1", "engin": "mysql"}]}, "instances[0]: unknown key 'engin'"),
    ({"instances": [{"id": "db-1", "engine": "oracle"}]}, "'engine' must be one of mysql, postgres"),
    ({"instances": [{"engine": "mysql"}]}, "'id' is missing"),
    ({"instances": [{"id": "db-1"}, {"id": "db-1"}]}, "instance 'db-1' is listed twice"),
    ({"instances": [{"id": "db-1", "source": "objectstore"}]}, "'location' is required"),
    ({"instances": [{"id": "db-1", "log_time_zone": "Mars/Base"}]}, "'log_time_zone'"),
    ({"knobs": {"chunk_size": 0}}, "knobs: 'chunk_size' must be >= 1"),
    ({"search": {"replicas": "1"}}, "'replicas' must be int"),
    ({"search": {"replicas": -1}}, "'replicas' must be >= 0"),
    ({"knobs": {"batch_size": "100"}}, "'batch_size' must be int"),
    ({"pii_mode": "none"}, "'pii_mode' must be one of full, fingerprint_only"),
    ({"staging": "/tmp/x"}, "'staging' must be a URL"),
    ({"index_prefix": "Slow"}, "'index_prefix' 'Slow' is not a valid"),
    ({"instances": []}, "nothing to read"),
    ({"colour": "blue"}, "unknown key 'colour'"),
])
def test_each_mistake_names_its_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config({**GOOD, **change})


def test_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no configuration file"):
        load_config(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")
    (tmp_path / "ok.json").write_text(json.dumps({**GOOD, "discover": {"tag": "slowlog"}}))
    assert load_config(tmp_path / "ok.json").discover.tag == "slowlog"
