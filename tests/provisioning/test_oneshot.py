"""The one-shot mode (baton-okta's flags): one request in this process, no Celery, no database."""

from __future__ import annotations

import json
from typing import Any

import click
from click.testing import CliRunner

from tests.support.provisioning import RO, SUPER, sim_args
from worker.commands.cliopts import credential_options
from worker.commands.provision import maybe_run_oneshot, oneshot_options
from worker.provisioning.oneshot import EXIT_FAILED, EXIT_INVALID, EXIT_OK, run_oneshot


def test_run_oneshot_every_flag_family(oktasim):
    sim = oktasim(sim_args())
    st = sim.state()
    g = next(x for x in st["groups"] if x["type"] == "OKTA_GROUP")
    uid = next(u["id"] for u in st["users"] if u["status"] == "ACTIVE" and u["id"] not in g["members"])
    creds = {"api_token": SUPER}
    ent = f"group:{g['id']}:member"
    res = run_oneshot(sim.url, creds, grant_entitlement=ent, grant_principal=uid, grant_principal_type="user")
    assert res.exit_code == EXIT_OK and res.message.startswith("granted")
    assert uid in next(x for x in sim.state()["groups"] if x["id"] == g["id"])["members"]
    res = run_oneshot(sim.url, creds, revoke_grant=f"{ent}:user:{uid}")
    assert res.exit_code == EXIT_OK and res.message.startswith("revoked")
    res = run_oneshot(sim.url, creds, invoke_action="create", invoke_action_args=json.dumps(
        {"name": "Oneshot Group", "userMembers": [uid]}))
    assert res.exit_code == EXIT_OK, res.message
    gid = res.details["group_id"]
    res = run_oneshot(sim.url, creds, delete_resource=gid, delete_resource_type="group")
    assert res.exit_code == EXIT_OK and gid not in {x["id"] for x in sim.state()["groups"]}
    everyone = next(x for x in st["groups"] if x["type"] == "BUILT_IN")["id"]
    res = run_oneshot(sim.url, creds, delete_resource=everyone, delete_resource_type="group")
    assert res.exit_code == EXIT_FAILED and "BUILT_IN" in res.message
    res = run_oneshot(sim.url, {"api_token": RO}, grant_entitlement=ent, grant_principal=uid,
                      grant_principal_type="user")
    assert res.exit_code == EXIT_FAILED and "okta.groups.manage" in res.message
    res = run_oneshot(sim.url, creds, grant_entitlement=ent, grant_principal=uid, grant_principal_type="group")
    assert res.exit_code == EXIT_INVALID and "cannot be granted to a group" in res.message


def test_oneshot_options_on_a_click_group(oktasim):
    """The decorator and hook as the `oktasync` main group uses them."""
    sim = oktasim(sim_args())
    uid = next(u["id"] for u in sim.state()["users"] if u["status"] == "ACTIVE")

    @click.group(invoke_without_command=True)
    @click.option("--domain")
    @credential_options
    @oneshot_options
    @click.pass_context
    def main(ctx: click.Context, domain: str | None, **flags: Any) -> None:
        maybe_run_oneshot(ctx, domain, flags)
        click.echo("no one-shot request")

    runner = CliRunner()
    out = runner.invoke(main, ["--domain", sim.url, "--api-token", SUPER, "--invoke-action", "disable_user",
                               "--invoke-action-args", json.dumps({"user_id": uid})])
    assert out.exit_code == 0, out.output
    assert "succeeded: user" in out.output and "suspended" in out.output
    assert next(u for u in sim.state()["users"] if u["id"] == uid)["status"] == "SUSPENDED"
    out = runner.invoke(main, ["--api-token", SUPER, "--revoke-grant", "group:00g1:member:user:00u1"])
    assert out.exit_code == 2 and "--domain is required" in out.output
    out = runner.invoke(main, ["--domain", sim.url])
    assert out.exit_code == 0 and "no one-shot request" in out.output
    assert SUPER not in out.output


def test_oktasync_command_one_shot_flags(oktasim, tmp_path):
    """The real `oktasync` console script, as baton-okta users call it."""
    import os
    import subprocess
    import sys

    sim = oktasim(sim_args())
    st = sim.state()
    gid = next(g["id"] for g in st["groups"] if g["type"] == "OKTA_GROUP")
    app_group = next(g["id"] for g in st["groups"] if g["type"] == "APP_GROUP")
    exe = os.path.join(os.path.dirname(sys.executable), "oktasync")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKTASYNC_")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, "--domain", sim.url, "--api-token", SUPER, *args], capture_output=True,
                              text=True, timeout=60, env=env, cwd=tmp_path)

    done = run("--delete-resource", gid, "--delete-resource-type", "group")
    assert done.returncode == 0, done.stderr
    assert f"succeeded: group {gid} deleted" in done.stdout
    assert gid not in {g["id"] for g in sim.state()["groups"]}
    refused = run("--delete-resource", app_group, "--delete-resource-type", "group")
    assert refused.returncode == 1 and "APP_GROUP group and cannot be deleted" in refused.stderr
    missing = run("--delete-resource", "00gnosuchgroup000000", "--delete-resource-type", "group")
    assert missing.returncode == 1 and "not found" in missing.stderr
    bad = run("--revoke-grant", "group:00g1:member:group:00g2")
    assert bad.returncode == 2 and "cannot be granted to a group" in bad.stderr
    assert SUPER not in done.stdout + done.stderr + refused.stderr
    assert not list(tmp_path.iterdir())  # one-shot: no sync file written
