"""A local HTTP server that refuses every request the way Elasticsearch/OpenSearch refuse credentials (401) or
privileges (403), and records what it was sent — for the error-message and redaction tests."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REASONS = {401: "unable to authenticate", 403: "action is unauthorized for user"}


class RefusingServer:
    """Answers ``status`` to everything; ``requests`` ("METHOD /path") and ``auth`` (Authorization headers)
    record what came. ``product_header`` adds the ``X-elastic-product`` header Elasticsearch sends."""

    def __init__(self, status: int, product_header: bool = False) -> None:
        self.requests: list[str] = []
        self.auth: list[str] = []
        rec = self
        body = (b'{"error":{"type":"security_exception","reason":"%s"},"status":%d}'
                % (REASONS[status].encode(), status))

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _answer(self) -> None:
                rec.requests.append(f"{self.command} {self.path}")
                rec.auth.append(self.headers.get("Authorization", ""))
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                self.send_response(status)
                if product_header:
                    self.send_header("X-elastic-product", "Elasticsearch")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_HEAD = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
