"""Log formatting for every oktasync process: text or JSON lines, always redacted.

OKTASYNC_LOG_FORMAT=json gives one JSON object per line (time, level, logger, message, process,
and the task context: task, task_id, tenant_id, run_id, stream_id, request_id when known);
anything else gives Celery's usual text lines. Either way the whole formatted line, traceback
included, goes through the redactor (worker/observability/redact.py) before it is written.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from typing import Any

from worker.observability.redact import redact

TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s"

# The task being run by this thread (set by the Celery hooks, read by the formatters).
task_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "oktasync_task_context", default=None)


class RedactingFormatter(logging.Formatter):
    """Text lines, redacted. Wraps the handler's own formatter when it has one (Celery's colour
    and task formatters keep their layout), else formats with TEXT_FORMAT."""

    def __init__(self, inner: logging.Formatter | None = None):
        super().__init__(TEXT_FORMAT)
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record) if self.inner is not None else super().format(record)
        return redact(text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, redacted field by field (so the JSON stays valid)."""

    # LogRecord attributes that are not user extras.
    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "message": record.getMessage(),
        }
        ctx = task_context.get()
        if ctx:
            out.update({k: v for k, v in ctx.items() if v is not None and not k.startswith("_")})
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_") and key not in out:
                out[key] = value if isinstance(value, (int, float, bool)) or value is None else str(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in list(out.items()):
            if isinstance(value, str):
                out[key] = redact(value)
        return json.dumps(out, default=str, ensure_ascii=False)


def make_formatter(inner: logging.Formatter | None = None, json_lines: bool = False) -> logging.Formatter:
    if json_lines:
        return JsonFormatter()
    if isinstance(inner, (RedactingFormatter, JsonFormatter)):
        inner = getattr(inner, "inner", None)
    return RedactingFormatter(inner)


def install(logger: logging.Logger | None = None, json_lines: bool = False) -> int:
    """Put a redacting (text or JSON) formatter on every handler of `logger` (root by default).

    Text handlers keep their formatter inside ours (Celery's colours and layout); returns the number of
    handlers changed. Safe to call again: our formatters are left as they are, unless the format
    was switched since.
    """
    logger = logger or logging.getLogger()
    changed = 0
    want_json = json_lines
    for handler in logger.handlers:
        current = handler.formatter
        if isinstance(current, JsonFormatter) and want_json:
            continue
        if isinstance(current, RedactingFormatter) and not want_json:
            continue
        handler.setFormatter(make_formatter(current, json_lines))
        changed += 1
    return changed


def configure(level: int | str = logging.INFO, json_lines: bool = False) -> None:
    """For processes Celery does not set up (the metrics server, the Flower wrapper): a stderr
    handler with the redacting formatter."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    root.setLevel(level)
    install(root, json_lines)
