"""The one-shot mode (baton-okta's flags): one request in this process, no Celery, no database."""

from __future__ import annotations

import json
from typing import Any

import click
from click.testing import CliRunner

from tests.provisioning.conftest import RO, SUPER, sim_args
from worker.commands.provision import maybe_run_oneshot, oneshot_options
from worker.engine.cliopts import credential_options
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
