"""The embedded one-shot sync as a command: progress on the terminal, a summary, an exit code."""

from __future__ import annotations

import sys
from typing import Any

import click

from worker.commands.cliopts import credentials_from, options_from
from worker.commands.report import hint_for, kind_line, summary_lines


def progress_printer(stream: Any = None) -> Any:
    out = stream or sys.stderr
    tty = out.isatty()

    def show(progress: Any) -> None:
        line = progress.line()
        if tty:
            out.write("\r\033[K" + line)
        else:
            out.write(line + "\n")
        out.flush()

    return show, tty


def run_from_cli(domain: str, *, file: str, concurrency: int, rate_limit_share: float,
                 api_token: str | None = None, okta_client_id: str | None = None,
                 okta_private_key: str | None = None, okta_private_key_id: str | None = None,
                 skip_app_groups: bool | None = None, sync_inactive_apps: bool | None = None,
                 sync_secrets: bool | None = None, sync_custom_roles: bool | None = None,
                 filter_email_domains: str | None = None, skip_secondary_emails: bool | None = None,
                 quiet: bool = False, full: bool = False) -> int:
    """Run the sync; print progress and a summary; return the exit code (0 on success)."""
    from worker.engine.embedded import EmbeddedError, run_embedded
    from worker.okta.domain import InvalidDomain, normalize_domain

    try:
        normalize_domain(domain)
    except InvalidDomain as exc:
        raise click.BadParameter(str(exc), param_hint="--domain") from None
    credentials = credentials_from(api_token, okta_client_id, okta_private_key, okta_private_key_id)
    options = options_from(skip_app_groups, sync_inactive_apps, sync_secrets, sync_custom_roles,
                           filter_email_domains, skip_secondary_emails)
    show, tty = progress_printer()
    every = 1.0 if tty else 5.0
    try:
        result = run_embedded(domain, credentials or {}, options, file=file, concurrency=concurrency,
                              rate_limit_share=rate_limit_share, on_progress=None if quiet else show,
                              progress_every=every, full=full)
    except EmbeddedError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the sync was stopped; the previous complete sync (if any) is unchanged",
                   err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - e.g. a bad key file, an unreadable database
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        return 2
    if tty and not quiet:
        sys.stderr.write("\n")
    if result.state != "succeeded":
        click.echo(f"sync of {domain} failed after {result.elapsed:.1f}s: {result.error}", err=True)
        click.echo(f"what to do: {hint_for(result.error)}", err=True)
        return 1
    click.echo(f"synced {domain} into {result.file} (run {result.run_id}) in {result.elapsed:.1f}s")
    click.echo(kind_line(result.kind, result.reason, result.counts))
    for line in summary_lines(result.counts, result.warnings):
        click.echo(line)
    p = result.progress
    click.echo(f"rate limit:   {p.waits} limiter waits ({p.wait_seconds:.1f}s summed over parallel lists), {p.retries} retries")
    return 0
