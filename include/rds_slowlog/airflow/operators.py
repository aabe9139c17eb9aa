"""The hourly DAG's steps as classic operators, thin over the core and the hooks.

The user's words name the steps, and each stays visible as an operator:

* :class:`ListSlowLogFilesOperator` — validate the configuration, find the instances (listed, or discovered by
  RDS tag), pick each one's source for the window and list the files that may hold entries written in it
  (widened by :data:`~rds_slowlog.sources.base.WINDOW_SLACK`: rotation falls a little after the hour).
  Returns one small JSON-able *stage spec* per instance-window: references, never log data.
* :class:`StageSlowLogOperator` — mapped per instance-window: download (complete-file REST, portions as the
  fallback) *and* parse/normalise/chunk in one streaming pass (the download is consumed as the parser reads
  it, so no file is held on disk or in memory), then write gzip NDJSON chunks + ``history.json`` + manifest
  under ``<staging>/<dag_id>/<instance>/<window_start>/``. Per instance-window, not per file, because a
  document id numbers repeats of identical entries and a second's entries can straddle a rotation (see
  :mod:`rds_slowlog.stage`). Its log shows both phases: per file the download report (bytes, method,
  retries, losses), then the parse and stage counts. Optionally archives the raw files (gzip) so a window
  can be re-read after RDS's retention.
* :class:`IndexSlowLogChunksOperator` — mapped per group of chunks (so a run never needs more than
  ``[core] max_map_length`` mapped instances): bulk-index with the core's indexer (one retry layer, dead
  letters, failure threshold); Airflow's own retries are per map index and safe (deterministic ids).
* :class:`SummarizeSlowLogOperator` — add the stats up (one stats shape), log the window's top classes,
  write a run document and per-class history documents, emit the Asset event.
* :class:`SlowLogRetentionOperator` — remove the window's staging and delete indices older than the
  configured age.

Every operator takes keyword arguments only, stores them in ``__init__`` and validates in ``execute``; hooks
are built there, so parsing the DAG touches no connection.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

if TYPE_CHECKING:
    from rds_slowlog.airflow.config import Instance, SlowLogConfig
    from rds_slowlog.sources.base import LogFileRef

log = logging.getLogger(__name__)

#: part size of the raw archive's multipart upload (S3's minimum)
ARCHIVE_PART_BYTES = 5 * 1024 * 1024

__all__ = ["ListSlowLogFilesOperator", "StageSlowLogOperator", "IndexSlowLogChunksOperator",
           "SummarizeSlowLogOperator", "SlowLogRetentionOperator", "WindowBeyondRetention", "WindowNotSettled",
           "SourceUnavailable",
           "DownloadIncomplete", "plan_index_groups", "install_index_templates", "stage_spec", "restage_chunk"]


class WindowBeyondRetention(RuntimeError):
    """The window is older than RDS keeps slow logs and no archive or CloudWatch source is configured."""


class SourceUnavailable(RuntimeError):
    """An instance's log files could not be listed (unknown instance, unreachable endpoint, no credentials);
    the message names the instance, the source and the AWS connection."""


class DownloadIncomplete(RuntimeError):
    """A file's download ended before the size its source listed (and asking again within the task did not
    help): the stage task fails so that Airflow's retry reads the file whole."""


class WindowNotSettled(RuntimeError):
    """An entry of the window may still be being written (a file still appended to ended inside it):
    the task fails so that Airflow's retry reads it once it is whole."""


# ------------------------------------------------------------------------------------------- helpers

def _epoch(value: Any) -> float:
    """Epoch seconds of a datetime, a rendered template string (ISO 8601) or a number."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)):
        return float(value)
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _dag_id(context: Any) -> str:
    """The running DAG's id (staging paths and run documents are keyed by it)."""
    dag = context.get("dag")
    return dag.dag_id if dag is not None else "rds_slowlog"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_staging(base: str, dag_id: str, instance: str, window_start: float) -> str:
    """``<staging>/<dag_id>/<instance>/<window_start>``: a rerun overwrites its own window, retention is a
    prefix delete."""
    from rds_slowlog.staging import join

    return join(base, dag_id, instance, time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime(window_start)))


def _register_storage() -> None:
    """Let the core's staging understand ``s3://conn_id@bucket/…`` (credentials from an Airflow connection).

    Called as a task's work begins: it also forgets the stores and AWS sessions of an earlier task run in the same
    process (``dag.test()`` runs every task in one), so a connection is read afresh by each task.
    """
    from rds_slowlog.airflow.session import forget_sessions
    from rds_slowlog.staging import FILESYSTEM_RESOLVERS

    _S3_STORES.clear()
    forget_sessions()
    if _resolve_object_storage not in FILESYSTEM_RESOLVERS:
        FILESYSTEM_RESOLVERS.append(_resolve_object_storage)


#: ``s3://`` staging stores of this task process, by connection id (see :func:`_resolve_object_storage`).
_S3_STORES: dict[str, Any] = {}


def _resolve_object_storage(url: str) -> tuple[Any, str] | None:
    """``s3://conn_id@bucket/…``: an :class:`~rds_slowlog.s3store.S3Store` from the connection, on the same
    boto3 session as the task's RDS client; other ``scheme://conn_id@…`` URLs: Airflow's ``ObjectStoragePath``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme == "file" or "@" not in rest.split("/", 1)[0]:
        return None
    if scheme in ("s3", "s3a", "s3n"):
        conn_id, _, path = rest.partition("@")
        store = _S3_STORES.get(conn_id)
        if store is None:
            from rds_slowlog.airflow.hooks_s3 import S3StagingHook

            store = _S3_STORES[conn_id] = S3StagingHook(aws_conn_id=conn_id).get_store()
        return store, path
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    p = ObjectStoragePath(url)
    return p.fs, p.path


def _index_hook(cfg: SlowLogConfig) -> Any:
    if cfg.search.kind == "opensearch":
        from rds_slowlog.airflow.hooks import OpenSearchIndexHook

        return OpenSearchIndexHook(opensearch_conn_id=cfg.search.connection)
    from rds_slowlog.airflow.hooks import ElasticsearchIndexHook

    return ElasticsearchIndexHook(elasticsearch_conn_id=cfg.search.connection)


def _bulk_options(cfg: SlowLogConfig) -> Any:
    from rds_slowlog.indexing import BulkOptions

    k = cfg.knobs
    return BulkOptions(batch_size=k.batch_size, max_workers=k.max_workers, es_timeout=k.es_timeout,
                       es_retry_count=k.es_retry_count, failure_threshold=k.failure_threshold)


def _instance_conf(spec: Mapping[str, Any]) -> Instance:
    from rds_slowlog.airflow.config import Instance

    return Instance(**spec["instance_conf"])


def _open_source(kind: str, inst: Instance, location: str | None = None) -> Any:
    """The core log source for ``kind`` built through the hooks (the connection is read here, not at parse)."""
    if kind == "rds":
        from rds_slowlog.airflow.hooks_rds import RdsSlowLogHook

        return RdsSlowLogHook(aws_conn_id=inst.aws_conn_id).get_log_source(inst.id, inst.engine)
    if kind == "cloudwatch":
        from rds_slowlog.airflow.hooks_rds import CloudWatchSlowLogHook

        hook = CloudWatchSlowLogHook(aws_conn_id=inst.aws_conn_id)
        return hook.get_log_source(None if inst.cluster else inst.id, inst.engine, cluster=inst.cluster)
    from rds_slowlog.airflow.hooks_rds import object_storage_log_source

    _register_storage()
    return object_storage_log_source(location or inst.location, inst.engine, instance=inst.id)


def _is_source_failure(e: BaseException) -> bool:
    """An AWS (botocore) or storage (OSError) failure: worth the instance's and connection's names."""
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(e, (BotoCoreError, ClientError, OSError))


def _source_failure(inst: Instance, kind: str, e: BaseException) -> str:
    """``<instance>: listing its <kind> log files failed (AWS connection '<id>'…): <error>``."""
    where = ""
    if kind in ("rds", "cloudwatch"):
        from airflow.providers.common.compat.sdk import BaseHook

        where = f" (AWS connection '{inst.aws_conn_id}'"
        try:
            BaseHook.get_connection(inst.aws_conn_id)
            where += ")"
        except Exception as missing:
            if type(missing).__name__ != "AirflowNotFoundException":
                raise
            where += " is not defined, so the default AWS credential chain was used)"
    return f"{inst.id}: listing its {kind} log files failed{where}: {type(e).__name__}: {e}"


def _archive_location(inst: Instance) -> str | None:
    from rds_slowlog.staging import join

    return join(inst.archive, inst.id) if inst.archive else None


# ------------------------------------------------------------------------------------------- list

class ListSlowLogFilesOperator(BaseOperator):
    """Validate the configuration and list each instance's files for the window ``[window_start, window_end)``.

    :param config_path: the DAG's JSON configuration (see :mod:`rds_slowlog.airflow.config`).
    :param window_start: templated; default the run's ``data_interval_start``.
    :param window_end: templated; default the run's ``data_interval_end``.
    :return: one stage spec per instance: ``instance``, ``engine``, ``source``, ``location`` (objectstore),
        ``files`` (references as dicts), ``window_start``/``window_end`` (epoch seconds), ``staging``.
    :raises rds_slowlog.airflow.config.ConfigError: the configuration is wrong (the message names the key).
    :raises WindowBeyondRetention: the window is older than RDS keeps logs and nothing else can read it.
    :raises rds_slowlog.airflow.hooks.SearchConnectionError: the search connection cannot be used (checked
        first, so a bad connection fails this task before anything is downloaded).
    :raises SourceUnavailable: an instance's files cannot be listed (the message names it and its connection).
    """

    template_fields: Sequence[str] = ("config_path", "window_start", "window_end")
    ui_color = "#e8f4fd"

    def __init__(self, *, config_path: str, window_start: str = "{{ data_interval_start }}",
                 window_end: str = "{{ data_interval_end }}", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self.window_start = window_start
        self.window_end = window_end

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from rds_slowlog.airflow.config import load_config
        from rds_slowlog.sources.base import WINDOW_SLACK

        cfg = load_config(self.config_path)
        _register_storage()
        start, end = _epoch(self.window_start), _epoch(self.window_end)
        if not end > start:
            raise ValueError(f"window [{_iso(start)}, {_iso(end)}) is empty")
        # fail here, naming the cause, rather than after the window is downloaded and staged
        _index_hook(cfg).check_connection(cfg.index_prefix)
        instances = list(cfg.instances)
        if cfg.discover is not None:
            instances += [i for i in discover_instances(cfg) if i.id not in {x.id for x in instances}]
        dag_id = _dag_id(context)
        specs = []
        for inst in instances:
            kind, location = self._choose_source(inst, cfg, start)
            try:
                source = _open_source(kind, inst, location)
                refs = source.list_files(start - WINDOW_SLACK, end + WINDOW_SLACK)
            except Exception as e:
                if not _is_source_failure(e):
                    raise
                raise SourceUnavailable(_source_failure(inst, kind, e)) from e
            self.log.info("%s: %d file(s) from %s for [%s, %s): %s", inst.id, len(refs), kind, _iso(start),
                          _iso(end), ", ".join(f"{r.name}{' (growing)' if r.growing else ''}" for r in refs))
            specs.append({
                "instance": inst.id, "engine": inst.engine, "source": kind, "location": location,
                "files": [r.as_dict() for r in refs], "window_start": start, "window_end": end,
                "staging": window_staging(cfg.staging, dag_id, inst.id, start),
                "instance_conf": {k: getattr(inst, k) for k in inst.__dataclass_fields__},
            })
        return specs

    @staticmethod
    def _choose_source(inst: Instance, cfg: SlowLogConfig, start: float) -> tuple[str, str | None]:
        """Where this window is read: the configured source, or — for an RDS window older than RDS keeps
        logs — the archive, then CloudWatch; never an empty success."""
        from rds_slowlog.sources.base import WINDOW_SLACK

        if inst.source != "rds":
            return inst.source, inst.location
        oldest_kept = time.time() - cfg.rds_retention_hours * 3600
        if start - WINDOW_SLACK >= oldest_kept:
            return "rds", None
        if inst.archive:
            return "objectstore", _archive_location(inst)
        if inst.cloudwatch:
            return "cloudwatch", None
        raise WindowBeyondRetention(
            f"{inst.id}: window starting {_iso(start)} is older than RDS keeps slow logs "
            f"(rds_retention_hours={cfg.rds_retention_hours:g}) and neither 'archive' nor 'cloudwatch' is "
            f"configured for it: nothing can read it (set one, or raise rds_retention_hours if your instance "
            f"keeps logs longer)")


def discover_instances(cfg: SlowLogConfig) -> list[Instance]:
    """Instances whose RDS tags carry ``discover.tag`` (= ``discover.value``), so a new database is covered
    without a deploy.

    .. seealso:: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html
    """
    from airflow.providers.amazon.aws.hooks.rds import RdsHook

    from rds_slowlog.airflow.config import Instance

    d = cfg.discover
    assert d is not None
    client = RdsHook(aws_conn_id=d.aws_conn_id).conn
    found = []
    for page in client.get_paginator("describe_db_instances").paginate():
        for db in page.get("DBInstances", []):
            tags = {t.get("Key"): t.get("Value") for t in db.get("TagList", [])}
            if d.tag not in tags or (d.value is not None and tags[d.tag] != d.value):
                continue
            engine = "postgres" if "postgres" in (db.get("Engine") or "") else "mysql"
            if d.engine is not None and engine != d.engine:
                continue
            found.append(Instance(id=db["DBInstanceIdentifier"], engine=engine, source=d.source,
                                  aws_conn_id=d.aws_conn_id, archive=d.archive, cloudwatch=d.cloudwatch,
                                  cluster=db.get("DBClusterIdentifier") if d.source == "cloudwatch" else None))
    log.info("discovered %d instance(s) tagged %s%s: %s", len(found), d.tag,
             f"={d.value}" if d.value is not None else "", ", ".join(i.id for i in found))
    return found


# ------------------------------------------------------------------------------------------- stage

class _Tee:
    """A readable stream that copies what is read from ``inner`` into ``sink`` (the raw archive)."""

    def __init__(self, inner: Any, sink: Any) -> None:
        self.inner, self.sink = inner, sink

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        if data:
            self.sink.write(data)
        return data

    def peek(self, n: int = 0) -> bytes:
        return self.inner.peek(n)

    def close(self) -> None:
        self.inner.close()


class StageSlowLogOperator(BaseOperator):
    """Download, parse and stage one instance-window (mapped over :class:`ListSlowLogFilesOperator`'s specs).

    :param spec: one stage spec (templated: usually ``.expand(spec=...)``).
    :param config_path: the DAG's JSON configuration (knobs, index prefix, PII mode).
    :return: ``instance``, ``engine``, ``staging`` (URL), ``chunks`` (URLs), ``stats``, ``files``, the window.
    :raises WindowNotSettled: an entry of the window may still be being written; Airflow's retry reads it whole.
    """

    template_fields: Sequence[str] = ("spec", "config_path")
    ui_color = "#fdf2e8"

    def __init__(self, *, spec: Any, config_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.config_path = config_path

    def execute(self, context: Any) -> dict[str, Any]:
        from rds_slowlog.airflow.config import load_config
        from rds_slowlog.staging import join
        from rds_slowlog.stats import rss_mb

        start_rss = rss_mb()
        cfg = load_config(self.config_path)
        spec = self.spec
        inst = _instance_conf(spec)
        context["slowlog_label"] = f"{spec['instance']} ({len(spec['files'])} file(s))"
        run_id = context["run_id"] if "run_id" in context else "manual"
        archive = _archive_location(inst) if spec["source"] == "rds" else None
        result, refs, reports = stage_spec(spec, cfg, spec["staging"], dag_id=_dag_id(context), run_id=run_id,
                                           archive=archive, log=self.log)
        stats = dict(result.stats)
        self.log.info("staged %s [%s, %s): %s", inst.id, _iso(spec["window_start"]), _iso(spec["window_end"]),
                      stats)
        if stats["incomplete"]:
            raise WindowNotSettled(
                f"{inst.id}: {stats['incomplete']} entr(y/ies) of the window may still be being written "
                f"(a file still appended to ended inside them); retrying reads them once they are whole")
        losses = sum(loss["approx_bytes"] or 0 for r in reports for loss in r.get("losses", ()))
        if losses:
            self.log.warning("%s: %d byte(s) could not be downloaded (see the download reports above); the "
                             "entries they belonged to are flagged", inst.id, losses)
        return {
            "instance": inst.id, "engine": inst.engine, "staging": spec["staging"],
            "chunks": [join(spec["staging"], c.name) for c in result.manifest.chunks],
            "chunk_docs": [c.docs for c in result.manifest.chunks],
            "stats": stats, "files": [r.name for r in refs], "source": spec["source"],
            "window_start": spec["window_start"], "window_end": spec["window_end"], "downloads": reports,
            "start_rss_mb": round(start_rss, 1),
        }


def stage_spec(spec: Mapping[str, Any], cfg: SlowLogConfig, base: str, *, dag_id: str, run_id: str,
               archive: str | None, log: Any) -> tuple[Any, list[LogFileRef], list[dict[str, Any]]]:
    """Download, parse and stage one stage spec under ``base``: ``(StageResult, refs, download reports)``.

    Shared by the stage task and by an index task re-staging a chunk that no longer matches its manifest, so
    both build the same documents with the same ids (the ingest run id is ``<dag_id>/<run_id>``) and, chunks
    being cut by count and size only, the same chunk bytes. The spec is kept in the manifest's meta for that.
    """
    from rds_slowlog.stage import stage_window
    from rds_slowlog.sources.base import LogFileRef

    inst = _instance_conf(spec)
    _register_storage()
    source = _open_source(spec["source"], inst, spec.get("location"))
    refs = [LogFileRef.from_dict(d) for d in spec["files"]]
    reports: list[dict[str, Any]] = []
    result = stage_window(
        _stage_inputs(source, refs, inst, archive, reports, log), base, instance=inst.id,
        since=spec["window_start"], until=spec["window_end"], index_prefix=cfg.index_prefix,
        store_query=cfg.store_query, cluster=inst.cluster, ingest_run_id=f"{dag_id}/{run_id}",
        chunk_size=cfg.knobs.chunk_size, max_chunk_mb=cfg.knobs.max_buffer_size_mb,
        memory_threshold_mb=cfg.knobs.memory_threshold_mb, log_time_zone=inst.log_time_zone,
        history=True, meta={"dag_id": dag_id, "run_id": run_id, "source": spec["source"], "spec": dict(spec)})
    for f in result.files:
        log.info("parse %s: %d entr(y/ies) in the window, %d staged, %d left out (file still written), %s",
                 f["source"], f["window_entries"], f["docs"], f["incomplete_left_out"],
                 {k: v for k, v in f["parse"].items() if v and k not in ("source", "engine")})
    return result, refs, reports


def _stage_inputs(source: Any, refs: list[LogFileRef], inst: Instance, archive: str | None,
                  reports: list[dict[str, Any]], log: Any) -> Iterator[Any]:
    """The window's files as stage inputs, in order; each download is checked once it has been read.

    A file whose download ended short of what the source listed (RDS answered ``AdditionalDataPending=false``
    and then nothing more before the listed size, a complete-file body came short) raises
    :class:`DownloadIncomplete` here — before the manifest commits anything — so the task fails and
    Airflow's retry downloads it again: a cut file is never staged as if it were whole.
    """
    import gzip

    from rds_slowlog.stage import StageInput
    from rds_slowlog.staging import filesystem, join

    for ref in refs:
        t0 = time.monotonic()
        stream = source.open(ref)
        sink = raw = None
        # the raw archive: complete files only, under their RDS names (a growing or undated file is
        # archived by a later run, once rotated)
        base_name = ref.name.rsplit("/", 1)[-1]
        if archive is not None and not ref.growing and base_name[-1:].isdigit():
            fs, path = filesystem(join(archive, ref.name + ".gz"))
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            # S3: spooled to a temporary file and uploaded whole once the file was read (no part held in memory)
            raw = fs.open(path, "wb", block_size=ARCHIVE_PART_BYTES)
            sink = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)
        read = False
        try:
            yield StageInput(ref.name, _Tee(stream, sink) if sink is not None else stream,  # type: ignore[arg-type]
                             inst.engine, growing=ref.growing)
            read = True
        finally:
            stream.close()
            short = stream.report.short if hasattr(stream, "report") else []
            if sink is not None:
                # the archive is a file's whole bytes or nothing: a download cut short, or a parse that raised,
                # must not leave a shorter file under its RDS name for a later window to read as complete
                sink.close()
                if read and not short:
                    raw.close()
                else:
                    _discard(raw, fs, path)
        report = stream.report.as_dict() if hasattr(stream, "report") else {}
        report["seconds"] = round(time.monotonic() - t0, 3)
        reports.append(report)
        log.info("download %s: %s", ref.name, report)
        if short:
            raise DownloadIncomplete(
                f"{inst.id}: {ref.name} was read only in part ({stream.report.bytes} of {ref.size} listed "
                f"byte(s): {'; '.join(loss.reason for loss in short)}); not staging it as complete — the "
                f"retry downloads it again")


def _discard(raw: Any, fs: Any, path: str) -> None:
    """Drop a half-written archive file: abort its upload (:class:`~rds_slowlog.s3store.ObjectWriter`), or
    close and remove it (any other fsspec file)."""
    from rds_slowlog.s3store import ObjectWriter

    if isinstance(raw, ObjectWriter):
        raw.abort()
        return
    raw.close()
    if fs.exists(path):
        fs.rm(path)


# ------------------------------------------------------------------------------------------- index

def install_index_templates(config_path: str) -> dict[str, str]:
    """Install the index templates once per run (idempotent: unchanged ones are not rewritten)."""
    from rds_slowlog.airflow.config import load_config

    cfg = load_config(config_path)
    return _index_hook(cfg).install_templates(prefix=cfg.index_prefix, replicas=cfg.search.replicas)


def plan_index_groups(stage_results: Sequence[Mapping[str, Any]], chunks_per_task: int,
                      max_tasks: int = 1024) -> list[dict[str, Any]]:
    """Cut the run's staged chunks into groups for the mapped index task: ``chunks_per_task`` each, more
    per group when that would exceed ``max_tasks`` (Airflow's ``[core] max_map_length``)."""
    chunks = [(r["instance"], c, n) for r in stage_results if r for c, n in zip(r["chunks"], r["chunk_docs"])]
    if not chunks:
        return []
    per = max(chunks_per_task, -(-len(chunks) // max_tasks))
    groups = []
    for k in range(0, len(chunks), per):
        part = chunks[k:k + per]
        instances = sorted({i for i, _, _ in part})
        label = f"{'+'.join(instances)}: {len(part)} chunk(s), group {len(groups) + 1}"
        groups.append({"label": label, "chunks": [c for _, c, _ in part], "docs": sum(n for _, _, n in part),
                       "instances": instances})
    return groups


class IndexSlowLogChunksOperator(BaseOperator):
    """Bulk-index a group of staged chunks into Elasticsearch/OpenSearch (mapped over the planned groups).

    :param group: ``{"label", "chunks": [URL…], "docs"}`` (templated; usually ``.expand(group=...)``).
    :param config_path: the DAG's JSON configuration (search connection, knobs).
    :return: the group's stats (``docs = indexed + failed + dead_lettered + not_attempted``).
    :raises rds_slowlog.exceptions.IndexingError: a chunk failed (its stats and the total are logged first).
    """

    template_fields: Sequence[str] = ("group", "config_path")
    ui_color = "#eafaf1"

    def __init__(self, *, group: Any, config_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group = group
        self.config_path = config_path

    def execute(self, context: Any) -> dict[str, Any]:
        from rds_slowlog.airflow.config import load_config
        from rds_slowlog.exceptions import IndexingError
        from rds_slowlog.indexing import ChunkIndexer
        from rds_slowlog.staging import ChunkMismatch
        from rds_slowlog.stats import peak_rss_mb, rss_mb

        start_rss = rss_mb()
        cfg = load_config(self.config_path)
        group = self.group
        context["slowlog_label"] = group["label"]
        _register_storage()
        hook = _index_hook(cfg)
        indexer = ChunkIndexer(hook.client, engine=hook.engine, options=_bulk_options(cfg))
        chunks, done, restaged = list(group["chunks"]), 0, set()
        while done < len(chunks):
            try:
                for url, stats in indexer.iter_chunks([(u, None) for u in chunks[done:]]):
                    done += 1
                    self.log.info("indexed %s: %s", url.rsplit("/", 1)[-1], stats)
            except ChunkMismatch as e:
                # the chunks before it are indexed and counted; it was never sent. Stage it again (same ids,
                # same bytes) and go on from it; a second mismatch of the same chunk is not repairable here.
                if e.url in restaged:
                    raise
                self.log.warning("%s; staging it again from the window's source", e)
                restage_chunk(e.url, cfg, log=self.log)
                restaged.add(e.url)
            except IndexingError as e:
                self.log.error("%s; this task's books: %s", e, self._books(indexer, group))
                raise
        total = self._books(indexer, group)
        if total["updated"] and getattr(context.get("ti"), "try_number", 1) == 1:
            self.log.warning("%d document(s) replaced one with the same _id on a first try: this window was "
                             "indexed before (a rerun), or its documents collide", total["updated"])
        total["peak_rss_mb"] = round(peak_rss_mb(), 1)     # the indexer's totals leave it 0: this task's own
        total["start_rss_mb"] = round(start_rss, 1)
        return total

    @staticmethod
    def _books(indexer: Any, group: Mapping[str, Any]) -> dict[str, Any]:
        """What the indexer answered for, against the group's staged documents (the rest: not attempted)."""
        t = dict(indexer.totals)
        t["docs"] = group["docs"]
        t["not_attempted"] = t["docs"] - t["indexed"] - t["failed"] - t["dead_lettered"]
        return t


def restage_chunk(url: str, cfg: SlowLogConfig, *, log: Any) -> None:
    """Replace a staged chunk that no longer matches its manifest with the same chunk staged again.

    Why here and not by failing: the stage task is upstream of every index task, so Airflow's retry of an
    index task cannot re-stage, and failing would leave the window to a manual rerun. Staging is
    deterministic — the same files through one document builder with the run's ingest id, chunks cut by
    document count and size — so the window's stage spec (kept in the manifest's meta) reproduces the chunk
    byte for byte. It is staged into a scratch prefix beside the window (never over the live chunks, which
    other index tasks may be reading), checked against the manifest's sha256, and only then copied over the
    bad object; anything else (the source changed or is gone, ``memory_threshold_mb`` cut the chunks by
    memory) fails with a message asking for a rerun of the window, which restages everything.
    """
    import uuid

    from rds_slowlog.staging import StagingError, filesystem, join, read_manifest

    base, _, name = url.rpartition("/")
    manifest = read_manifest(base)
    expected = next((c for c in manifest.chunks if c.name == name), None)
    spec = manifest.meta.get("spec")
    if expected is None or not spec:
        why = "does not list it" if expected is None else "has no stage spec (staged by an older version)"
        raise StagingError(f"{url} cannot be staged again: its manifest {why}; rerun the window")
    scratch = join(base, f"restage-{uuid.uuid4().hex[:12]}")
    fs, scratch_path = filesystem(scratch)
    try:
        result, _, _ = stage_spec(spec, cfg, scratch, dag_id=manifest.meta["dag_id"],
                                  run_id=manifest.meta["run_id"], archive=None, log=log)
        again = next((c for c in result.manifest.chunks if c.name == name), None)
        if again is None or again.sha256 != expected.sha256 or again.docs != expected.docs:
            raise StagingError(
                f"staging {url} again did not reproduce it (sha256 {again.sha256 if again else 'no such chunk'} "
                f"vs {expected.sha256} in the manifest): the window's source changed or chunks were cut by memory "
                f"(memory_threshold_mb); rerun the window")
        data = fs.cat_file(join(scratch_path, name))
        target_fs, target = filesystem(url)
        target_fs.pipe_file(target, data)
        log.info("staged %s again: %d document(s), sha256 %s as in the manifest", name, again.docs, again.sha256)
    finally:
        if fs.exists(scratch_path):
            fs.rm(scratch_path, recursive=True)


# ------------------------------------------------------------------------------------------- summarize

class SummarizeSlowLogOperator(BaseOperator):
    """Add the run's stats up, log its top classes, write run and history documents, emit the Asset event.

    :param stage_results: the stage tasks' results (templated XComArg).
    :param index_results: the index tasks' results (templated XComArg).
    :param config_path: the DAG's JSON configuration.
    :param top: classes logged in the digest.
    """

    template_fields: Sequence[str] = ("stage_results", "index_results", "config_path")
    ui_color = "#f5eef8"

    def __init__(self, *, stage_results: Any, index_results: Any, config_path: str, top: int = 10,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage_results = stage_results
        self.index_results = index_results
        self.config_path = config_path
        self.top = top

    def execute(self, context: Any) -> dict[str, Any]:
        import orjson

        from rds_slowlog.airflow.config import load_config
        from rds_slowlog.history import history_documents, run_document
        from rds_slowlog.indexing import ChunkIndexer
        from rds_slowlog.stats import add, empty
        from rds_slowlog.staging import HISTORY, read_json

        cfg = load_config(self.config_path)
        _register_storage()
        stages = [s for s in (self.stage_results or []) if s]
        indexed = [r for r in (self.index_results or []) if r]
        total = empty()
        for s in stages:
            total = add(total, s["stats"])
        for r in indexed:
            for k in ("indexed", "created", "updated", "failed", "dead_lettered", "retries"):
                total[k] += r.get(k, 0)  # type: ignore[literal-required]
        total["not_attempted"] = total["docs"] - total["indexed"] - total["failed"] - total["dead_lettered"]
        if total["not_attempted"] or total["failed"]:
            raise RuntimeError(f"the books do not balance: {total}")
        dag_id = _dag_id(context)
        run_id = context.get("run_id", "manual")
        docs: list[dict[str, Any]] = []
        top: list[tuple[str, dict[str, Any]]] = []
        for s in stages:
            classes = read_json(s["staging"], HISTORY)
            top += [(s["instance"], c) for c in classes]
            docs += history_documents(classes, instance=s["instance"], engine=s["engine"],
                                      window_start=s["window_start"], window_end=s["window_end"],
                                      index_prefix=cfg.index_prefix)
            docs.append(run_document(instance=s["instance"], window_start=s["window_start"],
                                     window_end=s["window_end"], index_prefix=cfg.index_prefix, stats=s["stats"],
                                     dag_id=dag_id, run_id=run_id, files=s["files"], sources=[s["source"]],
                                     classes=len(classes)))
        if docs:
            hook = _index_hook(cfg)
            lines = [orjson.dumps(d) for d in docs]
            res = ChunkIndexer(hook.client, engine=hook.engine, options=_bulk_options(cfg)).index_lines(
                lines, name="history+runs")
            self.log.info("history and run documents: %s", res)
        top.sort(key=lambda ic: -ic[1]["query_time_sum"])
        lines_out = [f"{'rank':>4} {'instance':<20} {'query id':<32} {'count':>8} {'total s':>10} {'p95 s':>9}  "
                     "fingerprint"]
        for k, (inst, c) in enumerate(top[: self.top], 1):
            p95 = c["query_time_p95"] if c["query_time_p95"] is not None else 0.0
            lines_out.append(f"{k:>4} {inst:<20} {c['query_id']:<32} {c['count']:>8} {c['query_time_sum']:>10.4f} "
                             f"{p95:>9.4f}  {c['fingerprint'][:80]}")
        self.log.info("window stats: %s\ntop query classes by total Query_time:\n%s", dict(total),
                      "\n".join(lines_out))
        events = context.get("outlet_events")
        if events is not None:
            for outlet in self.outlets or []:
                events[outlet].extra = {"window_start": _iso(stages[0]["window_start"]) if stages else None,
                                        "docs": total["docs"], "instances": [s["instance"] for s in stages]}
        from rds_slowlog.stats import peak_rss_mb

        # its own peak (``stats`` holds the stage tasks' maximum): every task's memory is accounted for
        return {"stats": dict(total), "instances": [s["instance"] for s in stages],
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "top": [{"instance": i, **{k: c[k] for k in ("query_id", "fingerprint", "count", "query_time_sum",
                                                               "query_time_p95")}} for i, c in top[: self.top]]}


# ------------------------------------------------------------------------------------------- retention

class SlowLogRetentionOperator(BaseOperator):
    """Remove the window's staging and delete indices older than ``retention_days``.

    :param stage_results: the stage tasks' results (their staging URLs are removed).
    :param config_path: the DAG's JSON configuration (``retention_days``, index prefix).
    :param logical_now: templated reference time for the age (default: the window's end).
    """

    template_fields: Sequence[str] = ("stage_results", "config_path", "logical_now")

    def __init__(self, *, stage_results: Any, config_path: str, logical_now: str = "{{ data_interval_end }}",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage_results = stage_results
        self.config_path = config_path
        self.logical_now = logical_now

    def execute(self, context: Any) -> dict[str, Any]:
        from rds_slowlog.airflow.config import load_config
        from rds_slowlog.staging import filesystem

        cfg = load_config(self.config_path)
        _register_storage()
        removed = []
        for s in self.stage_results or []:
            if not s:
                continue
            fs, path = filesystem(s["staging"])
            if fs.exists(path):
                fs.rm(path, recursive=True)
                removed.append(s["staging"])
        deleted = delete_old_indices(_index_hook(cfg), cfg.index_prefix, cfg.retention_days,
                                     _epoch(self.logical_now))
        self.log.info("removed staging %s; deleted %d index(es) older than %d day(s): %s", removed, len(deleted),
                      cfg.retention_days, deleted)
        from rds_slowlog.stats import peak_rss_mb

        return {"staging_removed": removed, "indices_deleted": deleted, "peak_rss_mb": round(peak_rss_mb(), 1)}


def delete_old_indices(hook: Any, prefix: str, days: int, now: float) -> list[str]:
    """Delete ``<prefix>-<engine>-YYYY.MM.DD`` indices (and monthly history/run indices) older than ``days``."""
    import re

    from rds_slowlog.search import raw_request

    status, body = raw_request(hook.client, hook.engine, "GET", f"/_cat/indices/{prefix}-*",
                               params={"format": "json", "h": "index"})
    if status == 404:
        return []
    if status != 200:
        raise RuntimeError(f"listing {prefix}-* indices failed: HTTP {status}: {body}")
    cutoff = now - days * 86400
    daily = re.compile(re.escape(prefix) + r"-(?:mysql|postgres)-(\d{4})\.(\d\d)\.(\d\d)")
    monthly = re.compile(re.escape(prefix) + r"-(?:history-(?:mysql|postgres)|runs)-(\d{4})\.(\d\d)")
    old = []
    for row in body or []:
        name = row.get("index", "")
        m = daily.fullmatch(name)
        if m is not None:
            end = datetime(*map(int, m.groups()), tzinfo=timezone.utc).timestamp() + 86400
        else:
            m = monthly.fullmatch(name)
            if m is None:
                continue
            y, mo = map(int, m.groups())
            end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=timezone.utc).timestamp()
        if end <= cutoff:
            old.append(name)
    for name in old:
        raw_request(hook.client, hook.engine, "DELETE", f"/{name}")
    return sorted(old)
