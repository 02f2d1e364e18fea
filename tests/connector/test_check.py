"""`oktasync check` against oktasim at each token level: the product's capability table, nothing changed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.support.connector import TOKENS
from worker.cli import main

# The product documentation's table (custom read-only / read-only + app admin + group admin / super admin).
TABLE = {
    "review group membership": (True, True, True),
    "provision group membership": (False, True, True),
    "review app assignment": (True, True, True),
    "provision app assignment": (False, True, True),
    "review admin roles": (True, True, True),
    "review service-app admin roles": (True, True, True),
    "create group": (False, True, True),
    "modify group": (False, True, True),
    "delete group": (False, False, True),
    "create account": (False, False, True),
    "update user": (False, False, True),
    "sync secrets": (False, False, True),
    "incremental sync (System Log)": (True, True, True),  # any admin token may read the log
}
LEVELS = ("read-only", "app-group-admin", "super-admin")


@pytest.fixture
def sim(shared_sim):
    return shared_sim


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["check", *args], env=env or {}, catch_exceptions=False)


@pytest.mark.parametrize("level", LEVELS)
def test_capabilities_per_token_level(sim, level):
    before = sim.state()
    res = invoke("--domain", sim.url, "--api-token", TOKENS[level], "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    got = {c["name"]: c["allowed"] for c in data["capabilities"]}
    assert got == {name: row[LEVELS.index(level)] for name, row in TABLE.items()}
    assert sim.state() == before  # probing changed nothing
    assert TOKENS[level] not in res.output


def test_table_output_and_env_vars(sim):
    res = invoke(env={"OKTASYNC_DOMAIN": sim.url, "OKTASYNC_API_TOKEN": TOKENS["read-only"]})
    assert res.exit_code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if "delete group" in x)
    assert line.split()[2] == "no"


def test_bad_credentials_exit_non_zero(sim):
    res = invoke("--domain", sim.url, "--api-token", "00not-a-valid-token-00000000000000000000")
    assert res.exit_code == 2
    assert "credentials do not work" in res.stderr
    assert "00not-a-valid-token" not in res.output + res.stderr


@pytest.mark.parametrize("args,message", [
    ((), "missing credentials"),
    (("--okta-client-id", "0oa1"), "--okta-private-key"),
    (("--api-token", "x", "--okta-client-id", "0oa1"), "not both"),
])
def test_bad_input(sim, args, message):
    res = invoke("--domain", sim.url, *args)
    assert res.exit_code == 2 and message in res.output


def test_bad_domain():
    res = invoke("--domain", "https://acme.okta.com/some/path", "--api-token", "x")
    assert res.exit_code == 2 and "path" in res.output


def test_unreachable_org_exits_2():
    res = invoke("--domain", "http://127.0.0.1:1", "--api-token", "00whatever")
    assert res.exit_code == 2 and "could not probe" in res.stderr


def test_service_app_roles_cannot_be_told_without_a_service_app(oktasim):
    sim = oktasim(["--users", "20", "--groups", "4", "--apps", "4", "--api-token", f"{TOKENS['read-only']}=read-only"])
    assert not any(a["application_type"] == "service" for a in sim.state()["apps"])
    res = invoke("--domain", sim.url, "--api-token", TOKENS["read-only"], "--json")
    row = next(c for c in json.loads(res.stdout)["capabilities"] if c["name"] == "review service-app admin roles")
    assert row["allowed"] is None and "no OAuth service app" in row["detail"]
