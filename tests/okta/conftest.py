"""Fixtures for the Okta client tests: RSA keys, and a tiny real HTTP server for the cases a
simulator cannot produce (a foreign next link, a truncated body)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.okta.auth import clear_token_cache


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def pkcs8_pem(rsa_key) -> str:
    return rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()


@pytest.fixture(scope="session")
def pkcs1_pem(rsa_key) -> str:
    return rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption()).decode()


@pytest.fixture(scope="session")
def public_pem_file(rsa_key, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("keys") / "public.pem"
    path.write_bytes(rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    # Tokens are cached per process; each test starts without any.
    clear_token_cache()
    yield
    clear_token_cache()


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


@pytest.fixture
def local_server():
    started: list[LocalServer] = []

    def start(handler) -> LocalServer:
        srv = LocalServer(handler)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
