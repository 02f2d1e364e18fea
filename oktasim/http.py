"""The simulator's HTTP layer: tornado's HTTP/1.1 server with a bare connection delegate.

tornado.web.RequestHandler costs about twice the CPU per request of this (its per-request object,
header defaults, routing, flush machinery); the simulator routes itself, so it talks to the
connection directly: one write of headers and body per response."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import tornado.iostream
from tornado import httputil

_RUNNING: set[asyncio.Future] = set()   # strong references to the request tasks in flight
Handler = Callable[[httputil.HTTPServerRequest, "Reply"], Awaitable[None]]


class Reply:
    """Writes the one response to a request."""

    __slots__ = ("conn", "method", "sent")

    def __init__(self, conn: httputil.HTTPConnection, method: str):
        self.conn = conn
        self.method = method
        self.sent = False

    async def send(self, status: int, body: bytes | None, headers: dict[str, str] | None = None,
                   extra: list[tuple[str, str]] | None = None, cut: bool = False) -> None:
        """Status, Okta's standard headers, then `headers` (set) and `extra` (added, so two Link
        lines stay two lines). `cut` sends half the body with chunked framing and drops the
        connection (the simulated truncated response)."""
        if self.sent:
            return
        self.sent = True
        h = httputil.HTTPHeaders()
        h["Date"] = httputil.format_timestamp(time.time())
        if status != 204:
            h["Content-Type"] = "application/json"
        h["X-Okta-Request-Id"] = os.urandom(16).hex()
        for k, v in (headers or {}).items():
            h[k] = v
        for k, v in extra or ():
            h.add(k, v)
        start = httputil.ResponseStartLine("HTTP/1.1", status, httputil.responses.get(status, "Unknown"))
        try:
            if cut and body:
                await self.conn.write_headers(start, h, body[: max(1, len(body) // 2)])
                self.conn.stream.close()  # type: ignore[attr-defined]
                return
            if status == 204 or body is None:
                self.conn.write_headers(start, h)
            else:
                h["Content-Length"] = str(len(body))
                self.conn.write_headers(start, h, None if self.method == "HEAD" else body)
            self.conn.finish()
        except tornado.iostream.StreamClosedError:
            pass


class _Exchange(httputil.HTTPMessageDelegate):
    __slots__ = ("handler", "server_conn", "conn", "start_line", "headers", "chunks")

    def __init__(self, handler: Handler, server_conn: object, conn: httputil.HTTPConnection):
        self.handler = handler
        self.server_conn = server_conn
        self.conn = conn
        self.chunks: list[bytes] = []

    def headers_received(self, start_line, headers: httputil.HTTPHeaders) -> None:
        self.start_line = start_line
        self.headers = headers

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> None:
        req = httputil.HTTPServerRequest(connection=self.conn, start_line=self.start_line,
                                         headers=self.headers, server_connection=self.server_conn)
        req.body = b"".join(self.chunks)
        # The connection waits for Reply.send's finish() before it reads the next request.
        task = asyncio.ensure_future(self.handler(req, Reply(self.conn, req.method or "GET")))
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)

    def on_connection_close(self) -> None:
        pass


class Delegate(httputil.HTTPServerConnectionDelegate):
    def __init__(self, handler: Handler):
        self.handler = handler

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> _Exchange:
        return _Exchange(self.handler, server_conn, request_conn)
