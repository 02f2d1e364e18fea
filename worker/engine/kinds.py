"""Full, incremental and verify runs: what a run starts with, and what becomes of its result.

A run asked to be incremental becomes one when the tenant's cursor allows it (the connector's
planner decides, reading the System Log); otherwise it runs as a full sync and its plan says
why. Every successful run saves the tenant's change cursor with its result, in the same
transaction: a full run the one taken when it started, an incremental run the one after the log
it read. A run that could not read the log saves none, so the next run is full again.

A verify run (the drift check) lists everything as a full run does, into a scratch generation
that is compared with the current view and then discarded: it publishes nothing, records no
access change and leaves the cursor alone (worker/store/drift.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from worker.connector import StreamSpec, initial_streams
from worker.connector.incremental import Plan, full_cursor, plan_incremental
from worker.connector.options import SyncOptions
from worker.connector.system_log import parse_time
from worker.connector.types.base import NO_VIEW, View
from worker.store.db import immediate
from worker.store.drift import finalize_verify
from worker.store.generations import finalize_generation
from worker.store.incremental import Cursor, finalize_incremental, forget_cursor, save_cursor
from worker.store.tables import RUN_KINDS

FULL, INCREMENTAL, VERIFY = RUN_KINDS
# Kinds that list the whole org from scratch (so their first page includes the static rows).
LISTS_EVERYTHING = (FULL, VERIFY)
VERIFY_REASON = "drift check: a full sync into a scratch view, compared with the current view, then discarded"


def plan_run(get_page: Callable[[str], Any], asked: str, cursor: Any, options: SyncOptions,
             now: datetime, view: View = NO_VIEW) -> tuple[str, dict[str, Any], list[StreamSpec]]:
    """(kind, plan for sync_runs.plan, first lists) of a run asked to be `asked`; `view` answers
    the planner's questions about the tenant's current view."""
    if asked == VERIFY:  # no cursor to take: a verify run saves none
        return VERIFY, {"reason": VERIFY_REASON}, initial_streams(options)
    reason: str | None = "asked for a full sync"
    warning: str | None = None
    if asked == INCREMENTAL:
        decided = plan_incremental(get_page, cursor, options, view)
        if isinstance(decided, Plan):
            return INCREMENTAL, {**decided.to_dict(), "reason": "a complete earlier sync and a usable cursor"}, \
                decided.streams
        reason, warning = decided.reason, decided.warning
    start = full_cursor(get_page, now)
    plan: dict[str, Any] = {"reason": reason, "warning": warning}
    if isinstance(start, Plan):
        plan.update({k: v for k, v in start.to_dict().items()
                     if k in ("watermark", "log_after", "recent_event_ids", "log_pages")})
    else:
        plan["warning"] = warning or start.warning
    return FULL, plan, initial_streams(options)


def _cursor(plan: dict[str, Any], fingerprint: str | None) -> Cursor | None:
    watermark = parse_time(plan.get("watermark"))
    if watermark is None:
        return None
    return Cursor(watermark, plan.get("log_after"), tuple(plan.get("recent_event_ids") or ()), fingerprint)


def apply_run(session: Session, tenant_id: int, run_id: int, kind: str, plan: dict[str, Any],
              fingerprint: str | None, *, next_sync_at: Any = None) -> dict[str, Any]:
    """Make the run's result the tenant's view and save the cursor, in one transaction; a verify
    run's result is compared with the view instead, and then removed."""
    cursor = _cursor(plan, fingerprint)
    if session.in_transaction():
        # A read the caller began (loading an expired attribute) would turn the writes below into
        # a lock upgrade, which SQLite refuses at once ("database is locked") while another
        # connection is writing; begin as a writer instead.
        session.commit()
    immediate(session)
    if kind == VERIFY:
        verified = finalize_verify(session, tenant_id, run_id)
        return {"grants": verified.grants, "missing": verified.missing, "extra": verified.extra,
                "changed": verified.changed}
    if kind == INCREMENTAL:
        result = finalize_incremental(session, tenant_id, run_id, partial_kinds=plan.get("partial_kinds") or (),
                                      partial_children=plan.get("partial_children") or (),
                                      row_kinds=plan.get("row_kinds") or (),
                                      deleted=plan.get("deleted") or (), derived=plan.get("derived") or (),
                                      validated=plan.get("validated") or (),
                                      cursor=cursor)
        return {"containers": result.containers, "added": result.added, "removed": result.removed}
    if cursor is None:
        forget_cursor(session, tenant_id)
    else:
        save_cursor(session, tenant_id, run_id, cursor)
    full = finalize_generation(session, tenant_id, run_id, next_sync_at=next_sync_at)
    return {"resources": full.resources, "entitlements": full.entitlements, "grants": full.grants,
            "added": full.added, "removed": full.removed}


__all__ = ["FULL", "INCREMENTAL", "LISTS_EVERYTHING", "VERIFY", "apply_run", "plan_run"]
