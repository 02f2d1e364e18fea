"""Operations: redacted (text or JSON) logs, one line per task, Prometheus metrics, Flower wrapper.

- redact.py: `redact(text)` masks tokens, keys, JWTs and PEM blocks.
- logs.py: the formatters; `install(logger)`, `configure()`.
- celery_hooks.py: Celery signal handlers (logging setup, the per-task line, the tenant and
  run in each message's kwargsrepr for Flower); imported by worker/app.py.
- taskinfo.py: tenant/run/stream/request ids of a task from its id-only arguments.
- counters.py: Redis counters for Okta 429s (an httpx response hook) and engine deferrals (an
  engine event sink), wired by worker/tasks/base.py.
- metrics.py + serve.py: `oktasync metrics` (Prometheus, computed at scrape time).
- freshness.py: seconds since each tenant's last success and the lag histogram by size class.
- flower.py: `oktasync flower` (refuses to start without authentication).
"""
