"""`oktasync metrics`: serve oktasync's own Prometheus metrics over HTTP.

    oktasync metrics --port 9808          # then scrape http://HOST:9808/metrics

Every scrape reads the grant store and Redis (worker/observability/metrics.py), so one metrics
process is enough for any number of workers, and it keeps no state of its own.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click


def make_server(host: str, port: int, registry: Any) -> Any:
    """A threaded WSGI server for /metrics (and / answering where the metrics are)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
    from wsgiref.simple_server import make_server as wsgi_server

    from prometheus_client import make_wsgi_app

    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path in ("/", "/healthcheck"):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"oktasync metrics: GET /metrics\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found; GET /metrics\n"]

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    return wsgi_server(host, port, app, server_class=Server, handler_class=QuietHandler)


@click.command("metrics")
@click.option("--host", default="0.0.0.0", show_default=True, envvar="OKTASYNC_METRICS_HOST",
              help="Address to listen on. [env OKTASYNC_METRICS_HOST]")
@click.option("--port", type=click.IntRange(0, 65535), default=9808, show_default=True,
              envvar="OKTASYNC_METRICS_PORT", help="Port to listen on. [env OKTASYNC_METRICS_PORT]")
@click.option("--once", is_flag=True, help="Print the metrics once to stdout and exit (no server).")
def metrics(host: str, port: int, once: bool) -> None:
    """Serve oktasync's Prometheus metrics at http://HOST:PORT/metrics.

    Runs by state, pages and items, Okta 429s, limiter deferrals, provisioning requests by state,
    queue depth. Reads OKTASYNC_DATABASE_URL, OKTASYNC_BROKER_URL and OKTASYNC_REDIS_URL.
    """
    from worker.config import ConfigError, load
    from worker.observability.logs import configure
    from worker.observability.metrics import registry_for, render

    try:
        settings = load()
    except ConfigError as exc:
        configure()
        raise click.ClickException(str(exc)) from None
    configure(json_lines=settings.json_logs)
    registry = registry_for(settings.database_url, settings.broker_url, settings.redis_url)
    if once:
        click.echo(render(registry), nl=False)
        return
    try:
        server = make_server(host, port, registry)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"oktasync metrics listening on http://{host}:{server.server_port}/metrics", err=True)
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.5)
    server.server_close()
