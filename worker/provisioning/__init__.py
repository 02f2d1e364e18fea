"""Provisioning: grant/revoke, connector actions and deletes, executed once per idempotency key.

intake.py validates and normalizes a request; requests.py keeps the request rows; runner.py runs
one request end to end (for the Celery task, worker.tasks.provisioning, and the one-shot CLI,
oneshot.py alike): the resource type modules (worker.connector.types) make the Okta calls and say
what changed, and worker.store.writethrough puts that into the tenant's current view.
"""
