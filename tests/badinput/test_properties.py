"""Property-based tests (hypothesis) of the parsers that read outside input: ids, the e-mail domain
filter, Link headers, Okta bodies and error bodies, and the connector's mapping of Okta objects and pages. They raise only their documented error types,
and round-trip where that makes sense."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.connector import PageResult, StreamSpec, SyncOptions, handle_page
from worker.connector.options import InvalidOptions, normalize_domains
from worker.connector.pages import BadObject
from worker.connector.types import STREAMS, api_token, app, custom_role, group, resource_set, user
from worker.model import (
    ENTITLEMENT_SLUGS,
    Entitlement,
    InvalidId,
    check_grantable,
    parse_entitlement_id,
    parse_grant_id,
    parse_principal,
)
from worker.okta.client import parse_link_header
from worker.okta.errors import OktaError, error_from_response, parse_www_authenticate

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Anything JSON can hold, and some things it cannot.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20)
weird = json_values | st.binary(max_size=30) | st.tuples(st.integers())
# Text that looks like ids: the separators and types show up often.
id_text = st.lists(st.sampled_from(["group", "app", "role", "user", "custom-role", "resourceset-binding",
                                    "resource-set", "member", "access", "assigned", "bindings", "00u1", "", " ",
                                    "x", "\n"]) | st.text(max_size=8), max_size=7).map(":".join)
okta_id = st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-.", min_size=1,
                  max_size=20)


@FAST
@given(st.one_of(id_text, st.text(max_size=60), weird))
def test_id_parsers_raise_only_invalid_id(value):
    for parse in (parse_entitlement_id, parse_grant_id, parse_principal):
        try:
            parse(value)
        except InvalidId as exc:
            assert str(exc)


@FAST
@given(st.sampled_from(sorted(ENTITLEMENT_SLUGS)), okta_id, okta_id, st.sampled_from(["user", "group", "custom-role"]),
       okta_id)
def test_ids_round_trip(rtype, rid, rid2, ptype, pid):
    resource_id = f"{rid}:{rid2}" if rtype == "resourceset-binding" else rid
    ent = Entitlement(rtype, resource_id, ENTITLEMENT_SLUGS[rtype][0])
    assert parse_entitlement_id(ent.id) == ent
    assert parse_principal(f"{ptype}:{pid}") == (ptype, pid)
    try:
        check_grantable(ent, ptype)
    except InvalidId:
        return
    grant = parse_grant_id(f"{ent.id}:{ptype}:{pid}")
    assert (grant.entitlement_id, grant.principal_type, grant.principal_id) == (ent.id, ptype, pid)
    assert grant.id == f"{ent.id}:{ptype}:{pid}"


@FAST
@given(st.one_of(st.text(max_size=60), st.lists(st.text(max_size=20) | weird, max_size=5), weird))
def test_email_domain_filter_raises_only_invalid_options_and_is_idempotent(value):
    try:
        got = normalize_domains(value)
    except InvalidOptions as exc:
        assert "filter_email_domains" in str(exc)
        return
    except TypeError:  # not iterable (an int): the caller's bug, documented type is Iterable[str] | str | None
        assert not isinstance(value, (str, list, tuple, type(None)))
        return
    assert isinstance(got, tuple) and normalize_domains(got) == got
    assert normalize_domains(",".join(got)) == got


@FAST
@given(st.lists(st.text(max_size=80), max_size=4))
def test_link_header_parser_never_raises(values):
    links = parse_link_header(values)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in links.items())


@FAST
@given(st.dictionaries(st.sampled_from(["next", "self", "prev"]),
                       st.text(alphabet="abcdefghijklmnop0123456789/?=&:._-", min_size=1, max_size=40), min_size=1))
def test_link_header_round_trip(rels):
    lines = [f'<https://acme.okta.com/api/v1/users{url}>; rel="{rel}"' for rel, url in rels.items()]
    want = {rel: f"https://acme.okta.com/api/v1/users{url}" for rel, url in rels.items()}
    assert parse_link_header(lines) == want
    assert parse_link_header([", ".join(lines)]) == want


MAPPERS = [user.resource, group.resource, app.resource, custom_role.resource, resource_set.resource,
           api_token.resource]
ALL_OPTIONS = SyncOptions(sync_custom_roles=True, sync_secrets=True, filter_email_domains=("acme.com",))


@FAST
@given(json_values)
def test_okta_objects_and_pages_raise_only_bad_object(data):
    for to_resource in MAPPERS:
        try:
            to_resource(data)
        except BadObject as exc:
            assert str(exc)
    for kind in STREAMS:
        for body in (data, [data]):
            try:
                result = handle_page(StreamSpec(kind, "/x", "group:00g1"), body, ALL_OPTIONS)
            except BadObject as exc:  # a body that is not a page at all
                assert str(exc)
            else:
                assert isinstance(result, PageResult)


@FAST
@given(st.integers(min_value=100, max_value=599), st.one_of(st.binary(max_size=80), json_values.map(lambda v: json.dumps(v).encode())),
       st.dictionaries(st.sampled_from(["X-Okta-Request-Id", "WWW-Authenticate", "Retry-After",
                                        "X-Rate-Limit-Reset", "Date"]), st.text(max_size=40), max_size=3))
def test_error_bodies_always_give_an_okta_error(status, body, headers):
    err = error_from_response(status, headers, body, method="GET", url="https://acme.okta.com/api/v1/users")
    assert isinstance(err, OktaError) and str(err)
    parse_www_authenticate(headers.get("WWW-Authenticate"))
