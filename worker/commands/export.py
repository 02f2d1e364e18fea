"""`oktasync export`: write a tenant's current view as JSON lines."""

from __future__ import annotations

import json
import os

import click

from worker.commands.grants import DB_HELP, open_engine, pick_tenant
from worker.store import queries
from worker.store.db import make_session_factory
from worker.store.tenants import get_tenant


@click.command("export")
@click.option("--file", "path", type=click.Path(dir_okay=False), metavar="SQLITE_PATH",
              help="A SQLite grant store file (e.g. the embedded mode's oktasync.db).")
@click.option("--db", "url", metavar="URL", help=DB_HELP)
@click.option("--tenant", metavar="NAME", help="Tenant to export (optional when the store holds one tenant).")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True,
              help="Output format: one JSON object per line.")
@click.option("--output", "-o", type=click.File("w"), default="-", help="Write here instead of stdout.")
def export(path: str | None, url: str | None, tenant: str | None, fmt: str, output) -> None:
    """Export resources, entitlements and grants of a tenant's last complete sync.

    One JSON object per line, resources then entitlements then grants, each in id order:
    {"kind": "resource", "id", "resource_type", "resource_id", "display_name", "profile"},
    {"kind": "entitlement", "id", "resource", "slug", "display_name"},
    {"kind": "grant", "id", "entitlement", "principal", "expanded", "sources"}.
    """
    if path and url:
        raise click.UsageError("use either --file or --db, not both")
    if path:
        if not os.path.isfile(path):
            raise click.UsageError(f"--file {path}: no such file")
        url = f"sqlite:///{os.path.abspath(path)}"
    engine = open_engine(url)
    try:
        with make_session_factory(engine)() as session:
            tenant_id = get_tenant(session, pick_tenant(session, tenant)).id
        # one snapshot for the whole export: a sync finishing meanwhile does not mix in
        with queries.snapshot(engine) as conn:
            try:
                for record in queries.iter_export(conn, tenant_id):
                    output.write(json.dumps(record, ensure_ascii=False, separators=(", ", ": ")) + "\n")
            except queries.NoCurrentRun:
                raise click.ClickException("the tenant has no finished sync yet: nothing to export") from None
    finally:
        engine.dispose()
