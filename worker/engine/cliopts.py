"""Click options shared by the embedded command, `tenant add/update` and `demo`: Okta credentials
and sync options with baton-okta's flag names, each also read from OKTASYNC_<FLAG>."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from worker.connector import InvalidOptions, SyncOptions


def credential_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed([
        click.option("--api-token", envvar="OKTASYNC_API_TOKEN", default=None,
                     help="Okta API token (SSWS). [env OKTASYNC_API_TOKEN]"),
        click.option("--okta-client-id", envvar="OKTASYNC_OKTA_CLIENT_ID", default=None,
                     help="OAuth service app client id (private_key_jwt). [env OKTASYNC_OKTA_CLIENT_ID]"),
        click.option("--okta-private-key", envvar="OKTASYNC_OKTA_PRIVATE_KEY", default=None,
                     help="The service app's private key: PEM text, or @path to a PEM file. "
                          "[env OKTASYNC_OKTA_PRIVATE_KEY]"),
        click.option("--okta-private-key-id", envvar="OKTASYNC_OKTA_PRIVATE_KEY_ID", default=None,
                     help="The key id (kid) of that key. [env OKTASYNC_OKTA_PRIVATE_KEY_ID]"),
    ]):
        f = opt(f)
    return f


def sync_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed([
        click.option("--skip-app-groups", envvar="OKTASYNC_SKIP_APP_GROUPS", is_flag=True, default=None,
                     help="Leave out APP_GROUP groups and grants naming them. [env OKTASYNC_SKIP_APP_GROUPS]"),
        click.option("--sync-inactive-apps", envvar="OKTASYNC_SYNC_INACTIVE_APPS", is_flag=True, default=None,
                     help="Also sync inactive apps. [env OKTASYNC_SYNC_INACTIVE_APPS]"),
        click.option("--sync-secrets", envvar="OKTASYNC_SYNC_SECRETS", is_flag=True, default=None,
                     help="Sync API-token metadata (never token values). [env OKTASYNC_SYNC_SECRETS]"),
        click.option("--sync-custom-roles", envvar="OKTASYNC_SYNC_CUSTOM_ROLES", is_flag=True, default=None,
                     help="Sync custom roles, resource sets and bindings. [env OKTASYNC_SYNC_CUSTOM_ROLES]"),
        click.option("--filter-email-domains", envvar="OKTASYNC_FILTER_EMAIL_DOMAINS", default=None,
                     help="Keep only users with an e-mail in these domains (a.com,b.com). "
                          "[env OKTASYNC_FILTER_EMAIL_DOMAINS]"),
    ]):
        f = opt(f)
    return f


def read_private_key(value: str) -> str:
    """PEM text, or `@path` to a file holding it (the text itself is never echoed in errors)."""
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text()
        except OSError as exc:
            raise click.BadParameter(f"cannot read the private key file {path}: {exc.strerror}",
                                     param_hint="--okta-private-key") from None
    return value.replace("\\n", "\n")


_OAUTH = ("okta_client_id", "okta_private_key", "okta_private_key_id")


def _flag(param: str) -> str:
    """`--flag`, naming the environment variable too when the value came from there (a forgotten
    export is otherwise hard to spot)."""
    from click.core import ParameterSource

    flag = "--" + param.replace("_", "-")
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.get_parameter_source(param) == ParameterSource.ENVIRONMENT:
        return f"{flag} (set by $OKTASYNC_{param.upper()})"
    return flag


def credentials_from(api_token: str | None, okta_client_id: str | None, okta_private_key: str | None,
                     okta_private_key_id: str | None, *, required: bool = True) -> dict[str, str] | None:
    """The credentials dict the store keeps, from the flags; a clear error when incomplete."""
    oauth = [okta_client_id, okta_private_key, okta_private_key_id]
    if api_token and any(oauth):
        given = [_flag(n) for n, v in zip(_OAUTH, oauth, strict=True) if v]
        raise click.UsageError(f"give either {_flag('api_token')} or the OAuth credentials ({', '.join(given)}), "
                               "not both")
    if api_token:
        return {"api_token": api_token.strip()}
    if any(oauth):
        missing = [n for n, v in zip(("--okta-client-id", "--okta-private-key", "--okta-private-key-id"), oauth,
                                     strict=True) if not v]
        if missing:
            raise click.UsageError(f"OAuth credentials need {', '.join(missing)} as well")
        pem = read_private_key(str(okta_private_key))
        from worker.okta.auth import InvalidCredentials, load_private_key

        try:  # an EC/unreadable/short key is refused now, not at the first sync (messages hold no key material)
            load_private_key(pem)
        except InvalidCredentials as exc:
            raise click.BadParameter(str(exc), param_hint="--okta-private-key") from None
        return {"client_id": str(okta_client_id).strip(), "private_key": pem, "key_id": str(okta_private_key_id).strip()}
    if required:
        raise click.UsageError("credentials are missing: give --api-token TOKEN, or --okta-client-id ID "
                               "--okta-private-key PEM|@path --okta-private-key-id KID (or OKTASYNC_API_TOKEN)")
    return None


def options_from(skip_app_groups: bool | None, sync_inactive_apps: bool | None, sync_secrets: bool | None,
                 sync_custom_roles: bool | None, filter_email_domains: str | None,
                 base: dict[str, Any] | None = None) -> SyncOptions:
    """SyncOptions from the flags; flags not given keep the values in `base` (for updates)."""
    data = dict(base or {})
    for key, value in (("skip_app_groups", skip_app_groups), ("sync_inactive_apps", sync_inactive_apps),
                       ("sync_secrets", sync_secrets), ("sync_custom_roles", sync_custom_roles)):
        if value is not None:
            data[key] = bool(value)
    if filter_email_domains is not None:
        data["filter_email_domains"] = filter_email_domains
    try:
        return SyncOptions.from_dict(data)
    except InvalidOptions as exc:
        raise click.BadParameter(str(exc), param_hint="--filter-email-domains") from None  # the only free-text option
