"""Click options shared by the embedded command, `tenant add/update` and `demo`: Okta credentials
and sync options with baton-okta's flag names, each also read from OKTASYNC_<FLAG>."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from worker.connector import InvalidOptions, SyncOptions

# (flag, help, is a boolean flag)
_CREDENTIAL_FLAGS = [
    ("--api-token", "Okta API token (SSWS); `-` reads it from standard input (keeps it out of `ps`).", False),
    ("--okta-client-id", "OAuth service app client id (private_key_jwt).", False),
    ("--okta-private-key", "The service app's private key: PEM text, @path to a PEM file, or `-` for "
                           "standard input.", False),
    ("--okta-private-key-id", "The key id (kid) of that key.", False),
]
_SYNC_FLAGS = [
    ("--skip-app-groups", "Leave out APP_GROUP groups and grants naming them.", True),
    ("--sync-inactive-apps", "Also sync inactive apps.", True),
    ("--sync-secrets", "Sync API-token metadata (never token values).", True),
    ("--sync-custom-roles", "Sync custom roles, resource sets and bindings.", True),
    ("--filter-email-domains", "Keep only users with an e-mail in these domains (a.com,b.com).", False),
    ("--skip-secondary-emails", "Leave users' secondary e-mail (profile.secondEmail) out of the store.", True),
]


def _options(flags: list[tuple[str, str, bool]]) -> Callable[..., Any]:
    """A decorator adding `flags`, usable bare or as (from_env=False): each flag is also read from
    OKTASYNC_<FLAG> unless from_env is False (`tenant update`, where an exported variable must not
    silently replace a tenant's token or options)."""
    def add(f: Callable[..., Any], from_env: bool) -> Callable[..., Any]:
        for flag, text, is_flag in reversed(flags):
            env = "OKTASYNC_" + flag[2:].upper().replace("-", "_") if from_env else None
            # A boolean also has its `--no-...` form, so `tenant update` can turn it off; not given
            # at all it stays None (keep the tenant's value, or the option's default).
            decls = [f"{flag}/--no-{flag[2:]}"] if is_flag else [flag]
            f = click.option(*decls, envvar=env, default=None,
                             help=f"{text} [env {env}]" if env else text)(f)
        return f

    def decorator(f: Callable[..., Any] | None = None, *, from_env: bool = True) -> Any:
        return (lambda g: add(g, from_env)) if f is None else add(f, from_env)
    return decorator


credential_options = _options(_CREDENTIAL_FLAGS)
sync_options = _options(_SYNC_FLAGS)


def _stdin_if_dash(value: str | None, flag: str) -> str | None:
    if value != "-":
        return value
    text = click.get_text_stream("stdin").read().strip()
    if not text:
        raise click.BadParameter("standard input was empty", param_hint=flag)
    return text


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
    if api_token == "-" and okta_private_key == "-":
        raise click.UsageError("only one of --api-token and --okta-private-key can be read from standard input")
    api_token = _stdin_if_dash(api_token, "--api-token")
    okta_private_key = _stdin_if_dash(okta_private_key, "--okta-private-key")
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
                 skip_secondary_emails: bool | None = None, base: dict[str, Any] | None = None) -> SyncOptions:
    """SyncOptions from the flags; flags not given keep the values in `base` (for updates)."""
    data = dict(base or {})
    for key, value in (("skip_app_groups", skip_app_groups), ("sync_inactive_apps", sync_inactive_apps),
                       ("sync_secrets", sync_secrets), ("sync_custom_roles", sync_custom_roles),
                       ("skip_secondary_emails", skip_secondary_emails)):
        if value is not None:
            data[key] = bool(value)
    if filter_email_domains is not None:
        data["filter_email_domains"] = filter_email_domains
    try:
        return SyncOptions.from_dict(data)
    except InvalidOptions as exc:
        raise click.BadParameter(str(exc), param_hint="--filter-email-domains") from None  # the only free-text option
