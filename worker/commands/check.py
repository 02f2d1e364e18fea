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
OAUTH_FLAGS = ("--okta-client-id", "--okta-private-key", "--okta-private-key-id")


def read_key(value: str) -> str:
    """A PEM given inline or as @path."""
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except OSError as exc:
            raise click.UsageError(f"--okta-private-key: cannot read {path!r}: {exc.strerror}") from None
    return value


def check_credential_flags(api_token: str | None, client_id: str | None, private_key: str | None,
                           key_id: str | None) -> str:
    """'ssws' or 'oauth'; a UsageError naming what is missing or conflicting."""
    oauth = (client_id, private_key, key_id)
    if api_token and any(oauth):
        raise click.UsageError("give either --api-token or the --okta-client-id/--okta-private-key/"
                               "--okta-private-key-id trio, not both")
    if api_token:
        return "ssws"
    if not any(oauth):
        raise click.UsageError("missing credentials: --api-token, or --okta-client-id, --okta-private-key "
                               "and --okta-private-key-id (or OKTASYNC_API_TOKEN / OKTASYNC_OKTA_* variables)")
    missing = [flag for flag, v in zip(OAUTH_FLAGS, oauth, strict=True) if not v]
    if missing:
        raise click.UsageError(f"OAuth needs {', '.join(missing)} too")
    return "oauth"


def run_probe(domain: str, api_token: str | None, client_id: str | None, pem: str | None,
              key_id: str | None) -> tuple[str, str, list, list[str]]:
    """(base url, auth kind, capabilities, notes). Raises CredentialsRejected, InvalidDomain, InvalidCredentials.

    For OAuth every scope is asked for; scopes Okta says the app was not granted are dropped by the
    client's auth (worker.okta.auth) and their capabilities then show as denied."""
    from worker.connector.capabilities import probe
    from worker.okta.auth import MANAGE_SCOPES, READ_SCOPES, PrivateKeyJWTAuth, SSWSAuth
    from worker.okta.client import OktaClient

    scopes = READ_SCOPES + MANAGE_SCOPES + ("okta.apiTokens.read",)
    auth = SSWSAuth(api_token) if api_token else PrivateKeyJWTAuth(client_id, pem, key_id, scopes=scopes)
    client = OktaClient(domain, auth, use="provisioning", max_retries=2)
    try:
        caps, notes = probe(client)
    finally:
        client.close()
    refused = getattr(auth, "refused_scopes", ())
    if refused:
        notes = [f"scopes not granted to this OAuth app: {', '.join(sorted(refused))}", *notes]
    return client.base_url, auth.kind, caps, notes


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
    assignment, review admin roles, create/modify/delete group, create account, update user, sync
    secrets), without changing anything."""
    # Imported here so `oktasync --help` does not load the HTTP stack.
    from worker.connector.capabilities import CredentialsRejected, ProbeFailed
    from worker.okta.auth import InvalidCredentials
    from worker.okta.domain import InvalidDomain, normalize_domain
    from worker.okta.errors import OktaError

    check_credential_flags(api_token, okta_client_id, okta_private_key, okta_private_key_id)
    pem = read_key(okta_private_key) if okta_private_key else None
    try:
        base, kind, caps, notes = run_probe(domain, api_token, okta_client_id, pem, okta_private_key_id)
    except (InvalidDomain, InvalidCredentials) as exc:
        raise click.UsageError(str(exc)) from None
    except CredentialsRejected as exc:
        click.echo(f"error: the credentials do not work with {normalize_domain(domain)}: {exc}", err=True)
        sys.exit(2)
    except (ProbeFailed, OktaError) as exc:
        click.echo(f"error: could not probe {normalize_domain(domain)}: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps({"domain": base, "credentials": kind, "notes": notes,
                               "capabilities": [{"name": c.name, "allowed": c.allowed, "probe": c.how,
                                                 "detail": c.detail} for c in caps]}, indent=2))
    else:
        width = max(len(c.name) for c in caps)
        click.echo(f"Okta org {base}, {kind} credentials:")
        click.echo(f"  {'capability'.ljust(width)}  allowed  detail")
        for c in caps:
            click.echo(f"  {c.name.ljust(width)}  {MARK[c.allowed].ljust(7)}  {c.detail}")
        for note in notes:
            click.echo(f"note: {note}")
    if not any(c.allowed for c in caps):
        click.echo("error: these credentials allow none of the capabilities", err=True)
        sys.exit(1)
