"""The registry of resource types: every type of the model is there, once, with what it promises."""

from __future__ import annotations

from worker.connector.types import ACTIONS, DELETABLE, STREAMS, TYPES
from worker.model import ENTITLEMENT_SLUGS, RESOURCE_TYPES, Entitlement, Grant


def test_every_resource_type_is_registered_once():
    assert list(TYPES) == list(RESOURCE_TYPES)
    assert all(name == t.name for name, t in TYPES.items())
    kinds = [s.kind for t in TYPES.values() for s in t.streams]
    assert len(kinds) == len(set(kinds)) == len(STREAMS)
    names = [a.name for t in TYPES.values() for a in t.actions]
    assert len(names) == len(set(names)) == len(ACTIONS)
    assert set(DELETABLE) == {"user", "group"}


def test_entitlements_are_provisioned_or_refused_with_a_reason():
    for rtype, (slug, _principals) in ENTITLEMENT_SLUGS.items():
        t = TYPES[rtype]
        ent = Entitlement(rtype, "x1:r1" if rtype == "resourceset-binding" else "x1", slug)
        for kind, executor in (("grant", t.grant), ("revoke", t.revoke)):
            if executor is None:
                assert ent.id in t.not_provisionable(kind, ent)
    # Types without entitlements provision nothing.
    assert all(TYPES[r].grant is None and TYPES[r].revoke is None for r in RESOURCE_TYPES if r not in ENTITLEMENT_SLUGS)


def test_a_binding_member_also_holds_the_bound_custom_role():
    member = Grant("resourceset-binding:iam1:cr1:member", "group", "00g1")
    assert TYPES["resourceset-binding"].implied_grants(member) == [Grant("custom-role:cr1:assigned", "group", "00g1")]
    assert TYPES["group"].implied_grants(Grant("group:00g1:member", "user", "00u1")) == []
