"""`oktasync flower`: Flower for the oktasync app, refusing to start without authentication.

Flower reads its own settings (FLOWER_PORT, FLOWER_BASIC_AUTH, FLOWER_AUTH_PROVIDER, FLOWER_AUTH,
FLOWER_OAUTH2_KEY, FLOWER_OAUTH2_SECRET, FLOWER_OAUTH2_REDIRECT_URI, FLOWER_OAUTH2_OKTA_BASE_URL,
...) from the environment or its command line; this command checks that one of the two ways to
authenticate is configured, then replaces itself with `celery -A worker flower` (same process, so
signals from a supervisor reach Flower directly). Without authentication Flower would show every
task of every tenant to whoever can reach its port.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

import click

OAUTH_SETTINGS = ("FLOWER_AUTH_PROVIDER", "FLOWER_AUTH", "FLOWER_OAUTH2_KEY", "FLOWER_OAUTH2_SECRET",
                  "FLOWER_OAUTH2_REDIRECT_URI")
OKTA_PROVIDER = "flower.views.auth.OktaLoginHandler"
MIN_PASSWORD = 12


def _arg(args: Sequence[str], name: str) -> list[str]:
    """Values of --name=value / --name value (Flower accepts - and _ in names)."""
    names = {f"--{name}", f"--{name.replace('_', '-')}"}
    out: list[str] = []
    for i, arg in enumerate(args):
        key, eq, value = arg.partition("=")
        if key in names:
            if eq:
                out.append(value)
            elif i + 1 < len(args):
                out.append(args[i + 1])
    return out


def auth_problem(env: Mapping[str, str], args: Sequence[str] = ()) -> str | None:
    """None if Flower will require authentication; otherwise what is missing."""
    basic = [v for v in _arg(args, "basic_auth") + [env.get("FLOWER_BASIC_AUTH", "")] if v.strip()]
    unauth = env.get("FLOWER_UNAUTHENTICATED_API", "").strip().lower()
    if unauth in ("1", "true", "yes", "on"):
        return "FLOWER_UNAUTHENTICATED_API is on: it opens Flower's API without authentication; unset it"
    if basic:
        for entry in ",".join(basic).split(","):
            user, sep, password = entry.partition(":")
            if not sep or not user.strip() or not password:
                return "FLOWER_BASIC_AUTH must be user:password[,user2:password2] (one entry has no password)"
            if len(password) < MIN_PASSWORD:
                return (f"FLOWER_BASIC_AUTH: the password of {user.strip()!r} is shorter than {MIN_PASSWORD} "
                        "characters; use a long random one (e.g. `python -c 'import secrets; "
                        "print(secrets.token_urlsafe(24))'`)")
        return None
    given = {name: (env.get(name, "") or "".join(_arg(args, name[len("FLOWER_"):].lower()))).strip()
             for name in OAUTH_SETTINGS}
    if any(given.values()):
        missing = [name for name, value in given.items() if not value]
        if given["FLOWER_AUTH_PROVIDER"] == OKTA_PROVIDER and not env.get("FLOWER_OAUTH2_OKTA_BASE_URL"):
            missing.append("FLOWER_OAUTH2_OKTA_BASE_URL")
        if missing:
            return "Flower OAuth is incomplete: set " + ", ".join(missing)
        return None
    return ("Flower needs authentication: set FLOWER_BASIC_AUTH=user:password, or OAuth "
            f"({', '.join(OAUTH_SETTINGS)}; for Okta also FLOWER_OAUTH2_OKTA_BASE_URL). See docs/operations.md")


@click.command("flower", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(flower_args: tuple[str, ...]) -> None:
    """Start Flower (the Celery web console) with authentication required.

    Settings come from Flower's FLOWER_* variables (FLOWER_PORT, FLOWER_BASIC_AUTH or the OAuth
    ones); extra arguments go to Flower, e.g. `oktasync flower --max_tasks=20000`. /metrics
    (Prometheus) and /healthcheck stay open, as in Flower itself.
    """
    problem = auth_problem(os.environ, flower_args)
    if problem:
        raise click.ClickException(f"refusing to start Flower: {problem}")
    # Flower turns FLOWER_BASIC_AUTH="" into a list holding one empty credential (an .env file
    # with blank lines for unused settings would then break OAuth): drop blank FLOWER_* settings.
    for name in [n for n, v in os.environ.items() if n.startswith("FLOWER_") and not v.strip()]:
        del os.environ[name]
    argv = [sys.executable, "-m", "celery", "-A", "worker", "flower", *flower_args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
