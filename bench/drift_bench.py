"""Drift comparison cost: `compare_generations` (worker/store/drift.py) by id only, then with the
content comparison (`changed`), on a synthetic view and a second generation with ~1 % of users in
other groups (bench/store_merge_bench.py's org). Prints wall and process CPU seconds of each and the
peak RSS: the content pass reads both generations in bounded id-range chunks.

    .venv/bin/python bench/drift_bench.py --dialect sqlite --grants 200000
    .venv/bin/python bench/drift_bench.py --dialect postgresql --grants 200000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_merge_bench import Org, bench_store, one_sync, peak_rss_mb, scratch_postgres  # noqa: E402

from worker.store import drift  # noqa: E402
from worker.store.secrets import generate_key  # noqa: E402
from worker.store.tables import SyncRun, Tenant  # noqa: E402
from worker.store.writes import write_page  # noqa: E402


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def bench(url: str, label: str, grants: int) -> None:
    engine, Session, tenant_id = bench_store(url)
    one_sync(Session, tenant_id, grants, 0, 200)
    with Session() as s:
        scratch = SyncRun(tenant_id=tenant_id, state="running", kind="verify")
        s.add(scratch)
        s.commit()
        for resources, entitlements, page in Org(grants, 1).pages(1000):
            write_page(s, tenant_id, scratch.id, resources, entitlements, page)
            s.commit()
        view = s.scalar(sa.select(Tenant.current_run_id))
        real = drift._changed
        drift._changed = lambda *_a, **_k: {"count": 0, "ids": []}  # ids only: the comparison before `changed`
        ids_only, w1, c1 = timed(lambda: drift.compare_generations(s, scratch.id, view))
        drift._changed = real
        full, w2, c2 = timed(lambda: drift.compare_generations(s, scratch.id, view))
        rows = sum(s.execute(sa.select(sa.func.count()).select_from(t).where(t.c.run_id == view)).scalar()
                   for _, t in drift.COMPARED)
    g = full["grants"]
    print(f"{label}: view {rows:,} rows; ids only {w1:.2f}s wall / {c1:.2f} CPU-s; with contents {w2:.2f}s wall / "
          f"{c2:.2f} CPU-s (x{w2 / max(w1, 1e-9):.1f} wall); grants missing {g['missing']:,} extra {g['extra']:,} "
          f"changed {g['changed']:,}; ids-only agrees: {ids_only['grants']['missing'] == g['missing']}; "
          f"peak RSS {peak_rss_mb():.0f} MB", flush=True)
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--grants", type=int, default=200_000)
    ap.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    os.environ.setdefault("OKTASYNC_SECRET_KEY", generate_key())
    if args.dialect in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            bench(f"sqlite:///{d}/bench.db", "sqlite", args.grants)
    if args.dialect in ("postgresql", "both"):
        with scratch_postgres(args.pg_url) as (url, _version):
            bench(url, "postgresql", args.grants)


if __name__ == "__main__":
    main()
