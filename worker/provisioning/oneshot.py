"""One provisioning request run in this process (no Celery, no database), for the embedded CLI:

    oktasync --domain D --api-token T --grant-entitlement ENT --grant-principal ID --grant-principal-type TYPE
    oktasync ... --revoke-grant GRANT_ID
    oktasync ... --invoke-action NAME --invoke-action-args JSON
    oktasync ... --delete-resource OKTA_GROUP_ID --delete-resource-type group

Same validation (intake.py) and executors as the queue. This is not a worker, so the Okta client
may sleep on rate limits and retry transient errors itself; a RetryLater (e.g. a user still
being deactivated) is retried here a few times. Exit codes: 0 succeeded, 1 failed, 2 invalid
request, 3 gave up on transient errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.provisioning import intake
from worker.provisioning.context import ExecContext, PartialFailure
from worker.provisioning.errors import InvalidRequest
from worker.provisioning.runner import classify, execute

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_DEAD = 0, 1, 2, 3


@dataclass
class OneshotResult:
    state: str  # succeeded | failed | dead
    message: str
    kind: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    exit_code: int = EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "message": self.message, "kind": self.kind, "payload": self.payload,
                "details": self.details, "exit_code": self.exit_code}


def build_request(*, grant_entitlement: str | None = None, grant_principal: str | None = None,
                  grant_principal_type: str | None = None, revoke_grant: str | None = None,
                  invoke_action: str | None = None, invoke_action_args: str | Mapping[str, Any] | None = None,
                  delete_resource: str | None = None, delete_resource_type: str | None = None,
                  ) -> tuple[str, dict[str, Any]]:
    """The (kind, normalized payload) the one-shot flags ask for; InvalidRequest if they do not add up."""
    chosen = [name for name, v in (("--grant-entitlement", grant_entitlement), ("--revoke-grant", revoke_grant),
                                   ("--invoke-action", invoke_action), ("--delete-resource", delete_resource))
              if v]
    if len(chosen) != 1:
        raise InvalidRequest("give exactly one of --grant-entitlement, --revoke-grant, --invoke-action, "
                             f"--delete-resource (got {', '.join(chosen) or 'none'})")
    if grant_entitlement:
        if not grant_principal or not grant_principal_type:
            raise InvalidRequest("--grant-entitlement needs --grant-principal ID and --grant-principal-type TYPE")
        kind, payload = "grant", {"entitlement": grant_entitlement,
                                  "principal": f"{grant_principal_type}:{grant_principal}"}
    elif revoke_grant:
        kind, payload = "revoke", {"grant": revoke_grant}
    elif invoke_action:
        args: Any = invoke_action_args or {}
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError as exc:
                raise InvalidRequest(f"--invoke-action-args is not JSON: {exc}") from None
        kind, payload = "action", {"action": invoke_action, "args": args}
    else:
        if not delete_resource_type:
            raise InvalidRequest("--delete-resource needs --delete-resource-type (group)")
        kind, payload = "delete", {"resource_type": delete_resource_type, "resource_id": delete_resource}
    return kind, intake.normalize(kind, payload)


def run_oneshot(domain: str, credentials: Mapping[str, Any], *, client: Any = None, limiter: Any = None,
                max_attempts: int = 5, sleep: Any = time.sleep, **flags: Any) -> OneshotResult:
    """Run the request the one-shot flags describe against `domain`; never raises for request
    problems (the result says what happened), only for programming errors."""
    try:
        kind, payload = build_request(**flags)
    except InvalidRequest as exc:
        return OneshotResult("failed", f"invalid request: {exc}", exit_code=EXIT_INVALID)
    if client is None:
        from worker.provisioning.clients import make_client

        try:
            client = make_client(domain, credentials, tenant="oneshot", limiter=limiter, worker=False)
        except Exception as exc:  # noqa: BLE001 - bad domain or credentials: say which
            return OneshotResult("failed", f"cannot use these Okta settings: {exc}", kind, payload,
                                 exit_code=EXIT_INVALID)
    ctx = ExecContext(okta=client, base_url=client.base_url)
    last = ""
    for attempt in range(1, max_attempts + 1):
        ctx.attempt = attempt
        try:
            out = execute(ctx, kind, payload)
            return OneshotResult("succeeded", out.message, kind, payload, out.details)
        except PartialFailure as exc:
            return OneshotResult("failed", str(exc), kind, payload, exc.outcome.details, EXIT_FAILED)
        except Exception as exc:  # noqa: BLE001 - classified like the queue does
            verdict = classify(exc)
            if verdict.kind == "failed":
                return OneshotResult("failed", verdict.message, kind, payload, exit_code=EXIT_FAILED)
            last = verdict.message
            if attempt < max_attempts:
                sleep(min(30.0, verdict.countdown or 2 ** (attempt - 1)))
    return OneshotResult("dead", f"gave up after {max_attempts} attempts; last: {last}", kind, payload,
                         exit_code=EXIT_DEAD)
