"""`oktasync action --list`: every action with its arguments, from the schemas intake validates with."""

from __future__ import annotations

import json

from click.testing import CliRunner

from worker.cli import main
from worker.connector.types import ACTIONS
from worker.provisioning import intake


def test_list_prints_every_action_with_its_arguments():
    out = CliRunner().invoke(main, ["action", "--list"])
    assert out.exit_code == 0, out.output
    for name, action in ACTIONS.items():
        assert name in out.output
        for arg in action.args:
            assert arg in out.output
    assert "needs at least one of name, description" in out.output
    assert "one of none|random" in out.output and "one of OKTA|FEDERATION" in out.output
    line = next(x for x in out.output.splitlines() if x.strip().startswith("user_id"))
    assert "string" in line and "(required)" in line


def test_list_json_matches_what_intake_accepts():
    out = CliRunner().invoke(main, ["action", "--list", "--json"])
    assert out.exit_code == 0, out.output
    schemas = {s["name"]: s for s in json.loads(out.output)}
    assert set(schemas) == set(ACTIONS)
    account = {a["name"]: a for a in schemas["create_account"]["args"]}
    assert account["email"] == {"name": "email", "type": "string", "required": True}
    assert account["create_inactive"] == {"name": "create_inactive", "type": "boolean", "required": False}
    assert account["password"]["choices"] == ["none", "random"]
    assert schemas["create"]["resource_type"] == "group"
    assert {"name": "name", "type": "string", "required": True, "max_length": 255} in schemas["create"]["args"]
    # A request built from the listing alone (required arguments, first choice) passes intake.
    samples = {"string": "x@example.com", "boolean": True, "list of strings": ["00u1"], "object": {"k": "v"}}
    for name, schema in schemas.items():
        args = {a["name"]: a.get("choices", [samples[a["type"]]])[0] for a in schema["args"] if a["required"]}
        for key in ("user_id", "group_id"):
            if key in args:
                args[key] = "00u1abc"
        if "note" in schema:  # e.g. "needs at least one of name, description": give an optional one
            args.update({a["name"]: "x" for a in schema["args"] if a["name"] in ("title", "name")})
        assert intake.normalize("action", {"action": name, "args": args})["action"] == name


def test_running_an_action_still_needs_a_name_and_a_tenant():
    out = CliRunner().invoke(main, ["action", "--tenant", "t"])
    assert out.exit_code == 2 and "action --list" in out.output
    out = CliRunner().invoke(main, ["action", "enable_user", "user_id=00u1"])
    assert out.exit_code == 2 and "--tenant" in out.output
