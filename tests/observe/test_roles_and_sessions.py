"""Roles from claims, what each role may write, the signed session cookies and the token claim checks."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from tollway.observe.admin_ui.session import CookieSigner, signing_key
from tollway.observe.admin_ui.settings import OidcSettings, RoleMapping
from tollway.observe.oidc import OidcError, check_claims
from tollway.observe.roles import ADMIN, TEAM_ADMIN, VIEWER, Principal, admin_key_principal, role_of

MAPPING = RoleMapping(admin=["ops"], viewer=["finance"], team_admin={"search": ["search-leads"], "ads": ["ads-leads"]})


@pytest.mark.parametrize(("groups", "expected"), [
    (["ops", "finance"], (ADMIN, frozenset())),
    (["search-leads", "ads-leads", "finance"], (TEAM_ADMIN, frozenset({"search", "ads"}))),
    (["finance"], (VIEWER, frozenset())),
    ("ops", (ADMIN, frozenset())),
    (["marketing"], None),
    (None, None),
])
def test_the_highest_role_the_claim_grants_wins(groups, expected):
    assert role_of({"groups": groups}, "groups", MAPPING) == expected


def test_what_each_role_may_write():
    admin = Principal("oidc", "a", ADMIN)
    viewer = Principal("oidc", "v", VIEWER)
    lead = Principal("oidc", "t", TEAM_ADMIN, teams=frozenset({"search"}))
    assert admin.refusal("config.reloaded", []) is None
    refused = viewer.refusal("key.created", ["search"])
    assert refused is not None and refused.status == 403 and "viewer" in refused.message
    assert lead.refusal("key.created", ["search"]) is None
    outside = lead.refusal("key.changed", ["search", "ads"])
    assert outside is not None and "ads" in outside.message and "team_admin" in outside.message
    assert lead.refusal("key.created", [""]) is not None, "a key with no team is not the team admin's"
    assert lead.refusal("config.reloaded", []) is not None
    assert lead.refusal("team.changed", ["search"]) is not None


def test_the_admin_key_is_named_by_a_fingerprint_not_itself():
    principal = admin_key_principal("the-admin-key-123")
    assert principal.role == ADMIN and "the-admin-key-123" not in principal.subject
    assert principal.subject != admin_key_principal("another-key").subject


def test_a_session_cookie_is_refused_when_forged_repurposed_or_expired():
    signer = CookieSigner(b"k" * 32)
    value = signer.sign("session", {"s": "alice", "r": "admin"}, 60)
    assert signer.read("session", value)["s"] == "alice"
    assert signer.read("flow", value) is None, "a cookie of one purpose is not another's"
    assert CookieSigner(b"j" * 32).read("session", value) is None
    body, mac = value.split(".")
    tampered = body[:-2] + ("AA" if not body.endswith("AA") else "BB") + "." + mac
    assert signer.read("session", tampered) is None
    assert signer.read("session", signer.sign("session", {"s": "a"}, -1)) is None
    assert signer.read("session", "") is None and signer.read("session", "a.b.c") is None


def test_the_session_key_needs_something_secret():
    assert signing_key(None, None, None) is None
    assert signing_key(None, "admin", None) != signing_key(None, "admin", "client-secret")
    assert signing_key("explicit", "admin", None) == signing_key("explicit", None, "other")


def test_claims_are_checked_for_issuer_audience_lifetime_and_subject():
    now = time.time()
    good = {"iss": "https://idp", "aud": ["tollway", "x"], "exp": now + 60, "sub": "alice"}
    check_claims(good, "https://idp", ["tollway"], now)
    for change, word in [({"iss": "https://evil"}, "issuer"), ({"aud": "other"}, "audience"),
                         ({"exp": now - 3600}, "expired"), ({"exp": None}, "expiry"),
                         ({"nbf": now + 3600}, "not valid yet"), ({"sub": ""}, "subject")]:
        with pytest.raises(OidcError, match=word):
            check_claims({**good, **change}, "https://idp", ["tollway"], now)


def test_oidc_settings_need_a_role_mapping_and_the_openid_scope():
    base = {"issuer": "https://idp", "client_id": "c", "roles": {"admin": ["ops"]}}
    assert OidcSettings.model_validate(base).redirect == "/admin/ui/callback"
    with pytest.raises(ValidationError, match="map at least one"):
        OidcSettings.model_validate({**base, "roles": {}})
    with pytest.raises(ValidationError, match="openid"):
        OidcSettings.model_validate({**base, "scopes": ["email"]})
    with pytest.raises(ValidationError, match="issuer"):
        OidcSettings.model_validate({**base, "issuer": "idp.example.com"})
