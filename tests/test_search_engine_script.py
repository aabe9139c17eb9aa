"""Tests for scripts/search-engine.sh, the local Elasticsearch / OpenSearch used by integration tests.

The lifecycle tests boot real servers (fetched with Maven, 20-60 s each), so they are marked ``slow``.
They never skip because a distribution is missing: if Maven cannot resolve the artifact or no Java 21+ is
found, the test fails with the script's own message, because CI relies on the script working from a
fresh clone. When ``ES_URL`` / ``OPENSEARCH_URL`` is already set, the script must use that server instead,
so the test then checks that path (and does not stop a server it did not start).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "search-engine.sh"
URL_VARS = {"elasticsearch": "ES_URL", "opensearch": "OPENSEARCH_URL"}
DEFAULT_PORTS = {"elasticsearch": 9200, "opensearch": 9201}
# start may have to download ~150 MB through Maven first; the script bounds the boot itself to 120 s
START_TIMEOUT = 900


def _run(action: str, engine: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the script; stdout/stderr are captured, which also proves the server does not hold our pipes."""
    return subprocess.run(
        ["bash", str(SCRIPT), action, engine],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _request(url: str, path: str, *, with_auth: bool = True) -> tuple[int, dict]:
    """GET url+path with urllib, sending the URL's user:password as basic auth (urllib ignores userinfo)."""
    parts = urllib.parse.urlsplit(url)
    bare = f"{parts.scheme}://{parts.hostname}:{parts.port}{path}"
    req = urllib.request.Request(bare)
    if with_auth and parts.username is not None:
        cred = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        req.add_header("Authorization", "Basic " + base64.b64encode(cred.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by the unprivileged user the script switched to
        return True
    return True


def _old_java_home() -> str | None:
    """A JDK older than 21 on this machine, to check the script skips it when JAVA_HOME points there."""
    for release in sorted(Path("/usr/lib/jvm").glob("*/release")):
        m = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', release.read_text(errors="replace"), re.M)
        if m and int(m.group(1)) < 21 and (release.parent / "bin" / "java").exists():
            return str(release.parent)
    return None


@pytest.fixture
def script_env() -> Iterator[tuple[dict[str, str], Path]]:
    """Environment with a private run dir (TMPDIR) so the test never touches a developer's running server."""
    tmp = Path(tempfile.mkdtemp(prefix="rds-search-test-"))
    tmp.chmod(0o755)  # as root the server runs as an unprivileged user that must reach the run dir
    env = {k: v for k, v in os.environ.items() if k not in URL_VARS.values()}
    env["TMPDIR"] = str(tmp)
    yield env, tmp
    shutil.rmtree(tmp, ignore_errors=True)


def _hold_port(port: int) -> socket.socket | None:
    """Listen on the default port (if we can) so the script has to pick another free one."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # bind despite TIME_WAIT from an earlier server
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
    except OSError:
        sock.close()
        return None
    return sock


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_start_status_stop(engine: str, script_env: tuple[dict[str, str], Path]) -> None:
    env, tmp = script_env
    var = URL_VARS[engine]
    given = os.environ.get(var)
    if given:
        # an existing server was supplied: start must hand it back verbatim and status must see it up
        env[var] = given
        started = _run("start", engine, env)
        assert started.returncode == 0, started.stderr
        assert started.stdout == f"{var}={given}\n"
        status = _run("status", engine, env)
        assert status.returncode == 0, status.stderr
        code, health = _request(given, "/_cluster/health")
        assert code == 200 and health["status"] in ("green", "yellow")
        return

    old_java = _old_java_home()
    if old_java:
        env["JAVA_HOME"] = old_java
    blocker = _hold_port(DEFAULT_PORTS[engine])
    try:
        started = _run("start", engine, env, timeout=START_TIMEOUT)
    finally:
        if blocker is not None:
            blocker.close()
    try:
        if started.returncode != 0:
            pytest.fail(f"search-engine.sh start {engine} failed (exit {started.returncode}):\n{started.stderr}")
        lines = started.stdout.splitlines()
        assert len(lines) == 1, started.stdout
        m = re.fullmatch(rf"{var}=(http://(?:([^:@/]+):([^@/]+)@)?127\.0\.0\.1:(\d+))", lines[0])
        assert m, lines[0]
        url, user, port = m.group(1), m.group(2), int(m.group(4))
        assert port != DEFAULT_PORTS[engine], "default port was taken, the script must have picked another"

        code, health = _request(url, "/_cluster/health")
        assert code == 200, code
        assert health["status"] in ("green", "yellow")
        assert health["cluster_name"] == "rds-slowlog-dev"
        assert health["number_of_nodes"] == 1
        if engine == "elasticsearch":
            # the integ-test-zip ships x-pack security: the URL carries credentials and they are required
            assert user, "Elasticsearch should run with basic auth"
            assert _request(url, "/_cluster/health", with_auth=False)[0] == 401
        else:
            assert user is None, "the OpenSearch integ-test-zip has no security plugin"

        run_dir = tmp / f"rds-slowlog-search-{engine}"
        assert any((run_dir / "logs").iterdir()), "server logs belong in the run dir"
        pid = int((run_dir / "server.pid").read_text())
        assert _pid_alive(pid)

        again = _run("start", engine, env)
        assert again.returncode == 0, again.stderr
        assert again.stdout == started.stdout, "start must be idempotent while the server runs"

        status = _run("status", engine, env)
        assert status.returncode == 0, status.stderr
    finally:
        stopped = _run("stop", engine, env)
    assert stopped.returncode == 0, stopped.stderr
    assert not _pid_alive(pid), "stop must wait until the server process has exited"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    status = _run("status", engine, env)
    assert status.returncode != 0
    assert "not running" in status.stderr


@pytest.mark.slow
def test_unresolvable_version_fails_with_hint(script_env: tuple[dict[str, str], Path]) -> None:
    """A version Maven cannot resolve must fail loudly and say how to use an existing server instead."""
    env, tmp = script_env
    env["ES_VERSION"] = "0.0.1-rds-slowlog-no-such-version"
    env["RDS_SEARCH_CACHE"] = str(tmp / "cache")
    result = _run("start", "elasticsearch", env)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "0.0.1-rds-slowlog-no-such-version" in result.stderr
    assert "ES_URL" in result.stderr


def test_given_url_is_used_not_started(script_env: tuple[dict[str, str], Path]) -> None:
    """With OPENSEARCH_URL set, start only echoes it, status probes it, stop leaves it alone."""
    env, tmp = script_env
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    env["OPENSEARCH_URL"] = f"http://127.0.0.1:{free_port}"
    started = _run("start", "opensearch", env, timeout=30)
    assert started.returncode == 0, started.stderr
    assert started.stdout == f"OPENSEARCH_URL=http://127.0.0.1:{free_port}\n"
    assert not (tmp / "rds-slowlog-search-opensearch").exists(), "nothing may be started for a given URL"
    assert _run("status", "opensearch", env, timeout=30).returncode != 0  # nothing answers there
    assert _run("stop", "opensearch", env, timeout=30).returncode == 0


def test_usage_errors() -> None:
    for args in (["restart", "elasticsearch"], ["start", "solr"], []):
        result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 2, args
        assert "usage:" in result.stderr
