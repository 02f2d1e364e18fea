"""What a worker's main process does before its pool forks, and a pool child at its start
(worker/tasks/base.py): preloaded imports, objects frozen out of the cyclic collector's sight."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.paths import ROOT


def _run(code: str, **env: str) -> dict:
    import os

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(ROOT),
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env}).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_main_process_imports_what_its_children_need_and_freezes_before_the_fork():
    got = _run(
        "import gc, json, sys; from types import SimpleNamespace; from worker.tasks import base; "
        "before = [m for m in base.PRELOAD if m in sys.modules]; frozen = gc.get_freeze_count(); "
        "base._on_worker_init(sender=SimpleNamespace(pool_cls='prefork', concurrency=2)); "
        "print(json.dumps({'before': before, 'missing': [m for m in base.PRELOAD if m not in sys.modules], "
        "'frozen_before': frozen, 'frozen': gc.get_freeze_count()}))")
    assert "httpcore" not in got["before"] and "psycopg" not in got["before"]  # importing tasks stays light
    assert got["missing"] == []
    assert got["frozen_before"] == 0 and got["frozen"] > 10_000


def test_a_pool_child_freezes_what_it_built_at_its_start(tmp_path):
    got = _run(
        "import gc, json; from worker.tasks import base; base._on_process_init(); "
        "print(json.dumps({'frozen': gc.get_freeze_count(), 'runtime': base._built.get('runtime') is not None}))",
        OKTASYNC_DATABASE_URL=f"sqlite:///{tmp_path}/t.db", OKTASYNC_BROKER_URL="redis://127.0.0.1:1/0")
    assert got["runtime"] and got["frozen"] > 10_000
