"""Security of the hourly DAG and the CLI on real parts: TLS with a CA the test made, secrets never shown,
PII mode leaving no query text or bind parameter anywhere, and bad configuration failing the first task.

One private Elasticsearch (``rds_slowlog.testing.search_server``) serves HTTPS with a certificate signed by a
CA made here with ``openssl``; it runs with x-pack security (file-realm password). API keys: the integ-test zip
cannot mint them (its security index needs a module it lacks), so an API-key run goes through
:class:`ApiKeyGate`, which accepts exactly ``Authorization: ApiKey <key>`` and forwards to the TLS server with
the password: what a real server checks, checked. DAG runs are ``dag.test()`` runs on SQLite in a fresh
interpreter (``dagtest_runner.py``), against real boto3 → the RDS emulator serving MariaDB and PostgreSQL logs
seeded with canary literals; the bad-configuration cases (wrong CA and no CA among them) run one after the other
in one interpreter. The full-mode and PII runs mark ``cleanup`` successful without running it
(``mark_success_pattern``) so that their staging — chunks, dead letters, manifests, history — can be searched.
"""
from __future__ import annotations

import base64
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))      # tests/airflow: the dag.test helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the API-key gate
import dagtest  # noqa: E402
from api_key_gate import ApiKeyGate  # noqa: E402
from dagtest import states, write_dags  # noqa: E402

from rds_slowlog.pipeline import read_stream  # noqa: E402
from rds_slowlog.testing.logdata import spread_over_hours
from rds_slowlog.testing.rds_emulator import InstanceSpec, RdsEmulator, layout_hourly
from rds_slowlog.testing.search_server import SearchServer, make_tls

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "include" / "sample_logs"
RUNNER = Path(__file__).with_name("dagtest_runner.py")
H0 = datetime(2026, 11, 30, 10, tzinfo=timezone.utc).timestamp()   # the logs are moved to 10:10
WINDOW = H0                                                         # the window [10:00, 11:00)
INSTANCES = {"sec-mariadb": ("mariadb-slowquery.log", "mysql"), "sec-postgres": ("postgresql.log", "postgres")}

# Literal values put into the logs' queries and bind parameters: PII mode must leave none of them anywhere.
# The full-mode run is the positive control: there they must be in the documents.
CANARIES = {
    "mysql": {"'Zürich'": "'PiiZurichCanary'", "'Paris'": "'PiiParisCanary'", "'cancelled'": "'PiiCancelCanary'",
              "'London'": "'PiiLondonCanary'"},
    "postgres": {"'paid'": "'PiiPaidCanary'", "'97752'": "'86753091'", "'1715'": "'42424242'",
                 "'shipped'": "'PiiShippedCanary'", "user1@example.com": "pii.canary@example.org",
                 "customer_id = $1 ORDER BY id": "customer_id = $1 AND note <> 'PiiPreparedCanary' ORDER BY id"},
}
CANARY_VALUES = ["PiiZurichCanary", "PiiParisCanary", "PiiCancelCanary", "PiiLondonCanary", "PiiPaidCanary",
                 "86753091", "42424242", "PiiShippedCanary", "pii.canary@example.org", "PiiPreparedCanary"]

AWS_SECRET = f"AwsSecretKey{uuid.uuid4().hex}"
API_KEY = base64.b64encode(f"keyid{uuid.uuid4().hex[:6]}:ApiKeySecret{uuid.uuid4().hex}".encode()).decode()


# ------------------------------------------------------------------------------------------- the parts

@pytest.fixture(scope="module")
def tls_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("tls")
    return {"good": make_tls(root / "good"), "other": make_tls(root / "other")}


@pytest.fixture(scope="module")
def srv(tls_dirs: dict[str, Any]) -> Iterator[SearchServer]:
    with SearchServer("elasticsearch", nodes=1, tls_dir=tls_dirs["good"].dir) as server:
        yield server


@pytest.fixture(scope="module")
def gate(srv: SearchServer) -> Iterator[ApiKeyGate]:
    g = ApiKeyGate(srv.url, API_KEY, srv.ca_cert)
    yield g
    g.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The samples seeded with the canaries, moved to 10:10 (all in the window [10:00, 11:00), so every kind of
    entry, bind parameters and DETAIL lines included, is in the run) and laid out as RDS's hourly files."""
    root = tmp_path_factory.mktemp("rds")
    out: dict[str, Any] = {}
    for inst, (name, engine) in INSTANCES.items():
        text = (SAMPLES / name).read_text()
        for old, new in CANARIES[engine].items():
            assert old in text
            text = text.replace(old, new)
        data = spread_over_hours(text.encode(), engine, H0, hours=1)
        src = root / f"{inst}.log"
        src.write_bytes(data)
        assert layout_hourly(src, root / "instances" / inst, engine)
        out[inst] = data
    out["_root"] = root / "instances"
    return out


def window_entries(logs: dict[str, Any], inst: str) -> list[Any]:
    run = read_stream(io.BufferedReader(io.BytesIO(logs[inst])), inst, INSTANCES[inst][1])
    return [e for e in run.entries if e.end_time is not None and WINDOW <= e.end_time < WINDOW + 3600]


def window_canaries(logs: dict[str, Any]) -> set[str]:
    """The canaries the window's entries carry (query text, bind parameters, DETAIL/CONTEXT attributes)."""
    texts = " ".join(f"{e.query} {e.attrs}" for i in INSTANCES for e in window_entries(logs, i))
    return {c for c in CANARY_VALUES if c in texts}


@pytest.fixture(scope="module")
def emulator(logs: dict[str, Any]) -> Iterator[RdsEmulator]:
    root = logs["_root"]
    specs = {inst: InstanceSpec(root=root / inst, engine=engine) for inst, (_, engine) in INSTANCES.items()}
    with RdsEmulator(specs) as emu:
        yield emu


def _es_conn(srv: SearchServer, **extra: Any) -> str:
    return json.dumps({"conn_type": "elasticsearch", "host": "127.0.0.1", "port": srv.http_ports[0],
                       "schema": "https", "login": srv.username, "password": srv.password, "extra": extra})


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory, emulator: RdsEmulator, srv: SearchServer,
                gate: ApiKeyGate, tls_dirs: dict[str, Any]) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow")
    aws = {"conn_type": "aws", "login": "AKIASECURITYTEST", "password": AWS_SECRET,
           "extra": {"endpoint_url": emulator.endpoint_url, "region_name": "us-east-1"}}
    closed_port = _closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "ES_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
        "AIRFLOW_CONN_AWS_UNREACHABLE": json.dumps({**aws, "extra": {"endpoint_url": f"http://127.0.0.1:{closed_port}",
                                                                     "region_name": "us-east-1",
                                                                     "config_kwargs": {"retries": {
                                                                         "total_max_attempts": 2}}}}),
        # TLS verified with the test's CA (the password is a secret under test)
        "AIRFLOW_CONN_ELASTICSEARCH_DEFAULT": _es_conn(srv, ca_certs=srv.ca_cert),
        "AIRFLOW_CONN_ES_WRONG_CA": _es_conn(srv, ca_certs=str(tls_dirs["other"].ca_cert)),
        "AIRFLOW_CONN_ES_NO_CA": _es_conn(srv),
        "AIRFLOW_CONN_ES_UNREACHABLE": json.dumps({"conn_type": "elasticsearch", "host": "127.0.0.1",
                                                   "port": closed_port, "schema": "https", "login": "u",
                                                   "password": "p", "extra": {"ca_certs": srv.ca_cert}}),
        "AIRFLOW_CONN_ES_API_KEY": json.dumps({"conn_type": "elasticsearch", "host": "127.0.0.1",
                                               "port": gate.port, "schema": "http",
                                               "extra": {"api_key": API_KEY}}),
        # a wrong key: the gate answers 401 as the server would
        "AIRFLOW_CONN_ES_BAD_KEY": json.dumps({"conn_type": "elasticsearch", "host": "127.0.0.1",
                                               "port": gate.port, "schema": "http",
                                               "extra": {"api_key": base64.b64encode(b"x:y").decode()}}),
    })
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=600)
    return env


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dags(tmp_path: Path, **overrides: Any) -> tuple[Path, str]:
    return write_dags(tmp_path, INSTANCES, "sec", **overrides)


def run_dag(env: dict[str, str], dags: Path, mark_success: str | None = None) -> dict[str, Any]:
    """``dag.test`` of the manual run whose window is [10:00, 11:00)."""
    return dagtest.run_dag(env, dags, WINDOW + 3600, mark_success)


# ------------------------------------------------------------------------------------------- looking

def secret_forms(*secrets: str) -> list[bytes]:
    """Each secret as it could be shown: as is, URL-quoted, in base64 (alone and in a Basic header)."""
    from urllib.parse import quote

    out: set[bytes] = set()
    for s in secrets:
        out |= {s.encode(), quote(s, safe="").encode(), base64.b64encode(s.encode())}
    return sorted(out)


def es_dump(srv: SearchServer, prefix: str) -> tuple[dict[str, int], bytes]:
    """Every document of ``prefix-*`` (per index count, and all ``_source``s as JSON)."""
    srv.request("POST", f"/{prefix}-*/_refresh")
    status, body = srv.request("GET", f"/_cat/indices/{prefix}-*?format=json")
    assert status == 200, body
    counts = {r["index"]: int(r["docs.count"]) for r in body}
    docs = []
    for index in counts:
        status, page = srv.request("POST", f"/{index}/_search?size=10000", {"query": {"match_all": {}}})
        assert status == 200, page
        assert len(page["hits"]["hits"]) == counts[index]
        docs += [h["_source"] for h in page["hits"]["hits"]]
    return counts, json.dumps(docs, ensure_ascii=False).encode()


def files_text(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, gunzipped when gzip (staged chunks, archives)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            out[str(p)] = data
    return out


def hits(haystacks: dict[str, bytes], needles: list[bytes]) -> list[tuple[str, str]]:
    found = []
    for name, data in haystacks.items():
        low = data.lower()
        for n in needles:
            if n.lower() in low:
                found.append((name, n.decode(errors="replace")))
    return found


def _conflicting_mysql_index(srv: SearchServer, prefix: str) -> None:
    """A mapping that refuses every MySQL document (thread_id as boolean): forces dead letters."""
    status, body = srv.request("PUT", f"/{prefix}-mysql-2026.11.30", {"mappings": {"properties": {"mysql": {
        "properties": {"thread_id": {"type": "boolean"}}}}}})
    assert status == 200, body


# ------------------------------------------------------------------------------------------- TLS + secrets

def _full_run_haystacks(res: dict[str, Any], env: dict[str, str], tmp_path: Path, srv: SearchServer,
                        prefix: str) -> tuple[dict[str, bytes], dict[str, int]]:
    """Every place a run leaves text: its task logs (dag.test prints them; the log folder too), XCom values
    and rendered template fields (from the runner, and the raw SQLite metadata database), the staging
    (chunks gunzipped, manifests, history, dead letters) and every document in the index."""
    counts, docs = es_dump(srv, prefix)
    hay = {"task logs (dag.test output)": res["log"].encode(),
           "xcom": json.dumps(res["xcom"]).encode(), "rendered template fields": json.dumps(res["rendered"]).encode(),
           "index documents": docs}
    hay.update(files_text(Path(env["AIRFLOW_HOME"])))       # logs/ and airflow.db (XCom, rendered fields, …)
    hay.update(files_text(tmp_path / "staging"))
    return hay, counts


def test_tls_run_with_secrets_shows_none_of_them(airflow_env, srv, logs, tmp_path) -> None:
    """A full run over HTTPS with ``ca_certs`` (verification on), a password and an AWS secret key in the
    connections, dead letters forced: exact counts, and neither secret anywhere the run left text."""
    dags, prefix = _dags(tmp_path, knobs={"failure_threshold": 100000})
    _conflicting_mysql_index(srv, prefix)
    res = run_dag(airflow_env, dags, mark_success="^cleanup$")    # keep the staging to look at it
    assert res["state"] == "success", res["log"][-5000:]
    want = {i: len(window_entries(logs, i)) for i in INSTANCES}
    s = res["xcom"]["summarize"]["-1"]["stats"]
    assert s["docs"] == sum(want.values()) and s["dead_lettered"] == want["sec-mariadb"] > 0
    assert s["indexed"] == want["sec-postgres"] > 0 and s["failed"] == s["not_attempted"] == 0
    dead = list((tmp_path / "staging").rglob("*.deadletter.ndjson"))
    assert sum(len(p.read_bytes().splitlines()) for p in dead) == want["sec-mariadb"]
    assert list((tmp_path / "staging").rglob("*.ndjson.gz")), "the staged chunks are kept for the grep"

    hay, counts = _full_run_haystacks(res, airflow_env, tmp_path, srv, prefix)
    assert counts[f"{prefix}-mysql-2026.11.30"] == 0
    assert sum(n for i, n in counts.items() if re.fullmatch(rf"{prefix}-postgres-[\d.]+", i)) == want["sec-postgres"]
    assert sum(n for i, n in counts.items() if "-runs-" in i) == 2
    assert sum(n for i, n in counts.items() if "-history-" in i) > 0
    assert any(k.endswith("airflow.db") for k in hay)
    assert res["rendered"]["stage"] and res["rendered"]["index"]
    # positive control for the PII test: full mode stores query text and bind parameters, so the canaries
    # of the window's PostgreSQL entries are found in the documents, and the MySQL ones in the dead letters
    canaries = window_canaries(logs)
    assert {"86753091", "PiiPaidCanary"} <= canaries and canaries & {"PiiParisCanary", "PiiZurichCanary"}
    dead_text = b"".join(p.read_bytes() for p in dead)
    assert [c for c in canaries if c.encode() not in hay["index documents"] + dead_text] == []
    assert hits(hay, secret_forms(srv.password, AWS_SECRET,
                                  f"{srv.username}:{srv.password}")) == []


def test_api_key_and_pii_mode_run_shows_no_secret_and_no_query_text(airflow_env, srv, gate, logs,
                                                                    tmp_path) -> None:
    """``fingerprint_only`` with an API-key connection and dead letters: no canary literal and no secret in
    documents, staging, dead letters, history documents, run documents, task logs, XCom, rendered fields."""
    dags, prefix = _dags(tmp_path, pii_mode="fingerprint_only", search={"kind": "elasticsearch",
                                                                       "conn_id": "es_api_key"},
                         knobs={"failure_threshold": 100000})
    _conflicting_mysql_index(srv, prefix)
    seen_before = len(gate.seen)
    res = run_dag(airflow_env, dags, mark_success="^cleanup$")
    assert res["state"] == "success", res["log"][-5000:]
    assert set(gate.seen[seen_before:]) == {"ApiKey"}, "every request carried the API key"
    want = {i: len(window_entries(logs, i)) for i in INSTANCES}
    # the canaries are in this window's input (else the grep below proves nothing)
    assert {"86753091", "PiiPaidCanary", "PiiParisCanary"} <= window_canaries(logs)
    s = res["xcom"]["summarize"]["-1"]["stats"]
    assert s["docs"] == sum(want.values()) and s["dead_lettered"] == want["sec-mariadb"]
    assert s["indexed"] == want["sec-postgres"]

    hay, counts = _full_run_haystacks(res, airflow_env, tmp_path, srv, prefix)
    assert sum(n for i, n in counts.items() if "-history-" in i) > 0 and any("-runs-" in i for i in counts)
    assert list((tmp_path / "staging").rglob("*.deadletter.ndjson"))
    assert hits(hay, [c.encode() for c in CANARY_VALUES]) == []
    assert hits(hay, secret_forms(API_KEY, *base64.b64decode(API_KEY).decode().split(":"), AWS_SECRET,
                                  srv.password)) == []


# ------------------------------------------------------------------------------------------- bad configuration

#: case -> (configuration overrides, patterns the first task's failure must match). Every case fails
#: list_files, before anything is downloaded, staged or indexed.
BAD: dict[str, tuple[dict[str, Any], list[str]]] = {
    # TLS: a CA that did not sign the server's certificate, and none at all (the system store)
    "wrong CA": ({"search": {"kind": "elasticsearch", "conn_id": "es_wrong_ca"}},
                 [r"TLS certificate verification failed", r"connection 'es_wrong_ca'", r"ca_certs"]),
    "no CA": ({"search": {"kind": "elasticsearch", "conn_id": "es_no_ca"}},
              [r"TLS certificate verification failed", r"connection 'es_no_ca'"]),
    "unknown instance": ({"instances": [{"id": "no-such-db", "engine": "mysql"}]},
                         [r"no-such-db: listing its rds log files failed", r"DBInstanceNotFound"]),
    "missing search connection": ({"search": {"kind": "elasticsearch", "conn_id": "es_missing"}},
                                  [r"connection 'es_missing' is not defined"]),
    "missing aws connection": ({"instances": [{"id": "sec-mariadb", "engine": "mysql",
                                                "aws_conn_id": "aws_missing"}]},
                               [r"sec-mariadb: listing its rds log files failed",
                                r"AWS connection 'aws_missing' is not defined"]),
    "unreachable search endpoint": ({"search": {"kind": "elasticsearch", "conn_id": "es_unreachable"}},
                                    [r"cannot reach elasticsearch at https://127\.0\.0\.1:\d+ "
                                     r"\(connection 'es_unreachable'\)", r"refused"]),
    "unreachable rds endpoint": ({"instances": [{"id": "sec-mariadb", "engine": "mysql",
                                                  "aws_conn_id": "aws_unreachable"}]},
                                 [r"sec-mariadb: listing its rds log files failed \(AWS connection "
                                  r"'aws_unreachable'\)", r"Could not connect to the endpoint URL"]),
    "refused credentials": ({"search": {"kind": "elasticsearch", "conn_id": "es_bad_key"}},
                            [r"refused the credentials of connection 'es_bad_key' \(HTTP 401\)"]),
    "window beyond retention": ({"rds_retention_hours": 24},
                                [r"older than RDS keeps slow logs", r"neither 'archive' nor 'cloudwatch'"]),
}

#: Runs each case's DAG with dag.test, one after the other in one interpreter (Airflow's start-up once). The
#: DAG folder is Airflow's (its bundle), so each case's configuration is copied into it before its run.
BATCH = """
import shutil, sys
sys.path.insert(0, sys.argv[1])
from dagtest_runner import main
folder = sys.argv[3]
for config in sys.argv[4:]:
    shutil.copy(config, folder + "/rds_slowlog.json")
    print("DAGTEST-CASE " + config, flush=True)
    main(folder, sys.argv[2])
"""


@pytest.fixture(scope="module")
def bad_runs(airflow_env, srv, tmp_path_factory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("bad")
    folder = root / "dags"
    folder.mkdir()
    shutil.copy(ROOT / "dags" / "rds_slowlog_hourly.py", folder)
    cases = {}
    for k, case in enumerate(BAD):
        d = root / f"case{k}"
        d.mkdir()
        dags, prefix = _dags(d, **BAD[case][0])
        config = d / "rds_slowlog.json"
        # the configuration as it will live in the shared folder (its staging stays the case's own)
        config.write_text((dags / "rds_slowlog.json").read_text())
        cases[case] = (d, config, prefix)
    logical = datetime.fromtimestamp(WINDOW + 3600, timezone.utc).isoformat()
    p = subprocess.run([sys.executable, "-c", BATCH, str(RUNNER.parent), logical, str(folder),
                        *(str(c) for _, c, _ in cases.values())],
                       env={**airflow_env, "PYTHONUNBUFFERED": "1", "AIRFLOW__CORE__DAGS_FOLDER": str(folder)},
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1200)
    parts = p.stdout.split("DAGTEST-CASE ")[1:]
    assert len(parts) == len(cases), p.stdout[-5000:]
    out = {}
    for (case, (d, config, prefix)), part in zip(cases.items(), parts):
        assert part.startswith(str(config))
        line = next((x for x in part.splitlines() if x.startswith("DAGTEST-RESULT ")), None)
        assert line is not None, part[-5000:]
        res = json.loads(line.split(" ", 1)[1])
        res.update(log=part, dir=d, prefix=prefix)
        out[case] = res
    return out


@pytest.mark.parametrize("case", list(BAD))
def test_bad_configuration_fails_the_first_task_naming_the_cause(case, bad_runs, srv) -> None:
    res = bad_runs[case]
    assert res["state"] == "failed"
    st = states(res)
    assert st[("list_files", "failed")] == 1, st
    assert not any(ti["state"] == "success" for ti in res["tis"] if ti["task_id"] != "wait_for_rotation"), st
    failure = _failure_text(res["log"])
    for pat in BAD[case][1]:
        assert re.search(pat, failure), f"{pat!r} not in:\n{failure[-3000:]}"
    prefix = res["prefix"]
    assert srv.request("GET", f"/_cat/indices/{prefix}-*?format=json")[1] == [], "nothing half-indexed"
    assert not (res["dir"] / "staging").exists(), "nothing staged"


def _failure_text(log: str) -> str:
    """The log from the first task failure on (its exception and message)."""
    at = log.find("Task failed with exception")
    assert at >= 0, log[-3000:]
    return log[at:]


# ------------------------------------------------------------------------------------------- CLI

def test_cli_download_and_index_show_no_secret(srv, gate, emulator, logs, tmp_path, tls_dirs) -> None:
    """``rds-slowlog download`` with an AWS secret key and ``rds-slowlog index --ca-certs`` with a password in
    the URL, an API key, wrong credentials and a wrong CA: exact counts, clear errors, no secret in the output."""
    cli = [sys.executable, "-m", "rds_slowlog.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ES_"))}
    env.update({"AWS_ACCESS_KEY_ID": "AKIASECURITYTEST", "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                "AWS_DEFAULT_REGION": "us-east-1"})
    outputs: dict[str, bytes] = {}

    def run(name: str, args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        p = subprocess.run(cli + args, env={**env, **(extra_env or {})}, capture_output=True, timeout=600)
        outputs[name] = p.stdout + p.stderr
        return p

    out = tmp_path / "files"
    p = run("download", ["download", "--instance", "sec-mariadb", "--since", str(WINDOW), "--until",
                         str(WINDOW + 3600), "--out", str(out), "--endpoint-url", emulator.endpoint_url, "--json"])
    assert p.returncode == 0, outputs["download"][-2000:]
    files = sorted(str(f) for f in out.rglob("*") if f.is_file())
    assert files
    prefix = f"sec-cli-{uuid.uuid4().hex[:6]}"
    common = ["index", *files, "--index-prefix", prefix, "--instance", "sec-mariadb", "--since", str(WINDOW),
              "--until", str(WINDOW + 3600), "--staging", str(tmp_path / "stage")]
    p = run("index password+ca", [*common, "--target", srv.url, "--ca-certs", srv.ca_cert or ""])
    assert p.returncode == 0, outputs["index password+ca"][-2000:]
    total = json.loads(p.stdout.splitlines()[-1])
    assert total["indexed"] == total["docs"] == len(window_entries(logs, "sec-mariadb")) > 0
    p = run("index api key", [*common, "--target", f"http://127.0.0.1:{gate.port}", "--rerun"],
            {"ES_API_KEY": API_KEY})
    assert p.returncode == 0, outputs["index api key"][-2000:]
    assert json.loads(p.stdout.splitlines()[-1])["updated"] == total["docs"]
    bad_pw = srv.url.replace(f":{srv.password}@", f":{srv.password[::-1]}@")
    p = run("index wrong password", [*common, "--target", bad_pw, "--ca-certs", srv.ca_cert or ""])
    assert p.returncode == 4 and b"401" in outputs["index wrong password"]
    p = run("index wrong ca", [*common, "--target", srv.url, "--ca-certs", str(tls_dirs["other"].ca_cert)])
    assert p.returncode != 0
    assert b"TLS certificate verification failed" in outputs["index wrong ca"], outputs["index wrong ca"]
    try:
        assert hits(outputs, secret_forms(srv.password, srv.password[::-1], AWS_SECRET, API_KEY,
                                          *base64.b64decode(API_KEY).decode().split(":"))) == []
    finally:
        srv.request("DELETE", f"/{prefix}-*")
