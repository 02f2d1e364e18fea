"""`oktasync export`: write a tenant's current view as JSON lines or CSV."""

from __future__ import annotations

import csv
import json
import os

import click

from worker.commands.database import DB_HELP, open_engine
from worker.commands.grants import pick_tenant
from worker.store import queries
from worker.store.db import make_session_factory
from worker.store.export import KINDS, NoCurrentRun, iter_csv, iter_records
from worker.store.tenants import get_tenant


@click.command("export")
@click.option("--file", "path", type=click.Path(dir_okay=False), metavar="SQLITE_PATH",
              help="A SQLite grant store file (e.g. the embedded mode's oktasync.db).")
@click.option("--db", "url", metavar="URL", help=DB_HELP)
@click.option("--tenant", metavar="NAME", help="Tenant to export (optional when the store holds one tenant).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="jsonl: one JSON object per line, every kind; csv: one kind as a table.")
@click.option("--kind", "kinds", type=click.Choice(KINDS), multiple=True,
              help="Only this kind (repeatable for jsonl; csv takes one, default grant).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="Write here instead of stdout.")
def export(path: str | None, url: str | None, tenant: str | None, fmt: str, kinds: tuple[str, ...], output) -> None:
    """Export a tenant's last complete sync, losslessly: resource types, resources (with parent and
    profile), entitlements (with description, purpose, who it can be granted to) and grants (with
    how they hold and Okta's annotations).

    jsonl: one object per line with a `kind` (resource_type, resource, entitlement, grant), kinds in
    that order, each in id order; the lines follow docs/export.schema.json.

    csv: a header and one row per record of one kind (--kind, default grant); a grant row also
    names its entitlement, resource and principal, and has one column per annotation. Lists and
    objects are JSON in their cell. See docs/store.md.
    """
    if path and url:
        raise click.UsageError("use either --file or --db, not both")
    if fmt == "csv" and len(kinds) > 1:
        raise click.UsageError("--format csv writes one kind: give --kind once")
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
                if fmt == "csv":
                    writer = csv.writer(output, lineterminator="\n")
                    writer.writerows(iter_csv(conn, tenant_id, kinds[0] if kinds else "grant"))
                else:
                    for record in iter_records(conn, tenant_id, kinds or KINDS):
                        output.write(json.dumps(record, ensure_ascii=False, separators=(", ", ": ")) + "\n")
            except NoCurrentRun:
                raise click.ClickException("the tenant has no finished sync yet: nothing to export") from None
    finally:
        engine.dispose()
