"""Incremental sync end to end (embedded mode, real oktasim): after a change, an incremental run
into the file equals a full sync of the same org into a fresh file; and the fallbacks to full."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.sim import SIM_TOKEN
from worker.connector import SyncOptions
from worker.engine.embedded import run_embedded
from worker.store.db import make_engine
from worker.store.tables import EntitlementRow, GrantRow, ResourceRow, Tenant

OPTIONS = SyncOptions(sync_custom_roles=True, sync_secrets=True)
ORG = ["--users", "150", "--groups", "20", "--apps", "8", "--seed", "21", "--window-seconds", "5"]


def view(file) -> tuple[set, set, set]:
    """The file's current view, whole: every column a reader sees."""
    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        run = c.execute(sa.select(Tenant.current_run_id)).scalar()
        r, e, g = ResourceRow, EntitlementRow, GrantRow
        res = {(x.id, x.display_name, repr(sorted(x.profile.items())), x.parent) for x in c.execute(
            sa.select(r.id, r.display_name, r.profile, r.parent).where(r.run_id == run))}
        ents = {tuple(x) for x in c.execute(sa.select(e.id, e.display_name).where(e.run_id == run))}
        grants = {(x.id, x.expanded, tuple(x.sources), repr(sorted(x.annotations.items()))) for x in c.execute(
            sa.select(g.id, g.expanded, g.sources, g.annotations).where(g.run_id == run))}
    engine.dispose()
    return res, ents, grants


def sync(sim, file, **kw):
    result = run_embedded(sim.url, {"api_token": SIM_TOKEN}, kw.pop("options", OPTIONS), file=str(file),
                          concurrency=4, **kw)
    assert result.state == "succeeded", result.error
    return result


def assert_equals_full(sim, file, tmp_path, name="full.db"):
    full = sync(sim, tmp_path / name)
    assert full.kind == "full"
    mine, want = view(file), view(tmp_path / name)
    for got, exp, what in zip(mine, want, ("resources", "entitlements", "grants"), strict=True):
        assert got == exp, f"{what}: missing {sorted(exp - got)[:5]}, extra {sorted(got - exp)[:5]}"


def churn(sim, n: int, seed: int) -> list[dict]:
    return sim.admin.post("/__sim/churn", json={"changes": n, "seed": seed}).raise_for_status().json()["changes"]


def test_first_sync_is_full_then_incremental_with_no_change(oktasim, tmp_path):
    sim = oktasim(ORG)
    first = sync(sim, tmp_path / "a.db")
    assert (first.kind, first.reason) == ("full", "no cursor: the tenant has no complete sync with a change cursor yet")
    second = sync(sim, tmp_path / "a.db")
    assert second.kind == "incremental"
    assert second.counts["requests"] < first.counts["requests"] / 3
    assert (second.counts.get("added"), second.counts.get("removed")) == (0, 0)
    forced = sync(sim, tmp_path / "a.db", full=True)
    assert (forced.kind, forced.reason) == ("full", "asked for a full sync")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_incremental_after_churn_equals_a_full_sync(oktasim, tmp_path, seed):
    sim = oktasim(ORG)
    file = tmp_path / "a.db"
    sync(sim, file)
    churn(sim, 15, seed)
    result = sync(sim, file)
    assert result.kind == "incremental", result.reason
    assert_equals_full(sim, file, tmp_path)
