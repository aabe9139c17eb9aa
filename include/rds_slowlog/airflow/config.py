"""The hourly DAG's configuration: a JSON file beside the DAG file, validated in the DAG's first task.

Why a file and not an Airflow Variable: it is reviewed and versioned with the DAG, deploys with it (MWAA syncs
the ``dags/`` folder), costs no metadata-database round trip when the DAG file is parsed, and a test or a demo
points a DAG at its own configuration by putting both in one folder. Secrets never go in it: connections are
Airflow connections, named here by id (``aws_default``, ``elasticsearch_default``/``opensearch_default``).

Shape (every key but ``instances``/``discover`` has a default; unknown keys are refused, so a typo is an error
that names the key, not a silently ignored setting)::

    {
      "instances": [{"id": "db-1", "engine": "mysql", "source": "rds", "aws_conn_id": "aws_default",
                     "archive": "s3://aws_default@bucket/raw", "cloudwatch": false, "location": null,
                     "cluster": null, "log_time_zone": null}],
      "discover": {"tag": "slowlog", "value": "on", "aws_conn_id": "aws_default"},
      "search": {"kind": "elasticsearch", "conn_id": "elasticsearch_default", "replicas": null},
      "index_prefix": "rds-slowlog", "staging": "file:///tmp/rds-slowlog-staging",
      "pii_mode": "full", "grace_minutes": 5, "rds_retention_hours": 24, "retention_days": 30,
      "pool": "rds_slowlog_search", "max_active_runs": 4, "retries": 3, "retry_delay_seconds": 30,
      "knobs": {"chunk_size": 5000, "batch_size": 1000, "max_workers": 2, "memory_threshold_mb": null,
                "max_buffer_size_mb": 32, "es_timeout": 60, "es_retry_count": 5, "failure_threshold": 0.01,
                "chunks_per_index_task": 4}
    }

``source`` is where a window's files are read: ``rds`` (the RDS API; windows older than
``rds_retention_hours`` fall back to ``archive`` — raw files this DAG archived — then to CloudWatch Logs when
``cloudwatch`` is true, and otherwise fail saying so), ``cloudwatch`` or ``objectstore`` (``location``: an
``s3://conn_id@bucket/prefix`` or ``file://`` URL of RDS-named files).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ENGINES = ("mysql", "postgres")
SOURCES = ("rds", "cloudwatch", "objectstore")
SEARCH_KINDS = ("elasticsearch", "opensearch")
PII_MODES = ("full", "fingerprint_only")
DEFAULT_CONFIG_NAME = "rds_slowlog.json"


class ConfigError(ValueError):
    """The configuration is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Knobs:
    """The seed's knobs, under the seed's names (see the README for what each bounds)."""

    chunk_size: int = 5000
    batch_size: int = 1000
    max_workers: int = 2
    memory_threshold_mb: float | None = None
    max_buffer_size_mb: float = 32.0
    es_timeout: float = 60.0
    es_retry_count: int = 5
    failure_threshold: float = 0.01
    chunks_per_index_task: int = 4


@dataclass(frozen=True)
class Instance:
    id: str
    engine: str = "mysql"
    source: str = "rds"
    aws_conn_id: str = "aws_default"
    archive: str | None = None
    cloudwatch: bool = False
    location: str | None = None
    cluster: str | None = None
    log_time_zone: str | None = None


@dataclass(frozen=True)
class Discover:
    tag: str
    value: str | None = None
    aws_conn_id: str = "aws_default"
    engine: str | None = None
    source: str = "rds"
    archive: str | None = None
    cloudwatch: bool = False


@dataclass(frozen=True)
class Search:
    kind: str = "elasticsearch"
    conn_id: str | None = None
    #: ``number_of_replicas`` of the indices; None keeps ``auto_expand_replicas: 0-1`` (green on one node, one
    #: replica on a cluster). Set it to demand copies (1 on a cluster: one node may die without losing data).
    replicas: int | None = None

    @property
    def connection(self) -> str:
        return self.conn_id or f"{self.kind}_default"


@dataclass(frozen=True)
class SlowLogConfig:
    instances: tuple[Instance, ...] = ()
    discover: Discover | None = None
    search: Search = field(default_factory=Search)
    index_prefix: str = "rds-slowlog"
    staging: str = "file:///tmp/rds-slowlog-staging"
    pii_mode: str = "full"
    grace_minutes: float = 5.0
    rds_retention_hours: float = 24.0
    retention_days: int = 30
    pool: str = "rds_slowlog_search"
    max_active_runs: int = 4
    retries: int = 3
    retry_delay_seconds: float = 30.0
    knobs: Knobs = field(default_factory=Knobs)

    @property
    def store_query(self) -> bool:
        return self.pii_mode != "fingerprint_only"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_keys(where: str, raw: dict[str, Any], cls: type) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _typed(where: str, key: str, value: Any, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple)
                                                                                     else (kind,)))
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: {key!r} must be {names}, not {value!r}")
    return value


def _choice(where: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{where}: {key!r} must be one of {', '.join(choices)}, not {value!r}")
    return value


def parse_config(raw: Any, where: str = "configuration") -> SlowLogConfig:
    """Validate a decoded configuration; :class:`ConfigError` names the first bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a JSON object")
    _check_keys(where, raw, SlowLogConfig)
    num = (int, float)
    instances = []
    seen: set[str] = set()
    for k, item in enumerate(_typed(where, "instances", raw.get("instances", []), list)):
        w = f"{where}: instances[{k}]"
        _typed(w, "instance", item, dict)
        _check_keys(w, item, Instance)
        if "id" not in item:
            raise ConfigError(f"{w}: 'id' is missing")
        inst = Instance(
            id=_typed(w, "id", item["id"], str),
            engine=_choice(w, "engine", item.get("engine", "mysql"), ENGINES),
            source=_choice(w, "source", item.get("source", "rds"), SOURCES),
            aws_conn_id=_typed(w, "aws_conn_id", item.get("aws_conn_id", "aws_default"), str),
            archive=_typed(w, "archive", item.get("archive"), str, optional=True),
            cloudwatch=_typed(w, "cloudwatch", item.get("cloudwatch", False), bool),
            location=_typed(w, "location", item.get("location"), str, optional=True),
            cluster=_typed(w, "cluster", item.get("cluster"), str, optional=True),
            log_time_zone=_typed(w, "log_time_zone", item.get("log_time_zone"), str, optional=True),
        )
        if not inst.id or "/" in inst.id:
            raise ConfigError(f"{w}: 'id' must be an RDS instance identifier, not {inst.id!r}")
        if inst.id in seen:
            raise ConfigError(f"{w}: instance {inst.id!r} is listed twice")
        seen.add(inst.id)
        if inst.source == "objectstore" and not inst.location:
            raise ConfigError(f"{w}: 'location' is required with source 'objectstore'")
        if inst.log_time_zone is not None:
            from rds_slowlog.parsers.mysql import zone_converter

            try:
                zone_converter(inst.log_time_zone)
            except ValueError as e:
                raise ConfigError(f"{w}: 'log_time_zone': {e}") from None
        instances.append(inst)
    discover = None
    if raw.get("discover") is not None:
        d = _typed(where, "discover", raw["discover"], dict)
        w = f"{where}: discover"
        _check_keys(w, d, Discover)
        if "tag" not in d:
            raise ConfigError(f"{w}: 'tag' is missing")
        discover = Discover(tag=_typed(w, "tag", d["tag"], str), value=_typed(w, "value", d.get("value"), str,
                                                                                 optional=True),
                            aws_conn_id=_typed(w, "aws_conn_id", d.get("aws_conn_id", "aws_default"), str),
                            engine=_choice(w, "engine", d["engine"], ENGINES) if d.get("engine") else None,
                            source=_choice(w, "source", d.get("source", "rds"), ("rds", "cloudwatch")),
                            archive=_typed(w, "archive", d.get("archive"), str, optional=True),
                            cloudwatch=_typed(w, "cloudwatch", d.get("cloudwatch", False), bool))
    if not instances and discover is None:
        raise ConfigError(f"{where}: 'instances' is empty and there is no 'discover': nothing to read")
    s = _typed(where, "search", raw.get("search", {}), dict)
    _check_keys(f"{where}: search", s, Search)
    search = Search(kind=_choice(f"{where}: search", "kind", s.get("kind", "elasticsearch"), SEARCH_KINDS),
                    conn_id=_typed(f"{where}: search", "conn_id", s.get("conn_id"), str, optional=True),
                    replicas=_typed(f"{where}: search", "replicas", s.get("replicas"), int, optional=True))
    if search.replicas is not None and search.replicas < 0:
        raise ConfigError(f"{where}: search: 'replicas' must be >= 0, not {search.replicas}")
    kn = _typed(where, "knobs", raw.get("knobs", {}), dict)
    _check_keys(f"{where}: knobs", kn, Knobs)
    defaults = Knobs()
    kw: dict[str, Any] = {}
    for f in fields(Knobs):
        v = kn.get(f.name, getattr(defaults, f.name))
        wk = f"{where}: knobs"
        if f.name == "memory_threshold_mb":
            v = _typed(wk, f.name, v, num, optional=True)
        elif f.name in ("max_buffer_size_mb", "es_timeout", "failure_threshold"):
            v = _typed(wk, f.name, v, num)
        else:
            v = _typed(wk, f.name, v, int)
        if v is not None and v < (0 if f.name == "failure_threshold" else 1):
            raise ConfigError(f"{wk}: {f.name!r} must be {'>= 0' if f.name == 'failure_threshold' else '>= 1'}, "
                              f"not {v!r}")
        kw[f.name] = v
    prefix = _typed(where, "index_prefix", raw.get("index_prefix", "rds-slowlog"), str)
    if not prefix or prefix != prefix.lower() or any(c in prefix for c in ' "*\\<>|,/?#:'):
        raise ConfigError(f"{where}: 'index_prefix' {prefix!r} is not a valid lowercase index name prefix")
    cfg = SlowLogConfig(
        instances=tuple(instances), discover=discover, search=search, index_prefix=prefix,
        staging=_typed(where, "staging", raw.get("staging", SlowLogConfig.staging), str),
        pii_mode=_choice(where, "pii_mode", raw.get("pii_mode", "full"), PII_MODES),
        grace_minutes=_typed(where, "grace_minutes", raw.get("grace_minutes", 5.0), num),
        rds_retention_hours=_typed(where, "rds_retention_hours", raw.get("rds_retention_hours", 24.0), num),
        retention_days=_typed(where, "retention_days", raw.get("retention_days", 30), int),
        pool=_typed(where, "pool", raw.get("pool", "rds_slowlog_search"), str),
        max_active_runs=_typed(where, "max_active_runs", raw.get("max_active_runs", 4), int),
        retries=_typed(where, "retries", raw.get("retries", 3), int),
        retry_delay_seconds=_typed(where, "retry_delay_seconds", raw.get("retry_delay_seconds", 30.0), num),
        knobs=Knobs(**kw),
    )
    if "://" not in cfg.staging:
        raise ConfigError(f"{where}: 'staging' must be a URL (file:///path or s3://conn_id@bucket/prefix), "
                          f"not {cfg.staging!r}")
    return cfg


def load_config(path: str | Path) -> SlowLogConfig:
    """Read and validate the JSON file at ``path``."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no configuration file (write one beside the DAG; see the README)") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON: {e}") from None
    return parse_config(raw, str(p))


def dag_settings(path: str | Path) -> dict[str, Any]:
    """The few settings the DAG file needs while it is parsed (never raises: a broken file is reported by the
    first task, with the key that is wrong, instead of making the DAG disappear with an import error)."""
    out: dict[str, Any] = {"grace_minutes": 5.0, "max_active_runs": 4, "retries": 3, "retry_delay_seconds": 30.0,
                           "pool": "rds_slowlog_search"}
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out
    if isinstance(raw, dict):
        for key, kind in (("grace_minutes", (int, float)), ("max_active_runs", int), ("retries", int),
                          ("retry_delay_seconds", (int, float)), ("pool", str)):
            v = raw.get(key)
            if isinstance(v, kind) and not isinstance(v, bool):
                out[key] = v
    return out


__all__ = ["ConfigError", "Discover", "Instance", "Knobs", "Search", "SlowLogConfig", "dag_settings",
           "load_config", "parse_config", "DEFAULT_CONFIG_NAME"]
