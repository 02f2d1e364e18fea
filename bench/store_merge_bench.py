"""Grant store merge throughput: a 1,000,000-grant sync written page by page, then finalized.

For each dialect it runs two syncs of one synthetic tenant (the second with ~1% of grants
changed, so finalize records diffs and removes the previous generation) and prints grants/s
for the page writes, the finalize time, the cleanup time, and the writer's peak RSS. Pages are
generated on the fly and written one transaction each, like page tasks do: nothing holds all
rows in memory.

    .venv/bin/python bench/store_merge_bench.py                       # both dialects, 1M grants
    .venv/bin/python bench/store_merge_bench.py --dialect sqlite --grants 100000
    .venv/bin/python bench/store_merge_bench.py --pg-url postgresql://postgres@127.0.0.1:5432/test

PostgreSQL: a throwaway database is created next to --pg-url (default $DATABASE_URL or
postgresql://postgres@127.0.0.1:5432/test) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.model import Entitlement, Grant, Resource  # noqa: E402
from worker.store.db import make_engine, make_session_factory  # noqa: E402
from worker.store.generations import finalize_generation  # noqa: E402
from worker.store.migrate import migrate  # noqa: E402
from worker.store.secrets import generate_key  # noqa: E402
from worker.store.tables import SyncRun  # noqa: E402
from worker.store.tenants import create_tenant  # noqa: E402
from worker.store.writes import write_page  # noqa: E402

GROUPS_PER_USER = 8
APP_GROUP_GRANTS = 100


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class Org:
    """A synthetic org sized so that the listed grants total `grants`:
    80% group memberships, ~20% direct app assignments, 100 app-to-group assignments."""

    def __init__(self, grants: int, variant: int):
        self.variant = variant
        self.users = max(10, int(grants * 0.8) // GROUPS_PER_USER)
        self.groups = max(10, self.users // 50)
        self.apps = max(5, self.users // 200)
        self.direct = grants - self.users * GROUPS_PER_USER - APP_GROUP_GRANTS

    def _changed(self, i: int) -> bool:
        return self.variant == 1 and i % 100 == 0  # run 2: ~1% of users moved to other groups

    def pages(self, size: int) -> Iterator[tuple[list[Resource], list[Entitlement], list[Grant]]]:
        # users (resources), 200 a page like Okta's /users
        for start in range(0, self.users, size):
            yield [Resource("user", f"00u{i}", f"User {i}", {"email": f"u{i}@example.com", "status": "ACTIVE"})
                   for i in range(start, min(start + size, self.users))], [], []
        yield ([Resource("group", f"00g{g}", f"Group {g}", {"type": "OKTA_GROUP"}) for g in range(self.groups)],
               [Entitlement("group", f"00g{g}", "member", f"Group {g} member") for g in range(self.groups)], [])
        yield ([Resource("app", f"0oa{a}", f"App {a}", {"status": "ACTIVE"}) for a in range(self.apps)],
               [Entitlement("app", f"0oa{a}", "access", f"App {a} access") for a in range(self.apps)], [])
        # group members, page by page: user i is in groups (i*k + j) % groups
        batch: list[Grant] = []
        for i in range(self.users):
            shift = 1 if self._changed(i) else 0
            for j in range(GROUPS_PER_USER):
                batch.append(Grant(f"group:00g{(i * 7 + j * 13 + shift) % self.groups}:member", "user", f"00u{i}"))
                if len(batch) == size:
                    yield [], [], batch
                    batch = []
        # app assignments: direct users, then a few groups (expanded at finalize)
        for n in range(self.direct):
            batch.append(Grant(f"app:0oa{n % self.apps}:access", "user", f"00u{(n * 31) % self.users}",
                               annotations={"scope": "USER"}))
            if len(batch) == size:
                yield [], [], batch
                batch = []
        for n in range(APP_GROUP_GRANTS):
            batch.append(Grant(f"app:0oa{n % self.apps}:access", "group", f"00g{(n * 17) % self.groups}"))
        yield [], [], batch


def one_sync(Session, tenant_id: int, grants: int, variant: int, page_size: int) -> dict[str, float]:
    with Session() as s:
        run = SyncRun(tenant_id=tenant_id, state="running")
        s.add(run)
        s.commit()
        run_id = run.id
    written = 0
    t0 = time.perf_counter()
    with Session() as s:
        for resources, entitlements, page in Org(grants, variant).pages(page_size):
            written += write_page(s, tenant_id, run_id, resources, entitlements, page)["grants"]
            s.commit()
    t1 = time.perf_counter()
    with Session() as s:
        s.execute(sa.update(SyncRun).where(SyncRun.id == run_id).values(state="finalizing"))
        s.commit()
        # the switch transaction and the batched cleanup are timed apart via cleanup=False
        res = finalize_generation(s, tenant_id, run_id, cleanup=False)
        t2 = time.perf_counter()
        from worker.store.generations import remove_generation
        removed = remove_generation(s, res.previous_run_id) if res.previous_run_id else 0
    t3 = time.perf_counter()
    return {"listed": written, "write_s": t1 - t0, "finalize_s": t2 - t1, "cleanup_s": t3 - t2,
            "removed_rows": removed, "expanded": res.expanded, "added": res.added, "removed": res.removed,
            "total": res.grants}


def bench_store(url: str):
    """(engine, session factory, tenant id) of a migrated store at `url` holding one tenant."""
    migrate(url)
    engine = make_engine(url)
    Session = make_session_factory(engine)
    with Session() as s:
        tenant_id = create_tenant(s, "bench", "bench.okta.com", {"api_token": "00bench"}).id
        s.commit()
    return engine, Session, tenant_id


def bench(url: str, label: str, grants: int, page_size: int) -> None:
    engine, Session, tenant_id = bench_store(url)
    for variant in (0, 1):
        r = one_sync(Session, tenant_id, grants, variant, page_size)
        whole = r["write_s"] + r["finalize_s"]
        print(f"{label} run {variant + 1}: {r['listed']:,} listed grants in {r['write_s']:.1f}s "
              f"({r['listed'] / r['write_s']:,.0f} grants/s written); finalize {r['finalize_s']:.1f}s "
              f"(+{r['expanded']:,} expanded, {r['added']:,} added / {r['removed']:,} removed); "
              f"merge total {r['listed'] / whole:,.0f} grants/s; old generation cleanup "
              f"{r['cleanup_s']:.1f}s ({r['removed_rows']:,} rows); peak RSS {peak_rss_mb():.0f} MB",
              flush=True)
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--grants", type=int, default=1_000_000)
    ap.add_argument("--page-size", type=int, default=200, help="grants per page/transaction (Okta pages hold 200)")
    ap.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    os.environ.setdefault("OKTASYNC_SECRET_KEY", generate_key())
    print(f"store merge bench: {args.grants:,} listed grants, {args.page_size} a page, python {sys.version.split()[0]}, "
          f"sqlite {__import__('sqlite3').sqlite_version}", flush=True)
    if args.dialect in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            bench(f"sqlite:///{d}/bench.db", "sqlite", args.grants, args.page_size)
    if args.dialect in ("postgresql", "both"):
        with scratch_postgres(args.pg_url) as (url, version):
            bench(url, f"postgresql {version}", args.grants, args.page_size)


@contextlib.contextmanager
def scratch_postgres(pg_url: str):
    """(url, server version) of a new PostgreSQL database, dropped afterwards."""
    admin = make_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"oktasync_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        version = c.exec_driver_sql("SHOW server_version").scalar()
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False), version
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
