"""Task events for Flower, sent in batches by the worker's main process.

With `-E` the main process sends task-received, task-started and task-succeeded for every task.
Celery buffers them and publishes the buffer at the next turn of the event loop, which, with one
message per turn, is one Redis PUBLISH (and a kombu publish: serialization, declare check) per
event: a third of the main process's CPU per page task. This consumer lets the buffer fill for
up to `OKTASYNC_EVENT_FLUSH_INTERVAL` seconds (Celery still flushes at 24 events), so one publish
carries many events (`task.multi`: Flower and `celery events` read lists). Flower shows a task's
state that much later; nothing else changes. Worker events (heartbeats, online/offline) are not
buffered.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer


class BatchingConsumer(Consumer):
    """Celery's consumer (`worker_consumer`) with its buffered task events flushed on a timer."""

    _flush_timer: Any = None

    @property
    def flush_interval(self) -> float:
        settings = getattr(self.app.conf, "oktasync_settings", None)
        return float(getattr(settings, "event_flush_interval", 0.0) or 0.0)

    def on_send_event_buffered(self) -> None:
        if not self.hub or self.flush_interval <= 0:
            super().on_send_event_buffered()
            return
        if self._flush_timer is None:  # the first event since the last flush starts the clock
            self._flush_timer = self.hub.call_later(self.flush_interval, self._flush_on_timer)

    def _flush_on_timer(self) -> None:
        self._flush_timer = None
        self._flush_events()

    def _flush_pending(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._flush_events()

    def stop(self) -> None:
        self._flush_pending()  # a stopping worker sends what it buffered
        super().stop()

    def shutdown(self) -> None:
        self._flush_pending()
        super().shutdown()
