"""Boolean sync options have `--no-...` forms (embedded command, `tenant add|update`), and a
tenant tells whether its options changed since its last successful run (its next run must then
be a full sync)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from tests.support.sim import SIM_TOKEN
from worker.cli import main
from worker.store.secrets import generate_key

OKTASYNC = str(Path(sys.executable).with_name("oktasync"))


def _embedded(sim, file: Path, *flags: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run([OKTASYNC, "--domain", sim.url, "--file", str(file), *flags],
                          env={"OKTASYNC_API_TOKEN": SIM_TOKEN, "PATH": "/usr/bin:/bin", **(env or {})},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _tenant(file: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["tenant", *args], env={"OKTASYNC_DATABASE_URL": f"sqlite:///{file}"})
    assert result.exit_code == 0, result.output
    return result.output


def _only_tenant(file: Path) -> dict:
    [info] = json.loads(_tenant(file, "list", "--json"))
    return info


def test_no_flags_turn_options_off_and_a_change_marks_the_next_run_full(oktasim, tmp_path):
    sim = oktasim(["--users", "20", "--groups", "3", "--apps", "2", "--seed", "5", "--window-seconds", "5"])
    file = tmp_path / "org.db"
    # the embedded command takes both forms; an environment variable can say false too
    _embedded(sim, file, "--sync-custom-roles", "--no-sync-secrets", env={"OKTASYNC_SKIP_APP_GROUPS": "true"})
    info = _only_tenant(file)
    assert info["options"] == {"skip_app_groups": True, "sync_inactive_apps": False, "sync_secrets": False,
                               "sync_custom_roles": True, "filter_email_domains": [], "skip_secondary_emails": False}
    assert info["options_changed"] is False  # synced with exactly these

    name = info["name"]
    _tenant(file, "update", name, "--no-skip-app-groups")
    info = _only_tenant(file)
    assert info["options"]["skip_app_groups"] is False
    assert info["options"]["sync_custom_roles"] is True  # flags not given keep their value
    assert info["options_changed"] is True

    _tenant(file, "update", name, "--skip-app-groups")  # back to what the last run synced with
    assert _only_tenant(file)["options_changed"] is False

    _tenant(file, "update", name, "--no-sync-custom-roles")
    assert _only_tenant(file)["options_changed"] is True
    _embedded(sim, file, "--skip-app-groups")  # a successful run with the new options
    info = _only_tenant(file)
    assert info["options"]["sync_custom_roles"] is False and info["options_changed"] is False


def test_tenant_add_and_update_take_both_forms(tmp_path):
    env = {"OKTASYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "OKTASYNC_SECRET_KEY": generate_key(),
           "OKTASYNC_SYNC_SECRETS": "false"}
    runner = CliRunner()
    got = runner.invoke(main, ["tenant", "add", "t1", "--domain", "acme.okta.com", "--api-token", SIM_TOKEN,
                               "--paused", "--sync-inactive-apps", "--no-skip-app-groups"], env=env)
    assert got.exit_code == 0, got.output
    got = runner.invoke(main, ["tenant", "update", "t1", "--no-sync-inactive-apps", "--sync-secrets"], env=env)
    assert got.exit_code == 0, got.output
    info = json.loads(runner.invoke(main, ["tenant", "show", "t1", "--json"], env=env).output)
    assert info["options"]["sync_inactive_apps"] is False and info["options"]["sync_secrets"] is True
    assert info["options_changed"] is True  # never synced
    help_text = runner.invoke(main, ["tenant", "update", "--help"]).output
    assert "--sync-secrets / --no-sync-secrets" in help_text


def _user_profiles(file: Path) -> dict[str, dict]:
    import sqlalchemy as sa

    from worker.store.db import make_engine
    from worker.store.tables import ResourceRow, Tenant

    engine = make_engine(f"sqlite:///{file}")
    with engine.connect() as c:
        run_id = c.execute(sa.select(Tenant.current_run_id)).scalar()
        rows = c.execute(sa.select(ResourceRow.resource_id, ResourceRow.profile).where(
            ResourceRow.run_id == run_id, ResourceRow.resource_type == "user")).all()
    engine.dispose()
    return dict(rows)


def test_skip_secondary_emails_flag_keeps_them_out_of_the_store(oktasim, tmp_path):
    sim = oktasim(["--users", "40", "--groups", "3", "--apps", "2", "--seed", "21", "--window-seconds", "5"])
    seconds = {u["id"]: u["profile"]["secondEmail"] for u in sim.state()["users"] if u["profile"].get("secondEmail")}
    assert seconds  # the generated org has users with a secondary e-mail
    kept, skipped = tmp_path / "kept.db", tmp_path / "skipped.db"
    _embedded(sim, kept)
    _embedded(sim, skipped, env={"OKTASYNC_SKIP_SECONDARY_EMAILS": "true"})
    for uid, second in seconds.items():
        assert {"address": second, "primary": False} in _user_profiles(kept)[uid]["emails"]
        shown = _user_profiles(skipped)[uid]
        assert all(e["primary"] for e in shown["emails"]) and shown["okta_profile"]["secondEmail"] is None
    assert _only_tenant(skipped)["options"]["skip_secondary_emails"] is True
    _tenant(skipped, "update", _only_tenant(skipped)["name"], "--no-skip-secondary-emails")
    assert _only_tenant(skipped)["options"]["skip_secondary_emails"] is False
