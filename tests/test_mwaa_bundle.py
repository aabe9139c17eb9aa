"""The MWAA bundle (``make mwaa-bundle``): built for real, installed the way MWAA installs it, parsed by DagBag.

* The Python 3.12 bundle (what MWAA runs) is built from wheels chosen by platform tags. Its requirements.txt
  must resolve with ``--no-index`` from the unzipped plugins.zip alone, with the packages the MWAA image
  provides counted as installed: they are laid out as ``*.dist-info/METADATA`` (the real metadata PyPI serves
  for those exact versions, from pip's own report) on the path of a bare venv's pip — so pip treats them as
  present exactly as on MWAA — and the resolution must install every bundled wheel, nothing else, and
  change none of the provided packages.
* The bundle for this interpreter's Python (3.11 here) is installed for real: a fresh venv gets what the MWAA
  image installs (its package list under MWAA's own 3.3.1 constraints file — Airflow 3.3.1, the Amazon
  provider 9.34.0 …, i.e. MWAA's pins, not this project's lock), then ``pip install -r requirements.txt`` with
  ``/usr/local/airflow/plugins`` rewritten to the unzipped plugins.zip (the find-links line and the
  constraints file that ships inside the zip), then DagBag parses the bundle's ``dags/``.
* The IAM policy covers every AWS call the code makes, and no more: boto3 calls are found in the code, S3
  calls are recorded from the real staging code and s3fs against moto.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from moto_server import KEY_ID, REGION, SECRET, aws_credentials, moto_endpoint  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _bundler() -> Any:
    spec = importlib.util.spec_from_file_location("mwaa_bundle", ROOT / "scripts" / "mwaa_bundle.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules.setdefault("mwaa_bundle", module)
    spec.loader.exec_module(module)
    return module


mb = _bundler()
HERE_PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def _run(cmd: list[str], timeout: float = 1800, **kwargs: Any) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res


def _unzip(bundle: Path, dest: Path) -> Path:
    with zipfile.ZipFile(bundle / "plugins.zip") as zf:
        zf.extractall(dest)
    return dest


def _local_requirements(bundle: Path, plugins: Path, dest: Path) -> Path:
    """requirements.txt with MWAA's plugins path pointed at the unzipped plugins.zip (nothing else changed)."""
    text = (bundle / "requirements.txt").read_text()
    assert text.count(mb.MWAA_PLUGINS) == 2    # the constraints file inside the zip, and --find-links
    dest.write_text(text.replace(mb.MWAA_PLUGINS, str(plugins)))
    return dest


@pytest.fixture(scope="module")
def bundle312(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("mwaa") / "py312"
    t0 = time.monotonic()
    built = mb.build(out, python_version="3.12")
    print(f"bundle 3.12 built in {time.monotonic() - t0:.1f} s")
    return out, built


@pytest.fixture(scope="module")
def bundle_here(tmp_path_factory: pytest.TempPathFactory, bundle312: tuple[Path, Any]) -> tuple[Path, Any]:
    if HERE_PY == "3.12":
        return bundle312
    out = tmp_path_factory.mktemp("mwaa") / f"py{HERE_PY}"
    return out, mb.build(out, python_version=HERE_PY)


def test_bundle_layout_and_pins(bundle312: tuple[Path, Any]) -> None:
    out, built = bundle312
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest == built.manifest
    with zipfile.ZipFile(out / "plugins.zip") as zf:
        names = sorted(zf.namelist())
        blobs = {n: zf.read(n) for n in names}
        assert all(i.date_time == mb.ZIP_TIME for i in zf.infolist())
    wheels = {m["wheel"]: m for m in manifest["bundled"].values()}
    provider_wheel = manifest["provider"]["wheel"]
    assert names == sorted([*wheels, provider_wheel, mb.constraints_file().name, *manifest["ui_plugins"]])
    for name, meta in wheels.items():     # exactly the wheels pip resolved, byte for byte
        assert hashlib.sha256(blobs[name]).hexdigest() == meta["sha256"]
    # what the provider needs beyond MWAA: the search providers and clients, s3fs, orjson — and nothing MWAA has
    assert {"apache-airflow-providers-elasticsearch", "apache-airflow-providers-opensearch", "elasticsearch",
            "opensearch-py", "s3fs"} <= set(manifest["bundled"])
    assert not set(manifest["bundled"]) & set(manifest["provided"])
    assert not set(manifest["bundled"]) & set(mb.essential_constraints())
    assert {"apache-airflow", "apache-airflow-core", "apache-airflow-providers-amazon", "boto3", "sqlparse",
            "psutil", "fsspec"} <= set(manifest["provided"])
    assert manifest["provided"]["apache-airflow"] == mb.MWAA_AIRFLOW_VERSION
    # every bundled version is MWAA's constraint (the airflow-notes figures: elasticsearch 6.9.0, opensearch 1.12.0 …)
    pins = dict(mb._pins(mb.constraints_file().read_text()))
    for name, meta in manifest["bundled"].items():
        assert meta["version"] == pins[name], name
    # binary wheels are for CPython 3.12 on manylinux x86_64 (platform tags, not this machine's Python)
    from packaging.utils import parse_wheel_filename

    for name in wheels:
        tags = next(iter(parse_wheel_filename(name)[3:]))
        assert any(t.interpreter in ("py3", "cp312") and t.abi in ("none", "abi3", "cp312")
                   and (t.platform == "any" or t.platform in manifest["platforms"]) for t in tags), name
    lines = [x for x in (out / "requirements.txt").read_text().splitlines() if x and not x.startswith("#")]
    assert lines == [f'--constraint "{mb.MWAA_PLUGINS}/{mb.constraints_file().name}"',
                     f"--find-links {mb.MWAA_PLUGINS}", "--no-index",
                     f"{mb.PROVIDER}[airflow]=={manifest['provider']['version']}"]
    assert blobs[mb.constraints_file().name] == mb.constraints_file().read_bytes()
    # dags/: the DAG file and its config as in the checkout; every non-DAG file in .airflowignore
    src = {f.name for f in (ROOT / "dags").iterdir() if f.is_file() and not f.name.startswith(".")}
    assert {f.name for f in (out / "dags").iterdir()} == src | {".airflowignore"}
    for name in src:
        assert (out / "dags" / name).read_bytes() == (ROOT / "dags" / name).read_bytes()
    ignored = [x for x in (out / "dags" / ".airflowignore").read_text().splitlines() if x and not x.startswith("#")]
    assert sorted(ignored) == sorted(n for n in src if not n.endswith(".py")) and "rds_slowlog.json" in ignored
    deploy = (out / "DEPLOY.md").read_text()
    assert "aws mwaa update-environment" in deploy and "aws s3 cp" in deploy and "{{" not in deploy
    assert json.loads((out / "iam-policy.json").read_text()) == _policy()
    for w in wheels:
        assert f"`{w}`" in deploy


def test_provider_wheel_and_zip_are_reproducible(tmp_path: Path) -> None:
    a = mb.build_provider_wheel(tmp_path / "a", 1700000000)
    b = mb.build_provider_wheel(tmp_path / "b", 1700000000)
    assert a.name == b.name and mb.sha256(a) == mb.sha256(b)
    members = {"x.whl": a, "c.txt": mb.constraints_file()}
    mb.write_zip(tmp_path / "1.zip", members)
    mb.write_zip(tmp_path / "2.zip", dict(reversed(list(members.items()))))
    assert mb.sha256(tmp_path / "1.zip") == mb.sha256(tmp_path / "2.zip")


def _write_installed(site: Path, entries: dict[str, dict[str, Any]]) -> None:
    """The provided packages as installed distributions: ``<name>-<version>.dist-info/METADATA`` from the
    metadata PyPI serves for those files (pip's report), which is all pip's resolver reads of an installed one."""
    for entry in entries.values():
        meta = entry["metadata"]
        msg = Message()
        msg["Metadata-Version"] = "2.1"
        msg["Name"] = meta["name"]
        msg["Version"] = meta["version"]
        if meta.get("requires_python"):
            msg["Requires-Python"] = meta["requires_python"]
        for extra in meta.get("provides_extra", []):
            msg["Provides-Extra"] = extra
        for req in meta.get("requires_dist", []):
            msg["Requires-Dist"] = req
        d = site / f"{re.sub(r'[-.]+', '_', meta['name'])}-{meta['version']}.dist-info"
        d.mkdir(parents=True)
        (d / "METADATA").write_text(msg.as_string())
        (d / "INSTALLER").write_text("mwaa-image\n")


def test_py312_requirements_resolve_offline_against_mwaa_packages(bundle312: tuple[Path, Any],
                                                                  tmp_path: Path) -> None:
    out, built = bundle312
    plugins = _unzip(out, tmp_path / "plugins")
    reqs = _local_requirements(out, plugins, tmp_path / "requirements.txt")
    site = tmp_path / "mwaa-site-packages"
    _write_installed(site, built.provided)
    exe = mb.target_interpreter("3.12") or sys.executable
    _run([exe, "-m", "venv", str(tmp_path / "pipenv")])
    # this venv's pip (platform options with --dry-run need pip >= 22.3), run inside the bare venv's interpreter
    pip = [sys.executable, "-m", "pip", "--python", str(tmp_path / "pipenv" / "bin" / "python")]
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PYTHONHOME")}
    env["PYTHONPATH"] = str(site)
    listed = _run([*pip, "list", "--format=json"], env=env)
    assert {mb.canonical(p["name"]) for p in json.loads(listed.stdout)} >= set(built.provided)
    report = tmp_path / "report.json"
    res = _run([*pip, "install", "--dry-run", "--report", str(report), *mb.Target("3.12").pip_flags(),
                "-r", str(reqs)], env=env)
    installs = {mb.canonical(i["metadata"]["name"]): i for i in json.loads(report.read_text())["install"]}
    manifest = built.manifest
    assert set(installs) == set(manifest["bundled"]) | {mb.PROVIDER}, res.stdout[-3000:]
    for name, meta in manifest["bundled"].items():
        assert installs[name]["metadata"]["version"] == meta["version"]
        assert installs[name]["download_info"]["url"].startswith(plugins.as_uri())
    # and without the MWAA packages present the same file cannot resolve: the check above is not vacuous
    env.pop("PYTHONPATH")
    bare = subprocess.run([*pip, "install", "--dry-run", *mb.Target("3.12").pip_flags(), "-r", str(reqs)],
                          capture_output=True, text=True, env=env, timeout=600)
    said = bare.stdout + bare.stderr
    assert bare.returncode != 0 and ("conflicting dependencies" in said or "No matching distribution" in said)


_DAGBAG = r"""
import json, os, sys, time
t0 = time.monotonic()
from airflow.models.dagbag import DagBag
import rds_slowlog
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"import_errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dag_ids": sorted(bag.dag_ids), "seconds": time.monotonic() - t0,
                  "file_seconds": [s.duration.total_seconds() if hasattr(s.duration, "total_seconds")
                                   else s.duration for s in bag.dagbag_stats],
                  "rds_slowlog": rds_slowlog.__file__}))
"""


def _installed(python: Path) -> dict[str, str]:
    code = ("import json, importlib.metadata as m; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    got = json.loads(_run([str(python), "-c", code]).stdout)
    return {mb.canonical(k): v for k, v in got.items()}


def test_installs_as_mwaa_does_and_dagbag_parses(bundle_here: tuple[Path, Any], tmp_path: Path) -> None:
    out, built = bundle_here
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_FIND_LINKS", "VIRTUAL_ENV")}
    # 1. what the MWAA image installs, with MWAA's constraints (MWAA's install script, less source-only psycopg2)
    reqs, _ = mb.base_requirements()
    t0 = time.monotonic()
    _run([*pip, "install", "--quiet", "--only-binary=:all:", "-c", str(mb.constraints_file()), *reqs], env=env,
         cwd=tmp_path)
    base_seconds = time.monotonic() - t0
    before = _installed(python)
    assert before["apache-airflow"] == mb.MWAA_AIRFLOW_VERSION
    # 2. the user requirements, offline, from the unzipped plugins.zip
    plugins = _unzip(out, tmp_path / "plugins")
    local = _local_requirements(out, plugins, tmp_path / "requirements.txt")
    t0 = time.monotonic()
    _run([*pip, "install", "-r", str(local)], env=env, cwd=tmp_path)
    req_seconds = time.monotonic() - t0
    after = _installed(python)
    added = {n: v for n, v in after.items() if n not in before}
    assert added == {**{n: m["version"] for n, m in built.manifest["bundled"].items()},
                     mb.PROVIDER: built.manifest["provider"]["version"]}
    assert {n: after[n] for n in before} == before          # nothing MWAA installed was changed
    _run([*pip, "check"], env=env)
    # 3. DagBag over the bundle's dags/ (not the checkout), in the MWAA-like venv
    dags = tmp_path / "usr-local-airflow-dags"
    dags.mkdir()
    for f in (out / "dags").iterdir():
        (dags / f.name).write_bytes(f.read_bytes())
    home = tmp_path / "airflow-home"
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               AIRFLOW__CORE__UNIT_TEST_MODE="False")
    res = _run([str(python), "-c", _DAGBAG, str(dags)], env=env, cwd=tmp_path, timeout=600)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["import_errors"] == {}
    assert got["dag_ids"] == ["rds_slowlog_hourly"]
    assert got["rds_slowlog"].startswith(str(venv))       # the installed wheel, not this checkout
    assert max(got["file_seconds"]) < 30                   # MWAA's DAG import timeout
    print(f"python {HERE_PY}: MWAA base install {base_seconds:.0f} s ({len(before)} packages), "
          f"requirements.txt {req_seconds:.1f} s (+{len(added)}), DagBag {got['seconds']:.1f} s, "
          f"DAG file {max(got['file_seconds']):.2f} s")


# ------------------------------------------------------------------------------------------------- IAM

#: Modules that call AWS APIs through boto3 clients, and the client's service. A new calling module must be
#: added here (the test fails on a call it cannot place), so the policy is reviewed with it.
AWS_MODULES = {"sources/rds.py": "rds", "sources/cloudwatch.py": "logs", "airflow/operators.py": "rds",
               "s3store.py": "s3"}
_CALL = re.compile(r"""(?:_call\(\s*|get_paginator\(\s*|getattr\(self\.client,\s*)["']([a-z][a-z_0-9]*)["']""")
_DIRECT = re.compile(r"\bclient\.([a-z]+_[a-z_0-9]+)\(")
#: What marks a module as talking to AWS (other clients — Elasticsearch, OpenSearch — have methods too).
_AWS = re.compile(r"\bboto3\b|\bbotocore\b|\bAws\w*Hook\b|\bRdsHook\b|\bmake_client\(")


def _policy() -> dict[str, Any]:
    return json.loads((mb.MWAA_DIR / "iam-policy.json").read_text())


def _policy_actions() -> set[str]:
    return {a for s in _policy()["Statement"] if s["Effect"] == "Allow"
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def _code_actions() -> set[str]:
    import boto3

    found: dict[str, set[str]] = {}
    pkg = ROOT / "include" / "rds_slowlog"
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).as_posix()
        if rel.startswith("testing/"):
            continue
        text = path.read_text()
        if not _AWS.search(text):
            continue
        names = set(_CALL.findall(text)) | {m for m in _DIRECT.findall(text) if m != "get_paginator"}
        names.discard("method")
        if names:
            assert rel in AWS_MODULES, f"{rel} calls {sorted(names)}: add it to AWS_MODULES and to the policy"
            found.setdefault(AWS_MODULES[rel], set()).update(names)
    actions = set()
    for service, names in found.items():
        client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        api = client.meta.method_to_api_mapping
        prefix = client.meta.service_model.signing_name
        for name in names:
            assert name in api, f"{service}.{name} is not a {service} API"
            # S3's IAM actions are not its API names (multipart parts are s3:PutObject, ...)
            actions.add(S3_ACTIONS[name] if service == "s3" else f"{prefix}:{api[name]}")
    if "downloadCompleteLogFile" in (pkg / "sources" / "rds.py").read_text():   # the signed REST call
        actions.add("rds:DownloadCompleteDBLogFile")
    return actions


def test_policy_covers_every_boto3_call_in_the_code() -> None:
    code = _code_actions()
    assert {"rds:DescribeDBLogFiles", "rds:DownloadDBLogFilePortion", "rds:DownloadCompleteDBLogFile",
            "rds:DescribeDBInstances", "logs:FilterLogEvents"} <= code
    policy = _policy_actions()
    assert code - policy == set(), "called but not allowed"
    assert policy - code == set(), "allowed but never called"


#: IAM action authorizing each S3 operation (docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html).
S3_ACTIONS = {"put_object": "s3:PutObject", "create_multipart_upload": "s3:PutObject", "upload_part": "s3:PutObject",
              "complete_multipart_upload": "s3:PutObject", "abort_multipart_upload": "s3:AbortMultipartUpload",
              "get_object": "s3:GetObject", "head_object": "s3:GetObject", "list_objects_v2": "s3:ListBucket",
              "head_bucket": "s3:ListBucket", "get_bucket_location": "s3:GetBucketLocation",
              "delete_object": "s3:DeleteObject", "delete_objects": "s3:DeleteObject"}


def test_policy_covers_the_s3_calls_staging_really_makes(moto_endpoint: str, aws_credentials: None) -> None:
    """Every S3 call of a run, recorded: staging, the raw archive and cleanup through the tasks' S3Store; the
    archive read back as a log source through s3fs (``ObjectStoragePath``, windows past RDS retention)."""
    import boto3
    import s3fs

    from rds_slowlog import staging
    from rds_slowlog.s3store import MIN_PART_BYTES, ObjectWriter, S3Store
    from rds_slowlog.sources.objectstore import ObjectStoreLogSource

    bucket = "mwaa-policy-probe"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    client.create_bucket(Bucket=bucket)
    calls: list[str] = []
    snake = {v: k for k, v in client.meta.method_to_api_mapping.items()}
    client.meta.events.register("before-call.s3", lambda model, **_: calls.append(snake[model.name]))
    store = S3Store(client)
    fs = s3fs.S3FileSystem(endpoint_url=moto_endpoint, key=KEY_ID, secret=SECRET, skip_instance_cache=True)
    real = fs._call_s3

    async def recording(method: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(method)
        return await real(method, *args, **kwargs)

    real_sync = fs.call_s3          # what S3File (open/read/write) calls; it runs the class's coroutine

    def recording_sync(method: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(method)
        return real_sync(method, *args, **kwargs)

    fs._call_s3, fs.call_s3 = recording, recording_sync
    resolver = (lambda url: (store, url[len("s3://"):]) if url.startswith(f"s3://{bucket}/") else None)
    staging.FILESYSTEM_RESOLVERS.insert(0, resolver)
    try:
        base = f"s3://{bucket}/staging/rds_slowlog_hourly/db-1/2026-01-01T00"
        w = staging.ChunkWriter(base, chunk_size=2)
        for i in range(5):
            w.add(json.dumps({"_id": str(i), "n": i}).encode() + b"\n")
        w.write_file(staging.HISTORY, b"{}")
        w.close(source="x.log")
        for url in staging.chunk_urls(base):
            assert len(list(staging.read_chunk(url, staging.chunk_info(url)))) in (1, 2)
        # the raw-log archive (stage task: makedirs + a spooled write uploaded whole; one aborted as a cut
        # download is; a file past the single-PUT limit, lowered here from 5 GiB, goes up in parts)
        store.makedirs(f"{bucket}/archive/db-1", exist_ok=True)
        with store.open(f"{bucket}/archive/db-1/mysql-slowquery.log.2026-01-01.00", "wb") as f:
            f.write(b"# x\n" * (6 * 1024 * 1024 // 4))
        cut = store.open(f"{bucket}/archive/db-1/mysql-slowquery.log.2026-01-01.01", "wb")
        cut.write(b"# x\n" * (6 * 1024 * 1024 // 4))
        cut.abort()
        with ObjectWriter(client, bucket, "archive/db-1/mysql-slowquery.log.2026-01-01.02",
                          single_put_bytes=MIN_PART_BYTES) as f:
            f.write(b"# x\n" * (6 * 1024 * 1024 // 4))
        src = ObjectStoreLogSource(f"s3://{bucket}/archive/db-1", "mysql", fs=fs)
        refs = src.list_files(1767225600, 1767225600 + 3600)       # the window [2026-01-01T00, 01)
        assert len(refs) == 1
        stream = src.open(refs[0])
        assert stream.readinto(bytearray(64)) == 64
        stream.close()
        # cleanup (the retention task): exists + recursive rm of the window's staging
        path = f"{bucket}/staging/rds_slowlog_hourly/db-1/2026-01-01T00"
        assert store.exists(path)
        store.rm(path, recursive=True)
    finally:
        staging.FILESYSTEM_RESOLVERS.remove(resolver)
    unknown = sorted(set(calls) - set(S3_ACTIONS))
    assert not unknown, f"S3 operations with no IAM mapping here (add them, and to the policy): {unknown}"
    assert "create_bucket" not in calls
    needed = {S3_ACTIONS[c] for c in calls}
    print("S3 operations:", sorted(set(calls)))
    assert {"put_object", "upload_part", "get_object", "list_objects_v2", "delete_objects"} <= set(calls)
    policy = _policy_actions()
    assert needed - policy == set()
    # allowed though a healthy run does not call it: a multipart upload (> 5 GiB) whose part failed is aborted
    assert {a for a in policy if a.startswith("s3:")} - needed == {"s3:AbortMultipartUpload"}
