"""Component templates + one composable index template, installed idempotently on Elasticsearch or OpenSearch.

The JSON bodies live in ``templates/*.json`` (package data) so that reviewers read mappings as mappings.
``{prefix}`` in them is replaced by the index prefix; names are ``<prefix>-settings``, ``<prefix>-mappings``,
``<prefix>-mappings-mysql``, ``<prefix>-mappings-postgresql`` and the index template ``<prefix>``, which matches
``<prefix>-*``: the daily indices ``<prefix>-<engine>-YYYY.MM.DD`` that :mod:`rds_slowlog.documents` names.

Why daily indices and not a data stream: documents are written with the ``index`` op and deterministic ids so a
rerun overwrites instead of duplicating. A data stream accepts only ``create`` and routes by ``@timestamp`` to
the *current* backing index, so after a rollover a rerun would add duplicates instead of overwriting them.

Idempotence: each body carries ``_meta.rds_slowlog_sha256`` (a hash of the body we would send); a template whose
stored hash matches is left alone, so installing on every run costs one GET per template and no cluster-state
update. Servers normalise stored bodies (settings become strings, …), which is why bodies are not compared.
"""
from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from typing import Any, Final

from rds_slowlog.documents import DEFAULT_INDEX_PREFIX
from rds_slowlog.search import raw_request, resolve_engine

COMPONENTS: Final = (("settings", "settings.json"), ("mappings", "mappings-base.json"),
                     ("mappings-mysql", "mappings-mysql.json"), ("mappings-postgresql", "mappings-postgresql.json"))
INDEX_TEMPLATE_FILE: Final = "index-template.json"
META_KEY: Final = "rds_slowlog_sha256"


def _load(name: str) -> dict[str, Any]:
    raw = (resources.files("rds_slowlog") / "templates" / name).read_text(encoding="utf-8")
    body = json.loads(raw)
    body.pop("_comment", None)
    return body


def _subst(obj: Any, prefix: str) -> Any:
    if isinstance(obj, str):
        return obj.replace("{prefix}", prefix)
    if isinstance(obj, list):
        return [_subst(x, prefix) for x in obj]
    if isinstance(obj, dict):
        return {k: _subst(v, prefix) for k, v in obj.items()}
    return obj


def _stamp(body: dict[str, Any]) -> dict[str, Any]:
    """Add ``_meta`` with the content hash (computed before the stamp, so it is stable)."""
    sha = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    out = copy.deepcopy(body)
    out["_meta"] = {**out.get("_meta", {}), "managed_by": "rds-slowlog", META_KEY: sha}
    return out


def load_templates(prefix: str = DEFAULT_INDEX_PREFIX, replicas: int | None = None
                   ) -> tuple[dict[str, dict[str, Any]], tuple[str, dict[str, Any]]]:
    """``({component name: body}, (index template name, body))`` for ``prefix``, ready to PUT.

    ``replicas`` fixes ``number_of_replicas`` instead of the default ``auto_expand_replicas: 0-1``.
    """
    if not prefix or prefix != prefix.lower() or any(c in prefix for c in ' "*\\<>|,/?#'):
        raise ValueError(f"index prefix {prefix!r} is not a valid lowercase index name prefix")
    if replicas is not None and replicas < 0:
        raise ValueError(f"replicas must be >= 0, got {replicas}")
    bodies = {suffix: _load(fname) for suffix, fname in COMPONENTS}
    if replicas is not None:
        index_settings = bodies["settings"]["template"]["settings"]["index"]
        index_settings.pop("auto_expand_replicas", None)
        index_settings["number_of_replicas"] = replicas
    components = {f"{prefix}-{suffix}": _stamp(body) for suffix, body in bodies.items()}
    index_body = _subst(_load(INDEX_TEMPLATE_FILE), prefix)
    if set(index_body["composed_of"]) != set(components):
        raise ValueError(f"{INDEX_TEMPLATE_FILE} composes {index_body['composed_of']}, COMPONENTS has {sorted(components)}")
    return components, (prefix, _stamp(index_body))


class TemplateInstallError(RuntimeError):
    """The server answered a template request with an error status.

    :param status: the HTTP status; 401/403 mean the credentials are wrong or lack the
        ``manage_index_templates`` privilege (``rds_slowlog.target.refusal`` words them for a user).
    """

    def __init__(self, name: str, engine: str, status: int, response: Any = None) -> None:
        self.name, self.engine, self.status, self.response = name, engine, status, response
        super().__init__(f"installing template {name} on {engine} failed with HTTP {status}: {response}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.engine, self.status, self.response))


def install_templates(client: Any, prefix: str = DEFAULT_INDEX_PREFIX, engine: str = "auto",
                      replicas: int | None = None) -> dict[str, str]:
    """Install (or update) the component templates, then the index template that composes them.

    :param client: an ``elasticsearch.Elasticsearch`` or ``opensearchpy.OpenSearch`` client.
    :param prefix: index prefix; templates apply to ``<prefix>-*``.
    :param engine: ``elasticsearch``, ``opensearch`` or ``auto`` (from the client's type).
    :param replicas: ``number_of_replicas`` of new indices (default: ``auto_expand_replicas: 0-1``).
    :return: ``{template name: "created" | "updated" | "unchanged"}`` in install order.
    :raises TemplateInstallError: an error status (401/403 already on the first GET); transport errors
        (server unreachable) come from the client library as they are.
    """
    engine = resolve_engine(client, engine)
    components, (index_name, index_body) = load_templates(prefix, replicas)
    result: dict[str, str] = {}
    plan = [(f"/_component_template/{n}", "component_templates", "component_template", n, b)
            for n, b in components.items()]
    plan.append((f"/_index_template/{index_name}", "index_templates", "index_template", index_name, index_body))
    for path, list_key, item_key, name, body in plan:
        status, existing = raw_request(client, engine, "GET", path)
        if status in (401, 403):   # a missing template is a 404; these will not get better with a PUT
            raise TemplateInstallError(name, engine, status, existing)
        stored_sha = None
        exists = False
        if status == 200:
            for item in existing.get(list_key, []):
                if item.get("name") == name:
                    exists = True
                    stored_sha = (item.get(item_key, {}).get("_meta") or {}).get(META_KEY)
        if stored_sha == body["_meta"][META_KEY]:
            result[name] = "unchanged"
            continue
        status, resp = raw_request(client, engine, "PUT", path, body)
        if status != 200:
            raise TemplateInstallError(name, engine, status, resp)
        result[name] = "updated" if exists else "created"
    return result


__all__ = ["install_templates", "load_templates", "COMPONENTS", "TemplateInstallError"]
