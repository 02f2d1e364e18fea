"""Run one request end to end: claim the row, execute, classify the outcome, write through.

Shared by the Celery task (worker.tasks.provisioning) and the one-shot CLI (oneshot.py, which
uses only `execute` and `classify`). `run_request` never sleeps: it returns a Step saying
"done" or "come back in N seconds", and the task turns that into `self.retry(countdown=N)`.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from worker.connector.options import InvalidOptions, SyncOptions
from worker.connector.types import ACTIONS, TYPES, WRITE_THROUGH_RULES
from worker.model import parse_entitlement_id, parse_principal
from worker.okta.auth import InvalidCredentials
from worker.okta.domain import InvalidDomain
from worker.okta.errors import (
    OktaAuthenticationError,
    OktaError,
    OktaPermissionDenied,
    OktaRateLimited,
    OktaTransientError,
    RateLimitWait,
)
from worker.provisioning.context import ExecContext, Outcome, PartialFailure
from worker.provisioning.errors import NotFound, ProvisionError, RetryLater
from worker.store import provision_requests as requests
from worker.store.secrets import SecretKeyError
from worker.store.tables import Tenant
from worker.store.tenants import tenant_credentials
from worker.store.writethrough import write_through

log = logging.getLogger("oktasync.provisioning")


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures allowed per request, and the backoff between them (seconds)."""

    max_retries: int = 5
    base: float = 2.0
    cap: float = 60.0

    def countdown(self, failures: int) -> float:
        raw = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return round(raw * random.uniform(0.5, 1.0), 3)  # jitter: retries of many requests spread


def _run_grant(ctx: ExecContext, payload: dict[str, Any], kind: str) -> Outcome:
    ent = parse_entitlement_id(payload["entitlement"])
    ptype, pid = parse_principal(payload["principal"])
    executor = getattr(TYPES[ent.resource_type], kind)  # its grant or revoke
    if executor is None:  # intake refuses these first
        raise NotFound(f"no executor for entitlement {ent.id!r}")
    if "targets" in payload:  # a scoped admin role (intake lets targets through only for those)
        return executor(ctx, ent, ptype, pid, targets=payload["targets"])
    return executor(ctx, ent, ptype, pid)


def _run_action(ctx: ExecContext, payload: dict[str, Any]) -> Outcome:
    return ACTIONS[payload["action"]].run(ctx, payload["args"])


def _run_delete(ctx: ExecContext, payload: dict[str, Any]) -> Outcome:
    delete = TYPES[payload["resource_type"]].delete
    if delete is None:  # intake refuses these first
        raise ProvisionError(f"resources of type {payload['resource_type']!r} cannot be deleted")
    return delete(ctx, payload["resource_id"])


# Request kind -> how it runs (on intake.normalize's payload); the resource types do the Okta calls.
EXECUTE: dict[str, Callable[[ExecContext, dict[str, Any]], Outcome]] = {
    "grant": functools.partial(_run_grant, kind="grant"),
    "revoke": functools.partial(_run_grant, kind="revoke"),
    "action": _run_action,
    "delete": _run_delete,
}


def execute(ctx: ExecContext, kind: str, payload: dict[str, Any]) -> Outcome:
    run = EXECUTE.get(kind)
    if run is None:
        raise ProvisionError(f"unknown kind {kind!r}")
    return run(ctx, payload)


@dataclass(frozen=True)
class Verdict:
    """How an exception ends an attempt: 'failed' now, 'retry' (counts against the budget) or
    'wait' (rate limit pacing: does not count)."""

    kind: str
    message: str
    countdown: float | None = None


def classify(exc: BaseException) -> Verdict:
    if isinstance(exc, ProvisionError):
        return Verdict("failed", str(exc))
    if isinstance(exc, (InvalidCredentials, SecretKeyError, InvalidDomain)):
        return Verdict("failed", f"the tenant's configuration is unusable: {exc}")
    if isinstance(exc, RateLimitWait):
        return Verdict("wait", f"waiting for the rate limit: {exc.reason}", exc.seconds)
    if isinstance(exc, RetryLater):
        return Verdict("retry", str(exc), exc.countdown)
    if isinstance(exc, OktaRateLimited):
        return Verdict("wait", f"rate limited by Okta: {exc}", exc.retry_after or None)
    if isinstance(exc, (OktaTransientError, httpx.TransportError)):
        return Verdict("retry", f"transient error: {exc}")
    if isinstance(exc, OktaPermissionDenied):
        return Verdict("failed", f"permission denied: {exc}")
    if isinstance(exc, OktaAuthenticationError):
        return Verdict("failed", f"authentication failed (check the tenant's credentials): {exc}")
    if isinstance(exc, OktaError):
        if exc.retryable:
            return Verdict("retry", f"Okta asked to retry later: {exc}")
        return Verdict("failed", str(exc))
    # A bug or an unexpected failure: retry within the budget, then dead with this error.
    return Verdict("retry", f"unexpected error: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Step:
    done: bool
    countdown: float = 0.0
    state: str | None = None


ClientFactory = Callable[[Tenant], Any]


def default_client_factory(limiter: Any = None, keys: Any = None, inline_wait: float | None = None) -> ClientFactory:
    from worker.provisioning.clients import INLINE_WAIT, make_client

    wait = INLINE_WAIT if inline_wait is None else inline_wait

    def build(tenant: Tenant) -> Any:
        return make_client(tenant.domain, tenant_credentials(tenant, keys), tenant=str(tenant.id), limiter=limiter,
                           inline_wait=wait)
    return build


def _sync_options(tenant: Tenant) -> SyncOptions:
    """The options the tenant's syncs map with (the defaults if they are unusable: its sync fails and says why)."""
    try:
        return SyncOptions.from_dict(tenant.options)
    except InvalidOptions:
        return SyncOptions()


def run_request(sessions: sessionmaker[Session], request_id: int, client_for: ClientFactory,
                policy: RetryPolicy | None = None, lease: float = requests.DEFAULT_LEASE) -> Step:
    """One attempt at request `request_id`."""
    policy = policy or RetryPolicy()
    with sessions() as session:
        row, wait = requests.claim(session, request_id, lease)
        if row is None:
            return Step(done=wait == 0, countdown=wait)
        attempts, kind, payload, created_at = row.attempts, row.kind, dict(row.payload), row.created_at
        progress = dict((row.result or {}).get("progress") or {})
        tenant = session.get(Tenant, row.tenant_id)
        assert tenant is not None  # FK, cascade on delete
        tenant_id = tenant.id
        log.info("provisioning request %s (%s) attempt %s for tenant %s", request_id, kind, attempts, tenant.name)

        def save(p: dict[str, Any]) -> None:
            with sessions() as s2:
                requests.checkpoint(s2, request_id, attempts, p)

        try:
            client = client_for(tenant)
            session.rollback()  # hold no transaction while Okta answers
            ctx = ExecContext(okta=client, base_url=client.base_url, progress=progress, checkpoint=save,
                              attempt=attempts, created_at=created_at, options=_sync_options(tenant))
            outcome = execute(ctx, kind, payload)
        except requests.LostLease:
            return Step(done=True)
        except PartialFailure as exc:
            return _finish(session, request_id, attempts, tenant_id, "failed", exc.outcome, str(exc), progress)
        except Exception as exc:  # noqa: BLE001 - every outcome is classified and recorded
            verdict = classify(exc)
            if verdict.kind == "failed":
                return _finish(session, request_id, attempts, tenant_id, "failed", None, verdict.message, progress)
            if verdict.kind == "retry":
                failures = int(progress.get("_transient", 0)) + 1
                progress["_transient"] = failures
                if failures > policy.max_retries:
                    msg = f"gave up after {failures} transient failures; last: {verdict.message}"
                    return _finish(session, request_id, attempts, tenant_id, "dead", None, msg, progress)
                countdown = verdict.countdown or policy.countdown(failures)
            else:
                countdown = max(0.05, verdict.countdown or policy.base)  # the limiter knows best
            log.info("provisioning request %s: %s; again in %.2fs", request_id, verdict.message, countdown)
            if not requests.requeue(session, request_id, attempts, verdict.message, progress,
                                    count=verdict.kind == "retry"):
                return Step(done=True)
            return Step(done=False, countdown=countdown)
        return _finish(session, request_id, attempts, tenant_id, "succeeded", outcome, None, progress)


def _finish(session: Session, request_id: int, attempts: int, tenant_id: int, state: str,
            outcome: Outcome | None, error: str | None, progress: dict[str, Any]) -> Step:
    result: dict[str, Any] = {}
    if outcome is not None:
        result.update(message=outcome.message, **({"details": outcome.details} if outcome.details else {}))
    if progress:
        result["progress"] = progress
    session.rollback()  # end the claim's read transaction; the finish is one new transaction
    if not requests.finish(session, request_id, attempts, state, result=result or None, error=error):
        session.rollback()
        return Step(done=True)
    if outcome is not None and outcome.changes:
        write_through(session, tenant_id, outcome.changes, WRITE_THROUGH_RULES)
    session.commit()
    log.info("provisioning request %s %s: %s", request_id, state, error or (outcome.message if outcome else ""))
    return Step(done=True, state=state)
