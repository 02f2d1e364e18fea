"""`oktasync tenant import FILE` and `tenant export` through the real CLI on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from worker.store.tenants import get_tenant, list_tenants, tenant_credentials

TOKEN = "00import-token-Very-Secret-0000000000001"
OTHER = "00import-token-Very-Secret-0000000000002"


def _pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def write(path: Path, *lines: object, mode: int = 0o600) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    path.chmod(mode)
    return path


def stored(sessions, name: str) -> dict:
    with sessions() as s:
        t = get_tenant(s, name)
        return {"domain": t.domain, "credentials": dict(tenant_credentials(t)), "options": t.options,
                "interval": t.sync_interval, "incremental_interval": t.incremental_interval,
                "verify_interval": t.verify_interval, "enabled": t.enabled, "updated_at": t.updated_at}


def test_good_lines_apply_and_bad_ones_are_reported_by_number(cli, sessions, tmp_path):
    f = write(tmp_path / "tenants.jsonl",
              {"name": "acme", "domain": "acme.okta.com", "api_token": TOKEN, "interval": 600,
               "sync_custom_roles": True, "filter_email_domains": "acme.com", "skip_secondary_emails": True},
              "",
              "# a comment",
              {"name": "bad-domain", "domain": "http://evil.example.com", "api_token": OTHER},
              '{"name": "broken", "api_token": "' + OTHER + '"',
              {"name": "typo", "domain": "typo.okta.com", "api-token": OTHER},
              {"name": "bad-interval", "domain": "x.okta.com", "api_token": OTHER, "interval": 0},
              {"name": "no-creds", "domain": "x.okta.com"},
              {"name": "globex", "domain": "globex.okta.com", "api_token": OTHER, "paused": True})
    got = cli("tenant", "import", str(f))
    assert got.exit_code == 1, got.output
    assert "line 1: acme added" in got.stdout and "line 9: globex added" in got.stdout
    for number, reason in ((4, "plain http"), (5, "not JSON"), (6, "unknown key(s) 'api-token'"),
                           (7, "interval"), (8, "needs credentials")):
        assert any(ln.startswith(f"line {number}: ") and reason in ln for ln in got.stderr.splitlines()), \
            (number, got.stderr)
    assert "2 added, 0 updated, 0 unchanged, 5 failed" in got.stderr
    assert TOKEN not in got.output and OTHER not in got.output
    acme = stored(sessions, "acme")
    assert acme["credentials"] == {"api_token": TOKEN} and acme["interval"] == 600 and acme["enabled"]
    assert acme["options"]["sync_custom_roles"] and acme["options"]["filter_email_domains"] == ["acme.com"]
    assert acme["options"]["skip_secondary_emails"] is True
    assert not stored(sessions, "globex")["enabled"]
    with sessions() as s:
        assert [t.name for t in list_tenants(s)] == ["acme", "globex"]


def test_the_same_file_twice_changes_nothing_and_a_changed_line_updates(cli, sessions, tmp_path):
    lines = [{"name": f"org{i}", "domain": f"org{i}.okta.com", "api_token": f"{TOKEN}{i}", "interval": 900}
             for i in range(3)]
    f = write(tmp_path / "t.jsonl", *lines)
    assert cli("tenant", "import", str(f)).exit_code == 0
    before = {f"org{i}": stored(sessions, f"org{i}") for i in range(3)}
    again = cli("tenant", "import", str(f))
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [f"line {i + 1}: org{i} unchanged" for i in range(3)]
    assert {f"org{i}": stored(sessions, f"org{i}") for i in range(3)} == before  # not even updated_at moved
    lines[1] = {**lines[1], "domain": "moved.okta.com", "api_token": OTHER}
    lines[2] = {**lines[2], "interval": 60, "skip_app_groups": True}
    changed = cli("tenant", "import", str(write(f, *lines)))
    assert changed.exit_code == 0, changed.output
    assert changed.stdout.splitlines() == ["line 1: org0 unchanged", "line 2: org1 updated (credentials, domain)",
                                           "line 3: org2 updated (options, sync_interval)"]
    assert stored(sessions, "org1")["credentials"] == {"api_token": OTHER}
    assert stored(sessions, "org2")["options"]["skip_app_groups"] and stored(sessions, "org2")["interval"] == 60
    assert stored(sessions, "org0") == before["org0"]


def test_a_file_with_secrets_that_others_can_read_is_refused(cli, sessions, tmp_path):
    f = write(tmp_path / "t.jsonl", {"name": "acme", "domain": "acme.okta.com", "api_token": TOKEN}, mode=0o644)
    got = cli("tenant", "import", str(f))
    assert got.exit_code == 2 and "other users can read it" in got.stderr and "chmod 600" in got.stderr
    assert TOKEN not in got.output
    with sessions() as s:
        assert list_tenants(s) == []
    # The same file naming its secret by environment variable holds no secret: accepted as it is.
    write(f, {"name": "acme", "domain": "acme.okta.com", "api_token": {"env": "ACME_TOKEN"}}, mode=0o644)
    got = cli("tenant", "import", str(f), ACME_TOKEN=TOKEN)
    assert got.exit_code == 0, got.output
    assert stored(sessions, "acme")["credentials"] == {"api_token": TOKEN}


def test_secrets_from_environment_variables(cli, sessions, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    f = write(tmp_path / "t.jsonl",
              {"name": "oauth", "domain": "oauth.okta.com", "okta_client_id": "0oa1",
               "okta_private_key": {"env": "OAUTH_PEM"}, "okta_private_key_id": "kid1"},
              {"name": "missing", "domain": "m.okta.com", "api_token": {"env": "NOT_SET_ANYWHERE"}},
              {"name": "malformed", "domain": "m.okta.com", "api_token": {"env": ""}})
    got = cli("tenant", "import", str(f), OAUTH_PEM=_pem(key))
    assert got.exit_code == 1
    assert "line 1: oauth added" in got.stdout
    assert "line 2: missing failed: 'api_token': environment variable NOT_SET_ANYWHERE is not set" in got.stderr
    assert "line 3: malformed failed: 'api_token' must be a string or" in got.stderr
    creds = stored(sessions, "oauth")["credentials"]
    assert creds == {"client_id": "0oa1", "private_key": _pem(key), "key_id": "kid1"}
    assert "PRIVATE KEY" not in got.output


def test_export_round_trips_and_holds_no_secret(cli, sessions, tmp_path):
    pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    (tmp_path / "key.pem").write_text(pem)
    f = write(tmp_path / "t.jsonl",
              {"name": "acme", "domain": "acme.okta.com", "api_token": TOKEN, "interval": 120,
               "incremental_interval": 30, "verify_interval": 86400,
               "sync_secrets": True, "filter_email_domains": ["acme.com", "@Corp.acme.com"]},
              {"name": "oauth", "domain": "oauth.okta.com", "okta_client_id": "0oa1",
               "okta_private_key": "@" + str(tmp_path / "key.pem"), "okta_private_key_id": "kid1", "paused": True})
    assert cli("tenant", "import", str(f)).exit_code == 0
    assert cli("tenant", "add", "cli-added", "--domain", "c.okta.com", "--api-token", OTHER).exit_code == 0
    before = {n: stored(sessions, n) for n in ("acme", "oauth", "cli-added")}
    exported = cli("tenant", "export")
    assert exported.exit_code == 0
    assert TOKEN not in exported.stdout and OTHER not in exported.stdout and "PRIVATE KEY" not in exported.stdout
    rows = [json.loads(x) for x in exported.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["acme", "cli-added", "oauth"]
    assert rows[0]["filter_email_domains"] == ["acme.com", "corp.acme.com"] and rows[0]["interval"] == 120
    assert (rows[0]["incremental_interval"], rows[0]["verify_interval"]) == (30, 86400)
    assert all(r["incremental_interval"] is None and r["verify_interval"] is None for r in rows[1:])  # off
    assert rows[2]["paused"] is True and not any(k in r for r in rows for k in ("api_token", "okta_private_key"))
    # Exported lines hold no secret, so the file may be readable by others; re-importing changes nothing.
    again = cli("tenant", "import", str(write(tmp_path / "export.jsonl", exported.stdout.strip(), mode=0o644)))
    assert again.exit_code == 0, again.output
    assert [ln.rsplit(" ", 1)[1] for ln in again.stdout.splitlines()] == ["unchanged"] * 3
    assert {n: stored(sessions, n) for n in before} == before
    # Standard input works too.
    assert cli("tenant", "import", "-", input=exported.stdout).stdout.count("unchanged") == 3


@pytest.mark.parametrize("field,value,flags,reason", [
    ("domain", "https://admin:pw@acme.okta.com", ["--domain", "https://admin:pw@acme.okta.com"], "user information"),
    ("interval", 0, ["--interval", "0"], "0 is not in the range x>=1"),
    ("incremental_interval", 3600, ["--incremental-interval", "3600"],
     "the incremental interval (3600s) must be shorter than the full sync interval (3600s)"),
    ("verify_interval", -1, ["--verify-interval", "-1"], "is not a whole number of seconds (> 0), or 0 or 'off'"),
    ("filter_email_domains", "acme.com,not a domain", ["--filter-email-domains", "acme.com,not a domain"],
     "'not a domain' is not a domain name"),
])
def test_import_and_add_refuse_the_same_values(cli, tmp_path, field, value, flags, reason):
    line = {"name": "t1", "domain": "acme.okta.com", "api_token": TOKEN, field: value}
    via_file = cli("tenant", "import", str(write(tmp_path / "t.jsonl", line)))
    base = {"--domain": "acme.okta.com"}
    base.update(dict(zip(flags[::2], flags[1::2], strict=True)))
    via_flags = cli("tenant", "add", "t1", *[x for kv in base.items() for x in kv], "--api-token", TOKEN)
    assert via_file.exit_code == 1 and reason in via_file.stderr, via_file.output
    assert via_flags.exit_code != 0 and reason in via_flags.output, via_flags.output


def test_ec_private_keys_are_refused_by_import_as_by_add(cli, tmp_path):
    pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    line = {"name": "t1", "domain": "acme.okta.com", "okta_client_id": "0oa1", "okta_private_key": pem,
            "okta_private_key_id": "kid1"}
    got = cli("tenant", "import", str(write(tmp_path / "t.jsonl", line)))
    assert got.exit_code == 1 and "EC (elliptic-curve) key" in got.stderr and "MII" not in got.output


def test_a_refused_line_changes_nothing_of_its_tenant(cli, sessions, tmp_path):
    f = write(tmp_path / "t.jsonl", {"name": "acme", "domain": "acme.okta.com", "api_token": TOKEN, "interval": 600})
    assert cli("tenant", "import", str(f)).exit_code == 0
    before = stored(sessions, "acme")
    bad = [{"name": "acme", "domain": "https://169.254.169.254", "api_token": OTHER, "interval": 60},
           {"name": "acme", "api_token": OTHER, "interval": 60, "filter_email_domains": "not a domain"},
           {"name": "acme", "api_token": OTHER, "interval": 60, "sync_secrets": "yes"},
           {"name": "acme", "api_token": OTHER, "interval": None},
           {"name": "acme", "api_token": OTHER, "interval": 60.5}]
    got = cli("tenant", "import", str(write(f, *bad)))
    assert got.exit_code == 1 and got.stderr.count("acme failed") == 5, got.output
    assert got.stderr.count("'interval' must be a whole number of seconds") == 2
    assert stored(sessions, "acme") == before


def test_incremental_and_verify_intervals_turn_on_change_and_turn_off(cli, sessions, tmp_path):
    f = tmp_path / "t.jsonl"
    base = {"name": "acme", "domain": "acme.okta.com", "api_token": TOKEN, "interval": 86400}
    assert cli("tenant", "import", str(write(f, {**base, "incremental_interval": 60}))).exit_code == 0
    assert stored(sessions, "acme")["incremental_interval"] == 60 and stored(sessions, "acme")["verify_interval"] is None
    lines = [{**base, "incremental_interval": 60, "verify_interval": 604800}, {**base, "incremental_interval": 120},
             {**base, "incremental_interval": 120}, {**base, "incremental_interval": "off"},
             {**base, "verify_interval": 0}, {**base, "incremental_interval": None}]
    got = cli("tenant", "import", str(write(f, *lines)))
    assert got.exit_code == 0, got.output
    assert [ln.split(" ", 3)[3] for ln in got.stdout.splitlines()] == [
        "updated (verify_interval)", "updated (incremental_interval)", "unchanged",
        "updated (incremental_interval)", "updated (verify_interval)", "unchanged"]
    assert (stored(sessions, "acme")["incremental_interval"], stored(sessions, "acme")["verify_interval"]) == (None, None)
    bad = [{**base, "incremental_interval": value} for value in ("soon", True, 1.5, -5, 86400)]
    got = cli("tenant", "import", str(write(f, *bad)))
    errors = [ln.split("failed: ", 1)[1] for ln in got.stderr.splitlines() if "failed: " in ln]
    assert errors[:3] == ["'incremental_interval' must be a whole number of seconds, or 0, \"off\" or null (off)"] * 3
    assert "is not a whole number of seconds (> 0), or 0 or 'off' to turn it off" in errors[3]
    assert "must be shorter than the full sync interval (86400s)" in errors[4]
