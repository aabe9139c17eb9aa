"""An HTTP reverse proxy that breaks the traffic to a real server on command: the one fault injector for
Elasticsearch/OpenSearch and for S3 (moto in server mode) alike.

Why a proxy and not a fake: the server behind it is the real one (Elasticsearch, moto), the client is the real
one (elasticsearch-py, botocore, s3fs), and what goes wrong is what goes wrong on a network or a loaded
service — a port that refuses connections, a connection closed without an answer, a response cut off in the
middle of its body, ``503 SlowDown`` / ``429`` answers, bulk items rejected with ``429``. Both the clients'
own retries and Airflow's task retries then run exactly as they would in production.

A proxy runs in threads of whoever owns it (a test process), listens on 127.0.0.1 and a port of its own, and
is aimed at by changing only an endpoint (a connection's ``endpoint_url``, a search URL), so the same faults
serve ``dag.test()`` in a subprocess and a CeleryExecutor stack whose workers are other processes.

Faults (all switchable while traffic flows; every request is recorded in :attr:`FaultProxy.requests`):

* :meth:`FaultProxy.arm` — a :class:`Fault` that starts at the ``after``-th matching request (method and path
  regex) and lasts for ``count`` requests and/or ``seconds``: ``drop`` (close the connection without an
  answer), ``cut`` (forward the request, send the status, the headers and half the body, then close; an
  answer without a body is dropped after the server acted on the request), ``status`` (answer ``status``
  with the upstream flavour's error body: S3 XML, Elasticsearch JSON), ``refuse`` (stop listening: new
  connections get ``ECONNREFUSED`` until the fault ends, then the same port listens again) or ``call`` (run
  a callable, then forward: to change the server at an exact point of the traffic).
* the Elasticsearch-specific switches the indexing tests use: ``down`` / ``down_after_bulks`` (drop
  everything), ``item_429`` (the next bulk answer's first N items become 429), ``force_status`` (every bulk
  request answered with it), ``bulk_delay`` (hold each bulk request) and the ids of every bulk request seen
  (``bulk_ids``) with the peak of bulk requests in flight (``peak``).

Only the standard library is used (plus orjson for bulk bodies, which the package depends on).
"""
from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = ["Fault", "FaultProxy", "ProxiedRequest"]

MODES = ("drop", "cut", "status", "refuse", "call")
#: Hop-by-hop headers and those the proxy recomputes; never forwarded as they came.
_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
                  "expect", "host", "content-length"})


@dataclass
class Fault:
    """One armed fault: what to do, to which requests, from when and for how long.

    ``after``: matching requests passed through untouched before it starts (0 = the next one). It ends after
    ``count`` faulted requests or ``seconds`` after it started, whichever comes first (neither = until
    :meth:`FaultProxy.heal`). A ``refuse`` fault needs ``seconds``: while the port refuses, no request arrives
    to count. ``status`` is the HTTP status of a ``status`` fault (503 is S3's ``SlowDown``).
    """

    mode: str
    count: int | None = None
    seconds: float | None = None
    after: int = 0
    method: str | None = None
    path: str | None = None
    status: int = 503
    #: a ``call`` fault runs ``action(method, path)`` and then forwards the request untouched: a test's way to
    #: do something to the server at an exact point of the traffic (e.g. corrupt an object before it is read)
    action: Callable[[str, str], None] | None = field(default=None, repr=False)
    #: requests this fault has hit so far, and when it started (monotonic)
    hits: int = 0
    started: float | None = None
    _seen: int = 0
    _path_re: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r}; known: {', '.join(MODES)}")
        if (self.mode == "call") != (self.action is not None):
            raise ValueError("a call fault needs an action, and only a call fault takes one")
        if self.mode == "refuse" and not self.seconds:
            raise ValueError("a refuse fault needs seconds (no request can arrive to count while refusing)")
        self._path_re = re.compile(self.path) if self.path else None

    def matches(self, method: str, path: str) -> bool:
        return ((self.method is None or method.upper() == self.method.upper())
                and (self._path_re is None or self._path_re.search(path) is not None))

    def over(self, now: float) -> bool:
        if self.count is not None and self.hits >= self.count:
            return True
        return self.started is not None and self.seconds is not None and now - self.started >= self.seconds


@dataclass(frozen=True)
class ProxiedRequest:
    """One request as the proxy saw it: what was asked, what the proxy did (``forwarded`` or a fault mode),
    and the upstream status when it was forwarded."""

    method: str
    path: str
    action: str
    status: int | None
    at: float


class FaultProxy:
    """Reverse proxy for ``upstream`` (``http://host:port``) on 127.0.0.1:``port`` (0 = any free port).

    ``flavor`` shapes injected error bodies: ``elasticsearch`` (JSON and the ``X-elastic-product`` header the
    client checks) or ``s3`` (S3's XML ``Error`` document).
    """

    def __init__(self, upstream: str, *, flavor: str = "elasticsearch", port: int = 0,
                 timeout: float = 120.0) -> None:
        if flavor not in ("elasticsearch", "s3"):
            raise ValueError(f"flavor must be elasticsearch or s3, not {flavor!r}")
        u = urlsplit(upstream)
        if u.scheme != "http" or not u.hostname or not u.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.host, self.port = u.hostname, u.port
        self.flavor = flavor
        self.timeout = timeout
        self.lock = threading.Lock()      # requests arrive concurrently
        self.faults: list[Fault] = []
        self.requests: list[ProxiedRequest] = []
        # Elasticsearch switches (used by the indexing tests)
        self.down = False                 # close connections without answering (a dead server)
        self.down_after_bulks: int | None = None
        self.item_429 = 0                 # next bulk answer: the first N items become 429
        self.force_status: int | None = None  # answer every bulk request with this status
        self.bulk_ids: list[list[str]] = []
        self.bulk_delay = 0.0             # seconds each forwarded bulk request is held (to overlap them)
        self.active = self.peak = 0       # forwarded bulk requests being handled now / at most at once
        self._listen_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._refusing_until: float | None = None
        self._listening = threading.RLock()   # listen / stop listening, one at a time
        self._listen()

    # ---- public

    @property
    def server(self) -> ThreadingHTTPServer:
        """The listening server (``server.server_address[1]`` is the port; kept for older callers)."""
        assert self._server is not None, "the proxy is refusing connections right now"
        return self._server

    @property
    def listen_port(self) -> int:
        return self._listen_port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``: put this where the client's endpoint was."""
        return f"http://127.0.0.1:{self._listen_port}"

    def url(self, original: str) -> str:
        """``original`` (a URL with optional credentials) aimed at the proxy, credentials kept."""
        u = urlsplit(original)
        auth = original.split("://", 1)[1].split("@", 1)[0] + "@" if u.username else ""
        return f"http://{auth}127.0.0.1:{self._listen_port}"

    def arm(self, mode: str, *, count: int | None = None, seconds: float | None = None, after: int = 0,
            method: str | None = None, path: str | None = None, status: int = 503,
            action: Callable[[str, str], None] | None = None) -> Fault:
        """Arm a :class:`Fault` (see there); returns it so a caller can read ``hits`` / ``started``."""
        fault = Fault(mode, count=count, seconds=seconds, after=after, method=method, path=path, status=status,
                      action=action)
        with self.lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        """End every armed fault and the Elasticsearch switches; listen again if refusing."""
        with self.lock:
            self.faults.clear()
            self.down = False
            self.down_after_bulks = None
            self.item_429 = 0
            self.force_status = None
            self.bulk_delay = 0.0
        self._refusing_until = None
        self._relisten()

    def count(self, action: str | None = None, method: str | None = None, path: str | None = None) -> int:
        """Recorded requests, optionally only those the proxy treated as ``action`` (``forwarded``, a mode)."""
        rx = re.compile(path) if path else None
        with self.lock:
            return sum(1 for r in self.requests
                       if (action is None or r.action == action) and (method is None or r.method == method)
                       and (rx is None or rx.search(r.path)))

    def close(self) -> None:
        self._closed = True
        self._stop_listening()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- listening

    def _listen(self) -> None:
        proxy = self

        class Handler(_Handler):
            pass

        Handler.proxy = proxy
        server = _Server(("127.0.0.1", self._listen_port), Handler)
        self._listen_port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fault-proxy-{self._listen_port}", daemon=True)
        self._thread.start()

    def _stop_listening(self) -> None:
        with self._listening:
            server = self._server
            if server is not None:
                server.shutdown()        # from a handler thread too: serve_forever runs in its own thread
                server.server_close()
                self._server = None

    def _relisten(self) -> None:
        with self._listening:
            if self._server is None and not self._closed:
                self._listen()

    def _refuse(self, fault: Fault) -> None:
        """Close the listening socket now and listen again on the same port ``seconds`` later (or at
        :meth:`heal`)."""
        until = time.monotonic() + (fault.seconds or 0.0)
        self._refusing_until = until
        self._stop_listening()

        def run() -> None:
            while not self._closed and self._refusing_until == until and time.monotonic() < until:
                time.sleep(0.05)
            with self.lock:
                self.faults = [f for f in self.faults if f is not fault]
            if self._refusing_until == until:
                self._refusing_until = None
                self._relisten()

        threading.Thread(target=run, name="fault-proxy-refuse", daemon=True).start()

    # ---- deciding

    def _decide(self, method: str, path: str) -> Fault | None:
        """The fault that takes this request, if any (advances every matching fault's counters)."""
        now = time.monotonic()
        with self.lock:
            taken: Fault | None = None
            for fault in list(self.faults):
                if not fault.matches(method, path):
                    continue
                if fault.started is None:
                    if fault._seen < fault.after:
                        fault._seen += 1
                        continue
                    fault.started = now
                if fault.over(now):
                    self.faults.remove(fault)
                    continue
                if taken is None:
                    fault.hits += 1
                    taken = fault
                    if fault.over(now) and fault.mode != "refuse":
                        self.faults.remove(fault)
            return taken

    def _record(self, method: str, path: str, action: str, status: int | None) -> None:
        with self.lock:
            self.requests.append(ProxiedRequest(method, path, action, status, time.time()))

    def error_body(self, status: int) -> tuple[bytes, dict[str, str]]:
        """An injected error answer in the upstream's own shape."""
        if self.flavor == "s3":
            code = {503: "SlowDown", 500: "InternalError", 429: "SlowDown", 403: "AccessDenied"}.get(
                status, "ServiceUnavailable")
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>injected by '
                    f"the fault proxy</Message><RequestId>fault-proxy</RequestId></Error>").encode()
            return body, {"Content-Type": "application/xml"}
        body = orjson.dumps({"error": {"type": "injected", "reason": "injected"}, "status": status})
        return body, {"Content-Type": "application/json", "X-elastic-product": "Elasticsearch"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    proxy: FaultProxy

    def log_message(self, *a: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass            # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _any(self) -> None:
        proxy = self.proxy
        body = self._read_body()
        method, path = self.command, self.path
        is_bulk = "/_bulk" in path
        fault = proxy._decide(method, path)
        if fault is not None and fault.mode in ("drop", "refuse"):
            proxy._record(method, path, fault.mode, None)
            if fault.mode == "refuse" and proxy._refusing_until is None:
                proxy._refuse(fault)
            self._drop()
            return
        if fault is not None and fault.mode == "call":
            assert fault.action is not None
            fault.action(method, path)
            fault = None
        if fault is not None and fault.mode == "status":
            proxy._record(method, path, "status", fault.status)
            data, headers = proxy.error_body(fault.status)
            self._answer(fault.status, data, headers)
            return
        with proxy.lock:
            if (is_bulk and proxy.down_after_bulks is not None
                    and len(proxy.bulk_ids) >= proxy.down_after_bulks):
                proxy.down = True
            down = proxy.down
            forced = proxy.force_status if is_bulk else None
            if is_bulk and not down and not forced:
                proxy.bulk_ids.append([orjson.loads(x)["index"]["_id"] for x in body.splitlines()[::2]])
                proxy.active += 1
                proxy.peak = max(proxy.peak, proxy.active)
        if down:
            proxy._record(method, path, "drop", None)
            self._drop()
            return
        if forced:
            proxy._record(method, path, "status", forced)
            data, headers = proxy.error_body(forced)
            self._answer(forced, data, headers)
            return
        try:
            self._forward(body, is_bulk, cut=fault is not None and fault.mode == "cut")
        finally:
            if is_bulk:
                with proxy.lock:
                    proxy.active -= 1

    def _drop(self) -> None:
        """Close the connection without a byte of answer (a dead or overloaded server)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":      # a HEAD answer has no body, else the next response on it is garbled
            self.wfile.write(data)

    def _forward(self, body: bytes, is_bulk: bool, *, cut: bool) -> None:
        proxy = self.proxy
        if is_bulk and proxy.bulk_delay:
            time.sleep(proxy.bulk_delay)
        conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=proxy.timeout)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            headers["Host"] = self.headers.get("Host") or f"{proxy.host}:{proxy.port}"
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError:
            proxy._record(self.command, self.path, "upstream-error", None)
            self._drop()
            return
        finally:
            conn.close()
        with proxy.lock:
            n429 = proxy.item_429 if is_bulk and resp.status == 200 else 0
            if n429:
                proxy.item_429 = 0      # exactly one answer gets them, whatever the concurrency
        if n429:
            doc = orjson.loads(data)
            for item in doc["items"][:n429]:
                op = next(iter(item.values()))
                op["status"] = 429
                op["error"] = {"type": "es_rejected_execution_exception", "reason": "injected"}
            doc["errors"] = True
            data = orjson.dumps(doc)
        proxy._record(self.command, self.path, "cut" if cut else "forwarded", resp.status)
        if cut and (not data or self.command == "HEAD"):
            # nothing to cut in half (a PUT's empty answer): the request reached the server, its answer is lost
            self._drop()
            return
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(k, v)
        if self.command == "HEAD":      # the length of what a GET would send (S3's object size), no body
            self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if cut:
            # the promised length never arrives: the client sees the connection end mid-body
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._drop()
            return
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any
