"""`oktasync grants` and `oktasync resources`: read a tenant's current view of the grant store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from sqlalchemy.orm import Session

from worker.commands.database import DB_HELP, open_engine
from worker.model import RESOURCE_TYPES, Grant, InvalidId
from worker.store import queries
from worker.store.db import make_session_factory
from worker.store.tenants import TenantNotFound, list_tenant_names

TENANT_HELP = "Tenant name (may be left out when the database holds exactly one tenant)."


def pick_tenant(session: Session, name: str | None) -> str:
    """The tenant to use: the given one, or the only one in the database."""
    names = list_tenant_names(session)
    if name is not None:
        if name not in names:
            raise click.ClickException(f"no tenant {name!r}; tenants: {', '.join(names) or '(none)'}")
        return name
    if len(names) == 1:
        return names[0]
    if not names:
        raise click.ClickException("the database holds no tenant")
    raise click.ClickException(f"the database holds {len(names)} tenants; pick one with --tenant: {', '.join(names)}")


def grant_dict(g: Grant) -> dict[str, Any]:
    return {"id": g.id, "entitlement": g.entitlement_id, "principal": g.principal, "expanded": g.expanded,
            "sources": list(g.sources), "annotations": g.annotations}


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


@click.command("grants")
@click.option("--db", "url", metavar="URL", help=DB_HELP)
@click.option("--tenant", metavar="NAME", help=TENANT_HELP)
@click.option("--entitlement", metavar="ID", help="Only grants of this entitlement, e.g. app:0oa1:access.")
@click.option("--principal", metavar="TYPE:ID", help="Only grants to this principal, e.g. user:00u1 or group:00g1.")
@click.option("--user", "user_id", metavar="ID", help="Effective access of a user (listed and via groups).")
@click.option("--app", "app_id", metavar="ID", help="Who can access an app (users, directly or via groups).")
@click.option("--listed-only", is_flag=True, help="Leave out grants expanded from group grants.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def grants(url: str | None, tenant: str | None, entitlement: str | None, principal: str | None,
           user_id: str | None, app_id: str | None, listed_only: bool, as_json: bool) -> None:
    """Show grants of a tenant's last complete sync.

    A grant with HOW=expanded was derived from a group's grant (VIA names it); Okta did not list
    it for that principal.
    """
    if sum(x is not None for x in (user_id, app_id, principal)) > 1:
        raise click.UsageError("use only one of --user, --app, --principal")
    engine = open_engine(url)
    try:
        with make_session_factory(engine)() as session:
            name = pick_tenant(session, tenant)
            if user_id:
                principal = f"user:{user_id}"
            if app_id:
                entitlement = f"app:{app_id}:access"
            try:
                found = queries.grants(session, name, entitlement=entitlement, principal=principal,
                                       include_expanded=not listed_only)
            except InvalidId as exc:
                raise click.UsageError(str(exc)) from None
            if app_id:
                found = [g for g in found if g.principal_type == "user"]
            if queries.current_run_id(session, name) is None:
                click.echo(f"tenant {name!r} has no finished sync yet", err=True)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([grant_dict(g) for g in found], indent=2))
        return
    print_table(["ENTITLEMENT", "PRINCIPAL", "HOW", "VIA"],
                [[g.entitlement_id, g.principal, "expanded" if g.expanded else "listed", ",".join(g.sources)]
                 for g in found])


@click.command("resources")
@click.option("--db", "url", metavar="URL", help=DB_HELP)
@click.option("--tenant", metavar="NAME", help=TENANT_HELP)
@click.option("--type", "resource_type", type=click.Choice(RESOURCE_TYPES), help="Only resources of this type.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def resources(url: str | None, tenant: str | None, resource_type: str | None, as_json: bool) -> None:
    """Show resources (users, groups, apps, roles, ...) of a tenant's last complete sync."""
    engine = open_engine(url)
    try:
        with make_session_factory(engine)() as session:
            found = queries.resources(session, pick_tenant(session, tenant), resource_type)
    except TenantNotFound as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps([{"id": r.key, "resource_type": r.type, "resource_id": r.id,
                                "display_name": r.display_name, "profile": r.profile, "parent": r.parent}
                               for r in found], indent=2))
        return
    print_table(["ID", "NAME"], [[r.key, r.display_name] for r in found])
