"""A tiny real HTTP server for the cases a simulator cannot produce (a foreign next link, a
truncated body, a hand-written error)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """A real HTTP server on 127.0.0.1 answering with `handler(request) -> (status, headers, body)`;
    it records every request (method, path, headers)."""

    def __init__(self, handler: Callable[[BaseHTTPRequestHandler], tuple[int, dict, bytes] | None]):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path,
                                       "headers": dict(self.headers.items()), "body": body})
                result = handler(self)
                if result is None:  # the handler wrote the response itself
                    return
                status, headers, payload = result
                self.send_response_only(status)
                if "Date" not in headers:
                    self.send_header("Date", self.date_time_string())
                for name, value in headers.items():
                    for v in (value if isinstance(value, list) else [value]):
                        self.send_header(name, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
