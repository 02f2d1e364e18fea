"""`oktasync changes TENANT`: grants added and removed by a sync run."""

from __future__ import annotations

import json

import click

from worker.commands.database import DB_HELP, open_engine
from worker.commands.grants import print_table
from worker.store import queries
from worker.store.db import make_session_factory
from worker.store.tenants import TenantNotFound


@click.command("changes")
@click.argument("tenant")
@click.option("--run", "run_id", type=int, metavar="ID",
              help="Run to show (default: the tenant's latest successful run, full or incremental).")
@click.option("--db", "url", metavar="URL", help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def changes(tenant: str, run_id: int | None, url: str | None, as_json: bool) -> None:
    """Show grants a run added or removed compared with the run before it.

    By default the latest successful run, full or incremental: what the last sync changed (see
    `oktasync runs` for the run ids of earlier ones). A tenant's first run has no baseline and
    records no changes.
    """
    engine = open_engine(url)
    try:
        with make_session_factory(engine)() as session:
            try:
                shown_run, found = queries.changes(session, tenant, run_id)
            except (TenantNotFound, LookupError) as exc:
                raise click.ClickException(str(exc)) from None
            rows = [{"run": c.run_id, "change": c.change, "grant": c.grant_id, "entitlement": c.entitlement_id,
                     "principal": f"{c.principal_type}:{c.principal_id}", "expanded": c.expanded} for c in found]
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if shown_run is None:
        click.echo(f"tenant {tenant!r} has no finished sync yet")
        return
    if not rows:
        click.echo(f"run {shown_run}: no changes")
        return
    print_table(["CHANGE", "ENTITLEMENT", "PRINCIPAL", "HOW"],
                [["+" if r["change"] == "added" else "-", r["entitlement"], r["principal"],
                  "expanded" if r["expanded"] else "listed"] for r in rows])
    added = sum(r["change"] == "added" for r in rows)
    click.echo(f"run {shown_run}: {added} added, {len(rows) - added} removed")
