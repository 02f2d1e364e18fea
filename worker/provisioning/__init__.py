"""Provisioning: grant/revoke, connector actions and deletes, executed once per idempotency key.

intake.py validates and normalizes a request; requests.py keeps the request rows; executors.py
(grants) and actions.py (actions, deletes, account creation) talk to Okta; writethrough.py puts a
succeeded change into the tenant's current view; runner.py runs one request end to end, for the
Celery task (worker.tasks.provisioning) and the one-shot CLI (oneshot.py) alike.
"""
