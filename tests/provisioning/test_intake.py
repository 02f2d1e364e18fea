"""Validation and normalization of provisioning requests (pure functions, no services)."""

from __future__ import annotations

import pytest

from worker.provisioning import intake
from worker.provisioning.errors import InvalidRequest
from worker.provisioning.oneshot import build_request


def test_grant_spellings_normalize_and_hash_alike():
    a = intake.normalize("revoke", {"grant": "group:00g1:member:user:00u1"})
    b = intake.normalize("revoke", {"entitlement": "group:00g1:member", "principal": "user:00u1"})
    c = intake.normalize("revoke", {"entitlement": "group:00g1:member", "principal_type": "user",
                                    "principal_id": "00u1"})
    assert a == b == c == {"entitlement": "group:00g1:member", "principal": "user:00u1"}
    assert intake.payload_hash("revoke", a) == intake.payload_hash("revoke", b)
    assert intake.payload_hash("grant", a) != intake.payload_hash("revoke", a)


@pytest.mark.parametrize("kind,payload,needle", [
    ("grant", {"entitlement": "group:00g1:member", "principal": "group:00g2"}, "cannot be granted to a group"),
    ("grant", {"entitlement": "group:00g1:owner", "principal": "user:00u1"}, "slug is 'member'"),
    ("grant", {"entitlement": "nope", "principal": "user:00u1"}, "expected '<resource type>"),
    ("grant", {"entitlement": "group:00g1:member"}, "missing 'principal'"),
    ("grant", {"principal": "user:00u1"}, "needs 'entitlement'"),
    ("grant", {"entitlement": "custom-role:cr1:assigned", "principal": "user:00u1"}, "resourceset-binding"),
    ("grant", {"entitlement": "resource-set:iam1:bindings", "principal": "custom-role:cr1"}, "granting a member"),
    ("revoke", {"grant": "group:00g1:member:user"}, "grant id"),
    ("frobnicate", {}, "unknown kind"),
    ("grant", ["x"], "must be a JSON object"),
    ("action", {"action": "explode", "args": {}}, "unknown action 'explode'"),
    ("action", {"action": "enable_user", "args": {}}, "missing required argument(s) user_id"),
    ("action", {"action": "enable_user", "args": {"user_id": "00u1", "x": 1}}, "unknown argument(s) x"),
    ("action", {"action": "create", "args": {"name": ""}}, "missing required argument(s) name"),
    ("action", {"action": "create", "args": {"name": "x" * 256}}, "1-255 characters"),
    ("action", {"action": "modify_group", "args": {"group_id": "00g1"}}, "at least one of name, description"),
    ("action", {"action": "create_account", "args": {"email": "nope", "first_name": "a", "last_name": "b"}},
     "not an email address"),
    ("action", {"action": "create_account", "args": {"email": "a@b.c", "first_name": "a", "last_name": "b",
                                                     "create_inactive": "maybe"}}, "true or false"),
    ("action", {"action": "create_account", "args": {"email": "a@b.c", "first_name": "a", "last_name": "b",
                                                     "password": "hunter2"}}, "must be one of none, random"),
    ("action", {"action": "create_account", "args": {"email": "a@b.c", "first_name": "a", "last_name": "b",
                                                     "provider_type": "SAML"}}, "one of OKTA, FEDERATION"),
    ("action", {"action": "create_account", "args": {"email": "a@b.c", "first_name": "a", "last_name": "b",
                                                     "provider_type": "federation", "password": "random"}},
     "cannot get a random password"),
    ("action", {"action": "create_account", "args": {"email": "a@b.c", "first_name": "a", "last_name": "b",
                                                     "password_change_on_login_required": True}},
     "needs password=random"),
    ("action", {"action": "update_user", "args": {"user_id": "00u1"}}, "at least one profile field"),
    ("action", {"action": "update_user", "args": {"user_id": "00u1", "additionalAttributes": {"title": "x"}}},
     "set title by name"),
    ("action", {"action": "update_user", "args": {"user_id": "00u1", "nickname": "x"}}, "unknown argument"),
    ("delete", {"resource_type": "app", "resource_id": "0oa1"}, "resource_type must be one of"),
    ("delete", {"resource_type": "group", "resource_id": "group:00g1:member"}, "not a raw Okta id"),
])
def test_invalid_requests_name_the_problem(kind, payload, needle):
    with pytest.raises(InvalidRequest) as err:
        intake.normalize(kind, payload)
    assert needle in str(err.value)


def test_action_arguments_are_coerced():
    out = intake.normalize("action", {"action": "create", "args": {
        "name": "Eng", "userMembers": "user:00u1, 00u2"}})
    assert out == {"action": "create", "args": {"name": "Eng", "userMembers": ["00u1", "00u2"]}}
    out = intake.normalize("action", {"action": "create_account", "args": {
        "email": "a@x.com", "first_name": "A", "last_name": "B", "send_activation_email": "false"}})
    assert out["args"]["send_activation_email"] is False
    out = intake.normalize("action", {"action": "create_account", "args": {
        "email": "a@x.com", "first_name": "A", "last_name": "B", "provider_type": "federation", "password": "NONE"}})
    assert (out["args"]["provider_type"], out["args"]["password"]) == ("FEDERATION", "none")  # the schema's spelling
    out = intake.normalize("action", {"action": "update_user", "args": {"user_id": "user:00u1", "title": "CTO"}})
    assert out == {"action": "update_user", "args": {"user_id": "00u1", "title": "CTO"}}
    assert intake.normalize("delete", {"resource_type": "group", "resource_id": "group:00g1"}) == {
        "resource_type": "group", "resource_id": "00g1"}


def test_oneshot_flags_build_the_same_requests():
    assert build_request(grant_entitlement="app:0oa1:access", grant_principal="00g1",
                         grant_principal_type="group") == (
        "grant", {"entitlement": "app:0oa1:access", "principal": "group:00g1"})
    assert build_request(revoke_grant="role:USER_ADMIN:assigned:group:00g1") == (
        "revoke", {"entitlement": "role:USER_ADMIN:assigned", "principal": "group:00g1"})
    assert build_request(invoke_action="disable_user", invoke_action_args='{"user_id":"00u1"}') == (
        "action", {"action": "disable_user", "args": {"user_id": "00u1"}})
    assert build_request(delete_resource="00g1", delete_resource_type="group") == (
        "delete", {"resource_type": "group", "resource_id": "00g1"})
    with pytest.raises(InvalidRequest, match="exactly one"):
        build_request(revoke_grant="a", delete_resource="b")
    with pytest.raises(InvalidRequest, match="--grant-principal-type"):
        build_request(grant_entitlement="group:00g1:member", grant_principal="00u1")
    with pytest.raises(InvalidRequest, match="not JSON"):
        build_request(invoke_action="enable_user", invoke_action_args="{nope")
