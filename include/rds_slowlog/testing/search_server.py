"""Private Elasticsearch / OpenSearch servers for tests: TLS, several nodes, real stop / restart / kill -9.

Use it when a test must do to the search engine what it cannot do to the shared ``scripts/search-engine.sh``
server: stop it mid-run, restart it on the same data, ``kill -9`` one node of a two-node cluster, or serve
HTTPS with a certificate the test made. ``with SearchServer("elasticsearch", root_dir, nodes=2) as srv:``
starts the nodes (``srv.url`` = node 0 with credentials, ``srv.node_urls`` = every node, ``srv.hosts`` = the
same without credentials, ``srv.username`` / ``srv.password``); ``srv.stop()`` ends every server process
(SIGTERM, SIGKILL after 60 s), ``srv.start()`` starts them again on the same data dir and ports (a real
restart: the documents are still there), ``srv.kill_node(i)`` sends SIGKILL to node ``i`` only (``start()``
brings it back). Node 0 is the only master-eligible node and ``nodes=2`` adds a data-only node 1, so
``kill_node(1)`` is "one node died, the cluster goes yellow and keeps indexing" while ``kill_node(0)`` takes
the cluster down (two master-eligible nodes cannot survive losing either one deterministically).
For HTTPS, ``tls = make_tls(dir)`` writes a CA and a server certificate (SAN ``IP:127.0.0.1``,
``DNS:localhost``) with ``openssl``; pass ``tls_dir=tls.dir`` and give clients ``srv.ca_cert``
(``make_tls(other_dir)`` makes an unrelated CA for "wrong CA" tests). Elasticsearch runs with x-pack security
(file-realm superuser, random password) unless ``security=False``; the OpenSearch integ-test zip has no
security plugin, so OpenSearch runs without auth and without TLS. The distribution and the Java runtime are
those of ``scripts/search-engine.sh dist`` (same Maven cache, same Java choice); as root the nodes run as
``RDS_SEARCH_RUN_AS`` (default ``nobody``) like the script, so ``root_dir`` must be traversable by that user
(leave ``root_dir=None`` for a fresh 0755 dir under ``$TMPDIR`` that :meth:`SearchServer.close` removes).
Heap defaults to 384m per node (``heap=``); two cores are shared by several test sessions.
"""
from __future__ import annotations

import base64
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "search-engine.sh"
ENGINES = ("elasticsearch", "opensearch")
USERNAME = "rds_slowlog"
START_TIMEOUT = float(os.environ.get("RDS_SEARCH_START_TIMEOUT", "240"))
STOP_TIMEOUT = 60.0


class SearchServerError(RuntimeError):
    """A private server did not start / stop; the message carries the tail of the node's log."""


@dataclass(frozen=True)
class TLSFiles:
    """PEM files written by :func:`make_tls`."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path


def make_tls(directory: str | Path, *, cn: str = "rds-slowlog-test", days: int = 2) -> TLSFiles:
    """A fresh CA and a server certificate it signed, valid for 127.0.0.1 / localhost (``openssl`` CLI).

    Why the CLI: it is what an operator uses, and it keeps the test free of a crypto library dependency.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(d, d / "ca.crt", d / "ca.key", d / "server.crt", d / "server.key")

    def run(*args: str) -> None:
        proc = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise SearchServerError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(days),
        "-subj", f"/CN={cn} CA", "-keyout", str(files.ca_key), "-out", str(files.ca_cert),
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    csr = d / "server.csr"
    run("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", f"/CN={cn} server",
        "-keyout", str(files.key), "-out", str(csr))
    ext = d / "server.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(files.ca_cert), "-CAkey", str(files.ca_key),
        "-CAcreateserial", "-days", str(days), "-sha256", "-extfile", str(ext), "-out", str(files.cert))
    for p in (files.dir, files.ca_cert, files.cert, files.key):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return files


def _distribution(engine: str) -> tuple[Path, str, Path]:
    """(home, version, JAVA_HOME) exactly as ``scripts/search-engine.sh start`` would choose them."""
    proc = subprocess.run(["bash", str(SCRIPT), "dist", engine], capture_output=True, text=True, timeout=900,
                          check=False)
    if proc.returncode != 0:
        raise SearchServerError(f"{SCRIPT} dist {engine} failed:\n{proc.stderr[-3000:]}")
    info = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return Path(info["HOME"]), info["VERSION"], Path(info["JAVA"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> tuple[list[str], tuple[int, int] | None]:
    """The setpriv prefix and (uid, gid) when root (both engines refuse to run as root), else nothing."""
    if os.geteuid() != 0:
        return [], None
    user = os.environ.get("RDS_SEARCH_RUN_AS", "nobody")
    pw = pwd.getpwnam(user)
    if pw.pw_uid == 0:
        raise SearchServerError("RDS_SEARCH_RUN_AS must not be root: the search engines refuse to run as root")
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"], (pw.pw_uid, pw.pw_gid)
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--"], (pw.pw_uid, pw.pw_gid)
    raise SearchServerError("running as root needs setpriv or runuser to start the search engine unprivileged")


def _chown_tree(path: Path, ids: tuple[int, int]) -> None:
    os.chown(path, *ids)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), *ids, follow_symlinks=False)


class SearchServer:
    """One private cluster of ``nodes`` processes on 127.0.0.1 (see the module docstring)."""

    def __init__(self, engine: str = "elasticsearch", root_dir: str | Path | None = None, nodes: int = 1,
                 tls_dir: str | Path | None = None, security: bool = True, heap: str = "384m",
                 cluster_name: str | None = None) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.engine = engine
        self.nodes = nodes
        self.heap = heap
        self.security = security and engine == "elasticsearch"
        if tls_dir is not None and engine != "elasticsearch":
            raise ValueError("TLS needs the Elasticsearch security module; the OpenSearch integ-test zip has none")
        self.tls_dir = Path(tls_dir) if tls_dir is not None else None
        self._own_root = root_dir is None
        self.root = Path(root_dir) if root_dir is not None else Path(tempfile.mkdtemp(prefix=f"search-{engine}-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.cluster_name = cluster_name or f"rds-slowlog-{secrets.token_hex(4)}"
        self.username = USERNAME if self.security else None
        self.password = secrets.token_hex(12) if self.security else None
        self.http_ports = [_free_port() for _ in range(nodes)]
        self.transport_ports = [_free_port() for _ in range(nodes)]
        self._prefix, self._ids = _run_as()
        self._home: Path | None = None
        self._java: Path | None = None
        self.version: str | None = None
        self._configured = False
        self._launchers: list[subprocess.Popen[bytes] | None] = [None] * nodes

    # ------------------------------------------------------------------ addresses

    @property
    def scheme(self) -> str:
        return "https" if self.tls_dir else "http"

    @property
    def ca_cert(self) -> str | None:
        """Path of the CA bundle that signed the server certificate (None without TLS)."""
        return str(self.tls_dir / "ca.crt") if self.tls_dir else None

    @property
    def hosts(self) -> list[str]:
        """Node URLs without credentials (for clients that take auth separately)."""
        return [f"{self.scheme}://127.0.0.1:{p}" for p in self.http_ports]

    @property
    def node_urls(self) -> list[str]:
        """Node URLs with the credentials embedded (``https://user:pass@127.0.0.1:port``)."""
        auth = f"{self.username}:{self.password}@" if self.security else ""
        return [f"{self.scheme}://{auth}127.0.0.1:{p}" for p in self.http_ports]

    @property
    def url(self) -> str:
        """Node 0's URL with credentials; node 0 is the master, so it answers while node 1 is down."""
        return self.node_urls[0]

    def node_dir(self, i: int) -> Path:
        return self.root / f"node-{i}"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> SearchServer:
        try:
            self.start()
        except BaseException:
            self.close()          # a node that did start must not outlive a failed start
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self, nodes: list[int] | None = None) -> SearchServer:
        """Start every node that is not running (or only ``nodes``) and wait until the cluster answers."""
        self._prepare()
        wanted = list(range(self.nodes)) if nodes is None else nodes
        for i in wanted:
            if self.pid(i) is None:
                self._launch(i)
        self.wait_healthy(expect_nodes=sum(1 for i in range(self.nodes) if i in wanted or self.pid(i)))
        return self

    def stop(self) -> None:
        """Stop every node's server process (SIGTERM, then SIGKILL): the server is really gone."""
        for i in reversed(range(self.nodes)):
            self.stop_node(i)

    def stop_node(self, i: int) -> None:
        pid = self.pid(i)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, STOP_TIMEOUT):
                os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, 10)
        self._reap(i)

    def kill_node(self, i: int) -> None:
        """``kill -9`` node ``i``'s server JVM (no shutdown hooks, no flush)."""
        pid = self.pid(i)
        if pid is None:
            raise SearchServerError(f"node {i} is not running")
        os.kill(pid, signal.SIGKILL)
        if not self._wait_exit(pid, 30):
            raise SearchServerError(f"node {i} (pid {pid}) survived SIGKILL for 30 s")
        self._reap(i)

    def close(self) -> None:
        """Stop the nodes; remove the root dir when this object created it."""
        try:
            self.stop()
        finally:
            if self._own_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def pid(self, i: int) -> int | None:
        """The live server JVM pid of node ``i`` (from its pid file, checked against /proc: pids get reused)."""
        pid_file = self.node_dir(i) / "server.pid"
        try:
            pid = int(pid_file.read_text().strip() or "0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if pid and str(self.node_dir(i)).encode() + b"/" in cmdline else None

    # ------------------------------------------------------------------ HTTP

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca_cert) if self.tls_dir else None

    def request(self, method: str, path: str, body: Any = None, *, node: int = 0,
                timeout: float = 30) -> tuple[int, Any]:
        """A raw JSON request to one node (stdlib only, so it works before any client is configured)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.hosts[node] + path, data=data, method=method)
        req.add_header("Content-Type", "application/x-ndjson" if isinstance(body, bytes) else "application/json")
        if self.security:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context()) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        return status, (json.loads(raw) if raw else None)

    def health(self, node: int = 0, **params: str) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        status, body = self.request("GET", "/_cluster/health" + (f"?{query}" if query else ""), node=node,
                                    timeout=70)
        if status not in (200, 408):
            raise SearchServerError(f"_cluster/health answered {status}: {body}")
        return body

    def wait_healthy(self, expect_nodes: int | None = None, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Wait until every running node answers and node 0 sees ``expect_nodes`` nodes (yellow or green)."""
        expect = self.nodes if expect_nodes is None else expect_nodes
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            for i in range(self.nodes):
                if self._launchers[i] is not None and self._launchers[i].poll() not in (None, 0):
                    raise SearchServerError(f"node {i} failed to start (launcher exit "
                                            f"{self._launchers[i].returncode}):\n{self.log_tail(i)}")
            try:
                body = self.health()
                if body["status"] in ("green", "yellow") and body["number_of_nodes"] >= expect:
                    return body
                last = body
            except (OSError, SearchServerError, ValueError) as e:
                last = e
            if time.monotonic() > deadline:
                raise SearchServerError(f"{self.engine} cluster not healthy with {expect} node(s) within "
                                        f"{timeout:.0f}s (last: {last!r}):\n{self.log_tail(0)}")
            time.sleep(1)

    def log_tail(self, i: int, lines: int = 40) -> str:
        out = []
        for name in ("launcher.out", f"{self.cluster_name}.log"):
            f = self.node_dir(i) / "logs" / name
            if f.exists():
                out.append(f"----- {f} -----\n" + "\n".join(f.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    # ------------------------------------------------------------------ internals

    def _prepare(self) -> None:
        if self._configured:
            return
        home, self.version, self._java = _distribution(self.engine)
        if self._ids is not None:
            # as root the cache may sit under an unreadable /root: hard-link (else copy) it into our root
            # (the script does the same); the tree is read-only for the nodes, so one copy serves all of them
            own = self.root / "home"
            if not own.exists():
                if subprocess.run(["cp", "-al", str(home), str(own)], capture_output=True).returncode != 0:
                    shutil.rmtree(own, ignore_errors=True)
                    shutil.copytree(home, own, symlinks=True)
            home = own
            self.root.chmod(0o755)
            probe = subprocess.run([*self._prefix, "test", "-x", str(self.root)], capture_output=True)
            if probe.returncode != 0:
                raise SearchServerError(f"the unprivileged user cannot reach {self.root}: use a world-traversable "
                                        "root_dir (e.g. root_dir=None) or set RDS_SEARCH_RUN_AS")
        self._home = home
        for i in range(self.nodes):
            self._write_node(i)
        self._configured = True

    def _write_node(self, i: int) -> None:
        assert self._home is not None
        d = self.node_dir(i)
        conf = d / "config"
        shutil.rmtree(d, ignore_errors=True)
        for sub in ("data", "logs", "tmp"):
            (d / sub).mkdir(parents=True)
        shutil.copytree(self._home / "config", conf)
        jvm = conf / "jvm.options"
        kept = []
        for line in jvm.read_text().splitlines():
            if line.startswith(("-Xms", "-Xmx")):
                continue
            line = (line.replace("file=logs/gc.log", f"file={d}/logs/gc.log")
                    .replace("file=gc.log", f"file={d}/logs/gc.log")
                    .replace("HeapDumpPath=data", f"HeapDumpPath={d}/data")
                    .replace("ErrorFile=logs/hs_err", f"ErrorFile={d}/logs/hs_err")
                    .replace("ErrorFile=hs_err", f"ErrorFile={d}/logs/hs_err"))
            kept.append(line)
        jvm.write_text("\n".join(kept) + "\n")
        manager_key = ("cluster.initial_master_nodes" if self.engine == "elasticsearch"
                       else "cluster.initial_cluster_manager_nodes")
        manager_role = "master" if self.engine == "elasticsearch" else "cluster_manager"
        conf_lines = [
            "# written by rds_slowlog.testing.search_server",
            f"cluster.name: {self.cluster_name}",
            f"node.name: node-{i}",
            "network.host: 127.0.0.1",
            f"http.port: {self.http_ports[i]}",
            f"transport.port: {self.transport_ports[i]}",
            f"path.data: {d}/data",
            f"path.logs: {d}/logs",
            "cluster.routing.allocation.disk.threshold_enabled: false",
        ]
        if self.nodes == 1:
            conf_lines.append("discovery.type: single-node")
        else:
            seeds = ", ".join(f'"127.0.0.1:{p}"' for p in self.transport_ports)
            conf_lines += [f"discovery.seed_hosts: [{seeds}]", f'{manager_key}: ["node-0"]',
                           f"node.roles: [{manager_role}, data, ingest]" if i == 0 else "node.roles: [data, ingest]"]
        if self.engine == "elasticsearch":
            conf_lines.append(f"xpack.security.enabled: {str(self.security).lower()}")
            if self.security:
                conf_lines.append("xpack.security.transport.ssl.enabled: false")
                if self.tls_dir:
                    certs = conf / "certs"
                    certs.mkdir()
                    for name in ("ca.crt", "server.crt", "server.key"):
                        shutil.copy(self.tls_dir / name, certs / name)
                    conf_lines += ["xpack.security.http.ssl.enabled: true",
                                   "xpack.security.http.ssl.key: certs/server.key",
                                   "xpack.security.http.ssl.certificate: certs/server.crt",
                                   "xpack.security.http.ssl.certificate_authorities: [certs/ca.crt]"]
                else:
                    conf_lines.append("xpack.security.http.ssl.enabled: false")
        (conf / f"{self.engine}.yml").write_text("\n".join(conf_lines) + "\n")
        if self.security:
            # file realm: works from the first request on, needs no security index (same as the script)
            env = {**os.environ, "ES_JAVA_HOME": str(self._java), "JAVA_HOME": str(self._java),
                   "ES_PATH_CONF": str(conf), "ES_JAVA_OPTS": ""}
            proc = subprocess.run([str(self._home / "bin" / "elasticsearch-users"), "useradd", self.username or "",
                                   "-p", self.password or "", "-r", "superuser"], cwd=self._home, env=env,
                                  capture_output=True, text=True, timeout=300, check=False)
            if proc.returncode != 0:
                raise SearchServerError(f"elasticsearch-users useradd failed: {proc.stdout}{proc.stderr}")
        if self._ids is not None:
            _chown_tree(d, self._ids)

    def _launch(self, i: int) -> None:
        assert self._home is not None and self._java is not None
        d = self.node_dir(i)
        (d / "server.pid").unlink(missing_ok=True)
        upper = "ES" if self.engine == "elasticsearch" else "OPENSEARCH"
        env = {**os.environ, f"{upper}_JAVA_HOME": str(self._java), "JAVA_HOME": str(self._java),
               f"{upper}_PATH_CONF": str(d / "config"), f"{upper}_TMPDIR": str(d / "tmp"),
               f"{upper}_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}"}
        for var in ("ES_URL", "OPENSEARCH_URL"):
            env.pop(var, None)
        out = open(d / "logs" / "launcher.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            self._launchers[i] = subprocess.Popen(
                [*self._prefix, str(self._home / "bin" / self.engine), "-d", "-p", str(d / "server.pid")],
                cwd=self._home, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            out.close()

    def _reap(self, i: int) -> None:
        launcher = self._launchers[i]
        if launcher is not None:
            try:
                launcher.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()
            self._launchers[i] = None

    @staticmethod
    def _wait_exit(pid: int, timeout: float) -> bool:
        # /proc, not waitpid: the JVM is not our child (the launcher daemonised it)
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{pid}").exists():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.3)
        return True
