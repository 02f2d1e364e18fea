"""`oktasync check`: which of the product's capabilities these Okta credentials allow.

Probes without changing anything (see worker/connector/capabilities.py for how each probe works).
Exit status: 0 when at least one capability is allowed, 1 when none is, 2 when the credentials or
the input do not work at all.
"""

from __future__ import annotations

import json
import sys

import click

MARK = {True: "yes", False: "no", None: "?"}


def _read_key(value: str) -> str:
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except OSError as exc:
            raise click.UsageError(f"--okta-private-key: cannot read {path!r}: {exc.strerror}") from None
    return value


def build_auth(api_token: str | None, client_id: str | None, private_key: str | None, key_id: str | None,
               *, use: str = "provisioning", sync_secrets: bool = True):
    """SSWS or private_key_jwt auth from baton-okta-style flags; UsageError naming what is missing."""
    from worker.okta.auth import PrivateKeyJWTAuth, SSWSAuth

    oauth = [client_id, private_key, key_id]
    if api_token and any(oauth):
        raise click.UsageError("give either --api-token or the --okta-client-id/--okta-private-key/"
                               "--okta-private-key-id trio, not both")
    if api_token:
        return SSWSAuth(api_token)
    if not any(oauth):
        raise click.UsageError("missing credentials: --api-token, or --okta-client-id, --okta-private-key "
                               "and --okta-private-key-id (or OKTASYNC_API_TOKEN / OKTASYNC_OKTA_* variables)")
    missing = [flag for flag, v in zip(("--okta-client-id", "--okta-private-key", "--okta-private-key-id"),
                                       oauth, strict=True) if not v]
    if missing:
        raise click.UsageError(f"OAuth needs {', '.join(missing)} too")
    return PrivateKeyJWTAuth(client_id, _read_key(private_key), key_id, use=use, sync_secrets=sync_secrets)


@click.command("check")
@click.option("--domain", envvar="OKTASYNC_DOMAIN", required=True,
              help="Okta org domain, e.g. acme.okta.com [env OKTASYNC_DOMAIN]")
@click.option("--api-token", envvar="OKTASYNC_API_TOKEN", help="Okta API token (SSWS) [env OKTASYNC_API_TOKEN]")
@click.option("--okta-client-id", envvar="OKTASYNC_OKTA_CLIENT_ID",
              help="OAuth service app client id [env OKTASYNC_OKTA_CLIENT_ID]")
@click.option("--okta-private-key", envvar="OKTASYNC_OKTA_PRIVATE_KEY",
              help="PEM RSA private key, or @path to a PEM file [env OKTASYNC_OKTA_PRIVATE_KEY]")
@click.option("--okta-private-key-id", envvar="OKTASYNC_OKTA_PRIVATE_KEY_ID",
              help="the key's kid registered in Okta [env OKTASYNC_OKTA_PRIVATE_KEY_ID]")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def check(domain: str, api_token: str | None, okta_client_id: str | None, okta_private_key: str | None,
          okta_private_key_id: str | None, as_json: bool) -> None:
    """Report which capabilities the credentials allow (review/provision group membership and app
    assignment, review admin roles, create/modify/delete group, sync secrets), without changing anything."""
    # Imported here so `oktasync --help` does not load the HTTP stack.
    from worker.connector.capabilities import CredentialsRejected, probe
    from worker.okta.auth import InvalidCredentials
    from worker.okta.client import OktaClient
    from worker.okta.domain import InvalidDomain
    from worker.okta.errors import OktaError

    try:
        auth = build_auth(api_token, okta_client_id, okta_private_key, okta_private_key_id)
        client = OktaClient(domain, auth, use="provisioning", max_retries=2)
    except (InvalidDomain, InvalidCredentials) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        caps, notes = probe(client)
    except CredentialsRejected as exc:
        click.echo(f"error: the credentials do not work with {client.base_url}: {exc}", err=True)
        sys.exit(2)
    except OktaError as exc:
        click.echo(f"error: could not probe {client.base_url}: {exc}", err=True)
        sys.exit(2)
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps({"domain": client.base_url, "notes": notes,
                               "capabilities": [{"name": c.name, "allowed": c.allowed, "probe": c.how,
                                                 "detail": c.detail} for c in caps]}, indent=2))
    else:
        width = max(len(c.name) for c in caps)
        click.echo(f"Okta org {client.base_url}, {auth.kind} credentials:")
        click.echo(f"  {'capability'.ljust(width)}  allowed  detail")
        for c in caps:
            click.echo(f"  {c.name.ljust(width)}  {MARK[c.allowed].ljust(7)}  {c.detail}")
        for note in notes:
            click.echo(f"note: {note}")
    if not any(c.allowed for c in caps):
        click.echo("error: these credentials allow none of the capabilities", err=True)
        sys.exit(1)
