"""`oktasync export` of a real sync of oktasim: every line follows docs/export.schema.json, and
everything the store keeps for the tenant's current view is in the export (JSONL and CSV)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.support.sim import SIM_TOKEN
from worker.cli import main
from worker.connector import SyncOptions
from worker.engine.embedded import run_embedded
from worker.store.db import make_engine
from worker.store.tables import EntitlementRow, GrantRow, ResourceRow, Tenant

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "export.schema.json").read_text())


@pytest.fixture
def synced_file(oktasim, tmp_path) -> Path:
    sim = oktasim(["--users", "40", "--groups", "5", "--apps", "8", "--seed", "3", "--window-seconds", "5"])
    file = tmp_path / "org.db"
    result = run_embedded(sim.url, {"api_token": SIM_TOKEN}, SyncOptions(sync_custom_roles=True, sync_secrets=True),
                          file=str(file), concurrency=4)
    assert result.state == "succeeded", result.error
    return file


def export(file: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["export", "--file", str(file), *args])
    assert result.exit_code == 0, result.output
    return result.output


def stored(file: Path) -> dict[str, list[dict]]:
    """The current view's rows, table by table, as the store holds them."""
    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        run_id = c.execute(sa.select(Tenant.current_run_id)).scalar_one()
        rows = {name: [dict(r._mapping) for r in c.execute(sa.select(model.__table__)
                                                           .where(model.__table__.c.run_id == run_id))]
                for name, model in (("resource", ResourceRow), ("entitlement", EntitlementRow),
                                    ("grant", GrantRow))}
    engine.dispose()
    return rows


def test_jsonl_follows_the_schema_and_holds_everything_the_store_keeps(synced_file):
    lines = export(synced_file).splitlines()
    validator = jsonschema.Draft202012Validator(SCHEMA)
    validator.check_schema(SCHEMA)
    records = [json.loads(line) for line in lines]
    for record in records:
        errors = list(validator.iter_errors(record))
        assert not errors, (record, [e.message for e in errors])
    by_kind: dict[str, dict[str, dict]] = {}
    for r in records:
        by_kind.setdefault(r["kind"], {})[r["id"]] = r
    assert list(by_kind) == ["resource_type", "resource", "entitlement", "grant"]

    rows = stored(synced_file)
    assert set(by_kind["resource"]) == {r["id"] for r in rows["resource"]}
    for row in rows["resource"]:
        got = by_kind["resource"][row["id"]]
        assert (got["resource_type"], got["resource_id"], got["display_name"], got["parent"], got["profile"]) == (
            row["resource_type"], row["resource_id"], row["display_name"], row["parent"], row["profile"])
    assert set(by_kind["entitlement"]) == {r["id"] for r in rows["entitlement"]}
    for row in rows["entitlement"]:
        got = by_kind["entitlement"][row["id"]]
        assert (got["resource"], got["resource_type"], got["slug"], got["display_name"]) == (
            row["resource"], row["resource_type"], row["slug"], row["display_name"])
        assert got["resource"] == f"{row['resource_type']}:{row['resource_id']}"
        assert by_kind["resource"][got["resource"]]["display_name"] in got["description"]
    assert set(by_kind["grant"]) == {r["id"] for r in rows["grant"]}
    for row in rows["grant"]:
        got = by_kind["grant"][row["id"]]
        assert (got["entitlement"], got["principal"], got["expanded"], got["sources"], got["annotations"]) == (
            row["entitlement_id"], f"{row['principal_type']}:{row['principal_id']}", bool(row["expanded"]),
            row["sources"], row["annotations"])

    grants = list(by_kind["grant"].values())
    # what the export says an entitlement can be granted to holds for every grant of the sync
    for g in grants:
        assert g["principal"].split(":")[0] in by_kind["entitlement"][g["entitlement"]]["grantable_to"], g
    # Okta's word on how a grant holds is there: app assignment scope/status, role assignment ids,
    # the resource set of a custom role assignment, binding member ids
    app_users = [g for g in grants if g["entitlement"].startswith("app:") and g["principal"].startswith("user:")
                 and not g["expanded"]]
    assert app_users and all(g["annotations"]["scope"] in ("USER", "GROUP") and g["annotations"]["status"]
                             for g in app_users)
    listed_roles = [g for g in grants if g["entitlement"].startswith("role:") and not g["expanded"]]
    assert listed_roles and all(g["annotations"]["id"] for g in listed_roles)
    # non-human admins: roles held by OAuth service apps, the app a resource of the export
    assert any(g["principal"].startswith("app:") and g["principal"] in by_kind["resource"] for g in listed_roles)
    assert any("resource-set" in g["annotations"] for g in grants if g["entitlement"].startswith("custom-role:"))
    assert any("member_id" in g["annotations"] for g in grants if g["entitlement"].startswith("resourceset-binding:"))
    # resource parents: an API token's owner, a binding's resource set, both exported resources
    parents = {r["resource_type"]: r["parent"] for r in by_kind["resource"].values() if r["parent"]}
    assert set(parents) == {"api-token", "resourceset-binding"}
    assert all(p in by_kind["resource"] for p in parents.values())
    assert set(by_kind["resource_type"]) == {r["resource_type"] for r in by_kind["resource"].values()}

    # the schema is not vacuous: a grant without its annotations, or an unknown kind, is refused
    bad_grant = {k: v for k, v in grants[0].items() if k != "annotations"}
    assert not validator.is_valid(bad_grant)
    assert not validator.is_valid({**records[0], "kind": "device"})


def test_csv_one_row_per_record_with_names_and_annotation_columns(synced_file):
    records = [json.loads(line) for line in export(synced_file).splitlines()]
    resources = {r["id"]: r for r in records if r["kind"] == "resource"}
    entitlements = {r["id"]: r for r in records if r["kind"] == "entitlement"}
    grants = {r["id"]: r for r in records if r["kind"] == "grant"}

    rows = list(csv.DictReader(io.StringIO(export(synced_file, "--format", "csv"))))  # grants by default
    assert any(r["role_targets"] for r in rows)   # a scoped admin role (the simulator has some)
    assert any(r["principal_type"] == "app" and r["principal_name"] for r in rows)   # a service app's role
    assert [r["id"] for r in rows] == list(grants)
    for row in rows:
        g = grants[row["id"]]
        ent = entitlements[g["entitlement"]]
        assert (row["entitlement"], row["entitlement_name"], row["resource"]) == (
            g["entitlement"], ent["display_name"], ent["resource"])
        assert row["resource_name"] == resources[ent["resource"]]["display_name"]
        assert row["principal"] == g["principal"] == f"{row['principal_type']}:{row['principal_id']}"
        assert row["principal_name"] == resources[g["principal"]]["display_name"]
        assert row["expanded"] == ("true" if g["expanded"] else "false")
        assert json.loads(row["sources"] or "[]") == g["sources"]
        ann = g["annotations"]
        assert row["assignment_scope"] == ann.get("scope", "")
        assert row["assignment_status"] == ann.get("status", "")
        assert row["assignment_priority"] == str(ann.get("priority", ""))
        assert row["role_assignment_id"] == ann.get("id", "")
        assert row["role_resource_set"] == ann.get("resource-set", "")
        assert row["binding_member_id"] == ann.get("member_id", "")
        assert json.loads(row["role_targets"] or "{}") == ann.get("targets", {})
        assert row["other_annotations"] == ""  # the connector writes only the keys above

    rows = list(csv.DictReader(io.StringIO(export(synced_file, "--format", "csv", "--kind", "resource"))))
    assert [r["id"] for r in rows] == list(resources)
    for row in rows:
        r = resources[row["id"]]
        assert json.loads(row["profile"] or "{}") == r["profile"]
        assert row["parent"] == (r["parent"] or "")
    rows = list(csv.DictReader(io.StringIO(export(synced_file, "--format", "csv", "--kind", "entitlement"))))
    assert [(r["id"], r["description"], json.loads(r["grantable_to"])) for r in rows] == [
        (e["id"], e["description"], e["grantable_to"]) for e in entitlements.values()]
