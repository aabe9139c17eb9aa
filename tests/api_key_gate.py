"""An HTTP front for a test search server that admits only ``Authorization: ApiKey <key>``.

Why: the integ-test-zip Elasticsearch lacks the analysis module its security index needs, so it cannot mint
API keys (``_security/api_key`` answers 400). The gate checks exactly what a real server would see (anything
else gets the server's 401) and forwards every method with the server's own basic auth — over HTTPS, verifying
the server's certificate, when the upstream is ``https://``. ``seen`` records the auth schemes that arrived.
"""
from __future__ import annotations

import base64
import http.client
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = ("content-length", "transfer-encoding", "connection")


class ApiKeyGate:
    def __init__(self, upstream: str, key: str, ca_cert: str | None = None) -> None:
        u = urlsplit(upstream)
        basic = "Basic " + base64.b64encode(f"{u.username}:{u.password}".encode()).decode()
        https = u.scheme == "https"
        ctx = ssl.create_default_context(cafile=ca_cert) if https else None
        self.seen: list[str] = []
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _forward(self) -> None:
                auth = self.headers.get("Authorization", "")
                gate.seen.append(auth.split(" ", 1)[0])
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if auth != f"ApiKey {key}":
                    status, headers, data = 401, [("X-elastic-product", "Elasticsearch"),
                                                  ("Content-Type", "application/json")], b'{"status":401}'
                else:
                    fwd = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "host") + _HOP}
                    fwd["Authorization"] = basic
                    conn = (http.client.HTTPSConnection(u.hostname, u.port, timeout=120, context=ctx) if https
                            else http.client.HTTPConnection(u.hostname, u.port, timeout=120))
                    conn.request(self.command, self.path, body=body or None, headers=fwd)
                    resp = conn.getresponse()
                    status, headers, data = resp.status, resp.getheaders(), resp.read()
                    conn.close()
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
