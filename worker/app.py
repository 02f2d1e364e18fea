"""The Celery application: `celery -A worker worker -Q sync` (and `-Q provisioning`, `-Q dispatch`).

Everything is configured from the environment (worker/config.py). The settings follow
reference/celery-patterns.md §2.6: late acks with rejection on worker loss (a delivery counter in
worker/tasks/base.py caps redeliveries), prefetch 1, time limits below the visibility timeout, the
visibility timeout set in both transport-option dicts, no results stored (no chords), task events
on for Flower. Tasks take ids only; credentials are read from the store inside the task.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from worker import broker_guard, config

SYNC_QUEUE = "sync"
PROVISIONING_QUEUE = "provisioning"
# Beat's dispatcher tick has a queue of its own, consumed by a small worker of its own (Procfile
# `dispatcher`, `-c 1`): on `sync` it waited behind page tasks whenever every pool process was busy,
# and expired (ticks are lost, claims and releases late) exactly when the cluster was loaded.
DISPATCH_QUEUE = "dispatch"

TASK_MODULES = ["worker.tasks.sync", "worker.tasks.provisioning", "scheduler.dispatch"]


def make_app(settings: config.Settings | None = None) -> Celery:
    settings = settings or config.load()
    broker_guard.install()  # a non-envelope item on a queue must not stop the worker
    vt = settings.visibility_timeout
    transport = {
        "visibility_timeout": vt,
        # kombu scans for unacked messages every interval*throttle seconds (default ~100 s);
        # scan at least four times per visibility timeout so lost work comes back on time.
        "unacked_restore_interval": max(1, min(10, int(vt / 4))),
        "unacked_restore_throttle": 1,
    }
    celery = Celery("oktasync", broker=settings.broker_url,
                    include=TASK_MODULES)
    celery.conf.update(
        broker_transport_options=transport,
        result_backend_transport_options={"visibility_timeout": vt},
        visibility_timeout=vt,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=settings.task_soft_time_limit,
        worker_send_task_events=True,
        task_send_sent_event=True,
        # Task events go out in batches (OKTASYNC_EVENT_FLUSH_INTERVAL), not one publish each.
        worker_consumer="worker.observability.events:BatchingConsumer",
        worker_soft_shutdown_timeout=min(30.0, vt / 4),
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_default_queue=SYNC_QUEUE,
        task_queues=[Queue(SYNC_QUEUE), Queue(PROVISIONING_QUEUE), Queue(DISPATCH_QUEUE)],
        task_routes={
            "oktasync.provision.*": {"queue": PROVISIONING_QUEUE},
            "oktasync.sync.dispatch": {"queue": DISPATCH_QUEUE},
            "oktasync.sync.*": {"queue": SYNC_QUEUE},
        },
        beat_schedule={
            # One entry ticks the dispatcher; tenants' own schedules live in the database.
            "oktasync-dispatch": {
                "task": "oktasync.sync.dispatch",
                "schedule": settings.dispatch_interval,
                "options": {"queue": DISPATCH_QUEUE,
                            # A tick that waited longer than one interval is stale: the next one does
                            # its job (a tick slower than the interval only drops the ones behind it).
                            "expires": max(1.0, settings.dispatch_interval)},
            },
            # Republishes provisioning requests whose message was lost (e.g. Redis restarted).
            "oktasync-provision-reap": {
                "task": "oktasync.provision.reap",
                "schedule": 60.0,
                "options": {"queue": "provisioning", "expires": 60.0},
            },
        },
        beat_max_loop_interval=min(5.0, settings.dispatch_interval),
    )
    celery.conf.oktasync_settings = settings
    return celery


app = make_app()
celery = app

import worker.observability.celery_hooks  # noqa: E402,F401  (logs: redaction, one line per task; counters)
