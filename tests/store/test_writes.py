"""Page writes: idempotent upserts, batch de-duplication, chunking, fencing by run state."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.store import access_ent, app, app_grant, group, member, member_ent, user
from worker.model import Grant, Resource
from worker.store.db import SQLITE_BUSY_TIMEOUT_MS
from worker.store.tables import GrantRow, ResourceRow, SyncRun
from worker.store.writes import RunNotWritable, rows_per_statement, write_page


def _snapshot(session, run_id):
    grants = session.execute(sa.select(GrantRow.__table__).where(GrantRow.run_id == run_id).order_by(GrantRow.id)).all()
    res = session.execute(sa.select(ResourceRow.__table__).where(ResourceRow.run_id == run_id).order_by(ResourceRow.id)).all()
    return [tuple(r) for r in grants], [tuple(r) for r in res]


def test_same_page_twice_changes_nothing(store):
    t = store.tenant()
    run = store.start_run(t)
    page = dict(resources=[user("u1"), user("u2"), group("g1"), app("a1")],
                entitlements=[member_ent("g1"), access_ent("a1")],
                grants=[member("g1", "u1"), member("g1", "u2"), app_grant("a1", "group", "g1", annotations={"priority": 1})])
    with store.Session() as s:
        counts = write_page(s, t, run, **page)
        s.commit()
        first = _snapshot(s, run)
    assert counts == {"resources": 4, "entitlements": 2, "grants": 3}
    with store.Session() as s:
        write_page(s, t, run, **page)
        s.commit()
        assert _snapshot(s, run) == first
    assert len(first[0]) == 3 and len(first[1]) == 4


def test_later_version_of_a_row_wins(store):
    t = store.tenant()
    run = store.start_run(t)
    with store.Session() as s:
        write_page(s, t, run, resources=[Resource("user", "u1", "Old", {"email": "old@x"})])
        s.commit()
        # the same key twice in one batch (Okta repeats items across pages): last one wins
        write_page(s, t, run, resources=[Resource("user", "u1", "Mid", {}), Resource("user", "u1", "New", {"email": "new@x"})])
        s.commit()
        row = s.execute(sa.select(ResourceRow).where(ResourceRow.run_id == run)).scalar_one()
        assert (row.display_name, row.profile) == ("New", {"email": "new@x"})


def test_big_page_is_chunked_under_bind_limits(store):
    t = store.tenant()
    run = store.start_run(t)
    n = 3 * rows_per_statement(store.engine.dialect.name, 8) + 7
    grants = [Grant("group:g1:member", "user", f"u{i}") for i in range(n)]
    with store.Session() as s:
        write_page(s, t, run, grants=grants + grants[:50])
        s.commit()
        assert s.scalar(sa.select(sa.func.count()).select_from(GrantRow).where(GrantRow.run_id == run)) == n


def test_runs_keep_separate_generations(store):
    t = store.tenant()
    r1, r2 = store.start_run(t), None
    with store.Session() as s:
        write_page(s, t, r1, resources=[user("u1")])
        s.get(SyncRun, r1).state = "failed"
        s.commit()
    r2 = store.start_run(t)
    with store.Session() as s:
        write_page(s, t, r2, resources=[user("u1"), user("u2")])
        s.commit()
        per_run = dict(s.execute(sa.select(ResourceRow.run_id, sa.func.count()).group_by(ResourceRow.run_id)).all())
    assert per_run == {r1: 1, r2: 2}


def test_writes_to_a_finished_or_foreign_run_are_refused(store):
    t1, t2 = store.tenant("one"), store.tenant("two")
    run = store.start_run(t1)
    with store.Session() as s:
        with pytest.raises(RunNotWritable, match="belongs to tenant"):
            write_page(s, t2, run, resources=[user("u1")])
        s.get(SyncRun, run).state = "failed"
        s.commit()
        with pytest.raises(RunNotWritable, match="failed"):
            write_page(s, t1, run, resources=[user("u1")])
        with pytest.raises(RunNotWritable, match="does not exist"):
            write_page(s, t1, 999999, resources=[user("u1")])


def test_bad_rows_are_named(store):
    t = store.tenant()
    run = store.start_run(t)
    with store.Session() as s, pytest.raises(ValueError, match="principal type 'robot'"):
        write_page(s, t, run, grants=[Grant("app:a1:access", "robot", "r1")])


def test_a_page_in_flight_holds_off_the_run_state_change(store):
    """While a page transaction is open, the run cannot move to finalizing, so no page can land
    after finalize started: PostgreSQL's share lock on the run row, SQLite's single writer."""
    t = store.tenant()
    run = store.start_run(t)
    postgres = store.engine.dialect.name == "postgresql"
    with store.Session() as page, store.Session() as fin:
        write_page(page, t, run, resources=[user("u1")])
        if postgres:
            fin.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
        else:
            fin.connection().exec_driver_sql("PRAGMA busy_timeout=300")
        try:
            with pytest.raises(sa.exc.OperationalError, match="lock timeout" if postgres else "database is locked"):
                fin.execute(sa.update(SyncRun).where(SyncRun.id == run).values(state="finalizing"))
            fin.rollback()
            page.commit()
            fin.execute(sa.update(SyncRun).where(SyncRun.id == run).values(state="finalizing"))
            fin.commit()
        finally:
            if not postgres:  # the pooled connection keeps its pragmas
                fin.connection().exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                fin.rollback()


def test_json_and_text_values_are_stored_exactly(store):
    """Rows travel as JSON text on PostgreSQL: quotes, backslashes, unicode, nested nulls and
    numbers must come back as they went in."""
    t = store.tenant()
    run = store.start_run(t)
    profile = {"name": 'O\'Brien "Bob" \\ tab\t', "emoji": "ünï ✓ 🙂", "second": None, "nested": {"a": [1, 2.5, None, True]},
               "empty": {}, "big": 2**53}
    grant = Grant("group:g1:member", "user", 'u"1\\', annotations={"scope": None, "n": 0})
    with store.Session() as s:
        write_page(s, t, run, resources=[Resource("user", 'u"1\\', "Ünï \"q\"", profile)], grants=[grant])
        s.commit()
        row = s.execute(sa.select(ResourceRow).where(ResourceRow.run_id == run)).scalar_one()
        g = s.execute(sa.select(GrantRow).where(GrantRow.run_id == run)).scalar_one()
    assert (row.id, row.display_name, row.profile, row.parent) == ('user:u"1\\', "Ünï \"q\"", profile, None)
    assert (g.id, g.principal_id, g.annotations, g.sources, g.expanded) == (grant.id, 'u"1\\', {"scope": None, "n": 0}, [], False)
