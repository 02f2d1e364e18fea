"""`oktasync provision grant|revoke|delete|status|list|rejected` and `oktasync action`: the
provisioning queue from the command line; plus the one-shot flags of the embedded mode.

Requests go through worker.client (the same row and queue as the Python API and the JSON
message). Exit status: 0 succeeded (or queued, without --wait), 1 failed or dead, 2 invalid
input (unknown tenant, bad id, key reused with another payload), 3 still running at --timeout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

EXIT = {"succeeded": 0, "queued": 0, "running": 0, "failed": 1, "dead": 1}

_db = click.option("--db", "database_url", metavar="URL", envvar="OKTASYNC_DATABASE_URL",
                   help="Grant store URL [env OKTASYNC_DATABASE_URL].")
_tenant = click.option("--tenant", required=True, help="Tenant name (see `oktasync tenant list`).")
_key = click.option("--idempotency-key", "key", metavar="KEY",
                    help="Your id for this change: the same key again returns the same request. "
                         "Default: a new random key.")
_wait = click.option("--wait/--no-wait", default=False, help="Wait until the request is done.")
_timeout = click.option("--timeout", default=120.0, show_default=True, help="Seconds --wait waits.")
_json = click.option("--json", "as_json", is_flag=True, help="Print the request as JSON.")


def _show(ref: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(ref.as_dict(), default=str))
        return
    line = f"request {ref.id} [{ref.kind}] key={ref.idempotency_key} state={ref.state}"
    if ref.state in ("succeeded", "failed", "dead") and ref.result and ref.result.get("message"):
        line += f": {ref.result['message']}"
    if ref.error:
        line += f"\n  error: {ref.error}"
    if not ref.created and ref.attempts == 0 and ref.state == "queued":
        line += " (existing request)"
    click.echo(line)


def _submit(tenant: str, kind: str, payload: dict[str, Any], key: str | None, wait: bool, timeout: float,
            as_json: bool, database_url: str | None) -> None:
    from worker import client
    from worker.provisioning.errors import IdempotencyConflict, InvalidRequest

    try:
        ref = client.submit(tenant, kind, payload, key, database_url=database_url)
    except (InvalidRequest, IdempotencyConflict) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if not ref.created and not as_json:
        click.echo(f"idempotency key {ref.idempotency_key!r} already used: showing that request", err=True)
    if wait and not ref.done:
        try:
            ref = client.wait(tenant, ref.idempotency_key, timeout, database_url=database_url)
        except TimeoutError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(3)
    _show(ref, as_json)
    sys.exit(EXIT.get(ref.state, 1))


@click.group("provision")
def provision() -> None:
    """Queue grants, revokes and deletes; see where requests stand.

    Workers run them: `celery -A worker worker -Q provisioning`.
    """


def _grant_command(name: str, kind: str) -> Callable[..., None]:
    @provision.command(name, help=f"Queue a {kind} of ENT_ID to TYPE:ID (already "
                       f"{'granted' if kind == 'grant' else 'revoked'} succeeds without a change).")
    @_tenant
    @click.option("--entitlement", required=True, metavar="ENT_ID",
                  help="e.g. group:00g1:member, app:0oa1:access, role:USER_ADMIN:assigned, "
                       "resourceset-binding:<rs>:<role>:member")
    @click.option("--principal", required=True, metavar="TYPE:ID", help="user:00u1 or group:00g1")
    @click.option("--target", "targets", multiple=True, metavar="KIND:ID", hidden=kind != "grant",
                  help="Scope an admin role (repeatable): group:00g1 (USER_ADMIN, HELP_DESK_ADMIN, "
                       "GROUP_MEMBERSHIP_ADMIN), app:salesforce or app-instance:0oa1 (APP_ADMIN).")
    @_key
    @_wait
    @_timeout
    @_json
    @_db
    def cmd(tenant: str, entitlement: str, principal: str, targets: tuple[str, ...], key: str | None,
            wait: bool, timeout: float, as_json: bool, database_url: str | None) -> None:
        payload: dict[str, Any] = {"entitlement": entitlement, "principal": principal}
        if targets:
            payload["targets"] = _targets(targets)
        _submit(tenant, kind, payload, key, wait, timeout, as_json, database_url)
    return cmd


_TARGET_KINDS = {"group": "groups", "app": "apps", "app-instance": "app_instances"}


def _targets(values: tuple[str, ...]) -> dict[str, list[str]]:
    """--target KIND:ID options -> the request's `targets` (intake checks them against the role)."""
    out: dict[str, list[str]] = {}
    for value in values:
        kind, _, ident = value.partition(":")
        if kind not in _TARGET_KINDS or not ident:
            raise click.BadParameter(f"{value!r}: expected group:ID, app:NAME or app-instance:ID", param_hint="--target")
        out.setdefault(_TARGET_KINDS[kind], []).append(ident)
    return out


_grant_command("grant", "grant")
_grant_command("revoke", "revoke")


@provision.command("delete")
@_tenant
@click.option("--resource-type", type=click.Choice(["group", "user"]), required=True)
@click.option("--resource-id", required=True, metavar="OKTA_ID", help="The raw Okta id, e.g. 00g1abc2def3GHI4jk5.")
@_key
@_wait
@_timeout
@_json
@_db
def delete(tenant: str, resource_type: str, resource_id: str, key: str | None, wait: bool, timeout: float,
           as_json: bool, database_url: str | None) -> None:
    """Queue the deletion of a group (BUILT_IN and APP_GROUP refused) or a user (deactivate + delete)."""
    _submit(tenant, "delete", {"resource_type": resource_type, "resource_id": resource_id}, key, wait, timeout,
            as_json, database_url)


@provision.command("status")
@click.argument("key")
@_tenant
@_json
@_db
def status(key: str, tenant: str, as_json: bool, database_url: str | None) -> None:
    """Show the request with idempotency key KEY."""
    from worker import client
    from worker.provisioning.errors import InvalidRequest

    try:
        ref = client.status(tenant, key, database_url=database_url)
    except InvalidRequest as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if ref is None:
        click.echo(f"error: tenant {tenant!r} has no request with idempotency key {key!r}", err=True)
        sys.exit(2)
    _show(ref, as_json)


@provision.command("list")
@_tenant
@click.option("--state", type=click.Choice(["queued", "running", "succeeded", "failed", "dead"]))
@click.option("--limit", default=50, show_default=True)
@_json
@_db
def list_(tenant: str, state: str | None, limit: int, as_json: bool, database_url: str | None) -> None:
    """List a tenant's requests, newest first."""
    from worker import client
    from worker.provisioning.errors import InvalidRequest

    try:
        refs = client.list_requests(tenant, state, limit, database_url=database_url)
    except InvalidRequest as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for ref in refs:
        if as_json:
            click.echo(json.dumps(ref.as_dict(), default=str))
        else:
            msg = ref.error or (ref.result or {}).get("message") or ""
            click.echo(f"{ref.id}\t{ref.state}\t{ref.kind}\t{ref.idempotency_key}\t{msg}")


@provision.command("rejected")
@click.option("--limit", default=50, show_default=True)
@click.option("--redis", "redis_url", envvar="OKTASYNC_BROKER_URL", default="redis://127.0.0.1:6379/0",
              show_default=True, help="Redis of the broker [env OKTASYNC_BROKER_URL].")
def rejected(limit: int, redis_url: str) -> None:
    """Show submissions that could not be recorded (unknown tenant, key reused) and messages on the
    provisioning queue that were no provisioning task at all (with why), newest first."""
    import redis

    from worker.provisioning.service import rejected as fetch

    for entry in fetch(redis.Redis.from_url(redis_url), limit):
        click.echo(json.dumps(entry, default=str))


def _parse_kv(pairs: tuple[str, ...]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.UsageError(f"action arguments are key=value, got {pair!r}")
        # JSON lists/objects/booleans are taken as such; anything else is a string.
        if value[:1] in "[{" or value in ("true", "false"):
            try:
                args[name] = json.loads(value)
                continue
            except ValueError:
                pass
        args[name] = value
    return args


@click.command("action")
@click.option("--tenant", help="Tenant name (see `oktasync tenant list`); required to run an action.")
@click.option("--list", "list_", is_flag=True, help="Print every action with its arguments and exit.")
@click.argument("name", required=False)
@click.argument("args", nargs=-1)
@_key
@_wait
@_timeout
@click.option("--json", "as_json", is_flag=True, help="Print the request (or with --list the schemas) as JSON.")
@_db
def action(tenant: str | None, list_: bool, name: str | None, args: tuple[str, ...], key: str | None, wait: bool,
           timeout: float, as_json: bool, database_url: str | None) -> None:
    """Queue connector action NAME with key=value arguments; --list shows every action's arguments.

    \b
    enable_user user_id=00u1          disable_user user_id=00u1
    create name=Eng description=... userMembers=00u1,00u2
    modify_group group_id=00g1 name=... description=...
    create_account email=a@x.com first_name=A last_name=B [login=...] [password=none|random]
                   [password_change_on_login_required=true] [create_inactive=true]
                   [send_activation_email=false] [provider_type=OKTA|FEDERATION]
    update_user user_id=00u1 title=... managerId=00u2 additionalAttributes='{"team":"x"}'
    deactivate_user user_id=00u1      delete_user user_id=00u1
    """
    if list_:
        from worker.connector.types.schemas import action_schemas, describe

        schemas = action_schemas()
        click.echo(json.dumps(schemas, indent=2) if as_json else "\n".join(describe(s) for s in schemas))
        return
    if not name:
        raise click.UsageError("give an action NAME (see `oktasync action --list`)")
    if not tenant:
        raise click.UsageError("Missing option '--tenant'.")
    _submit(tenant, "action", {"action": name, "args": _parse_kv(args)}, key, wait, timeout, as_json,
            database_url)


# --- one-shot flags for the embedded `oktasync` command (baton-okta's names) --------------------

ONESHOT_PARAMS = ("grant_entitlement", "grant_principal", "grant_principal_type", "revoke_grant",
                  "invoke_action", "invoke_action_args", "delete_resource", "delete_resource_type")


def oneshot_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add baton-okta's one-shot provisioning flags to a click command (the `main` group)."""
    opts = [
        click.option("--grant-entitlement", metavar="ENT_ID", help="Grant this entitlement (one-shot)."),
        click.option("--grant-principal", metavar="ID", help="Principal id to grant to (one-shot)."),
        click.option("--grant-principal-type", metavar="TYPE", help="Principal type: user or group (one-shot)."),
        click.option("--revoke-grant", metavar="GRANT_ID", help="Revoke this grant (one-shot)."),
        click.option("--invoke-action", metavar="NAME", help="Run this connector action (one-shot)."),
        click.option("--invoke-action-args", metavar="JSON", help="The action's arguments as a JSON object."),
        click.option("--delete-resource", metavar="OKTA_ID", help="Delete this resource, by raw Okta id (one-shot)."),
        click.option("--delete-resource-type", metavar="TYPE", help="Type of --delete-resource: group."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def oneshot_requested(params: dict[str, Any]) -> bool:
    return any(params.get(p) for p in ("grant_entitlement", "revoke_grant", "invoke_action", "delete_resource"))


def run_oneshot_cli(domain: str, credentials: dict[str, Any], params: dict[str, Any], *,
                    as_json: bool = False) -> int:
    """Run the one-shot request the flags in `params` describe, print the outcome, return the exit code."""
    from worker.provisioning.oneshot import run_oneshot

    result = run_oneshot(domain, credentials, **{p: params.get(p) for p in ONESHOT_PARAMS})
    if as_json:
        click.echo(json.dumps(result.as_dict(), default=str))
    else:
        click.echo(f"{result.state}: {result.message}", err=result.exit_code != 0)
    return result.exit_code


def maybe_run_oneshot(ctx: click.Context, domain: str | None, flags: dict[str, Any]) -> None:
    """For the `main` group: pop the one-shot flags from `flags` (so they never reach the sync);
    if one was given and no subcommand, run that request and exit with its code.

    Wiring in worker/cli.py: decorate `main` with `@oneshot_options` and call
    `maybe_run_oneshot(ctx, domain, flags)` first thing in its body."""
    params = {p: flags.pop(p, None) for p in ONESHOT_PARAMS}
    if ctx.invoked_subcommand is not None or not oneshot_requested(params):
        return
    if not domain:
        raise click.UsageError("--domain is required with --grant-entitlement, --revoke-grant, "
                               "--invoke-action or --delete-resource")
    from worker.commands.cliopts import credentials_from

    credentials = credentials_from(flags.get("api_token"), flags.get("okta_client_id"),  # type: ignore[arg-type]
                                   flags.get("okta_private_key"), flags.get("okta_private_key_id"))
    ctx.exit(run_oneshot_cli(domain, credentials or {}, params))
