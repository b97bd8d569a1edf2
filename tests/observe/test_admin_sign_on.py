"""Single sign-on and roles on the admin API, against a real OpenID provider (npm's oidc-provider) and a
real gateway: real ID and access tokens pass with the role their groups map to; forged, expired,
wrong-audience and wrong-issuer tokens get 401; a viewer's write and a team admin's write to another
team get 403 naming the role; and every decision is in the audit log, which holds no secret."""

from __future__ import annotations

import os
import subprocess

import httpx
import orjson
import pytest
from joserfc.jwk import RSAKey

from tests.accounting.support import ADMIN_KEY, ENV, budget_config, start_gateway
from tests.fixtures.oidc import CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_SECRET
from tests.gateway.support import PROVIDER_KEYS
from tests.observe.support import audit_rows
from tests.processes import TOLLWAY, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def signed_on(emulator, oidc_provider, tmp_path):
    """A gateway with the admin key and single sign-on, and its provider (started for its callback URL)."""
    from contextlib import ExitStack

    provider = oidc_provider()
    config = budget_config(emulator, admin=provider.gateway_section())
    with ExitStack() as stack:
        gw = start_gateway(stack, tmp_path, config, env={"TOLLWAY_OIDC_SECRET": CLIENT_SECRET})
        provider.start(f"{gw.url}/admin/ui/callback")
        yield gw, provider


def _api(gw, token: str) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {token}"}, timeout=15)


def _error(reply: httpx.Response) -> tuple[int, str, str]:
    body = reply.json()["error"]
    return reply.status_code, body["code"], body["message"]


def test_real_tokens_carry_roles_and_bad_tokens_get_401(signed_on, tmp_path):
    gw, provider = signed_on
    alice, vera, tom = (provider.sign_in(name) for name in ("alice", "vera", "tom"))

    # An admin's ID token and (opaque) access token both work; the admin key still does.
    for token in (alice["id_token"], alice["access_token"], ADMIN_KEY):
        assert _api(gw, token).get("/admin/keys").status_code == 200
    made = _api(gw, alice["id_token"]).post("/admin/keys", json={"name": "search-bot", "team": "search"})
    assert made.status_code == 201, made.text
    other = _api(gw, alice["access_token"]).post("/admin/keys", json={"name": "ads-bot", "team": "ads"}).json()

    # A viewer reads, and every write is refused naming the role.
    viewer = _api(gw, vera["id_token"])
    assert viewer.get("/admin/keys").status_code == 200
    status, code, message = _error(viewer.post("/admin/keys", json={"name": "sneaky"}))
    assert (status, code) == (403, "admin_role_forbidden") and "viewer" in message
    assert _error(viewer.post(f"/admin/keys/{made.json()['id']}/revoke"))[0] == 403
    assert _error(viewer.post("/admin/reload"))[0] == 403
    assert viewer.get("/admin/ui/api/audit").status_code == 200, "the UI's read views take bearer tokens too"
    bad_query = viewer.get("/admin/ui/api/requests", params={"since": "yesterday"})
    assert (bad_query.status_code, bad_query.json()["error"]["param"]) == (400, "since")
    assert viewer.get("/admin/ui/api/spend", params={"by": "planet"}).json()["error"]["param"] == "by"

    # A team admin writes keys of its own team only.
    lead = _api(gw, tom["access_token"])
    assert lead.post("/admin/keys", json={"name": "search-2", "team": "search"}).status_code == 201
    status, code, message = _error(lead.post("/admin/keys", json={"name": "ads-2", "team": "ads"}))
    assert (status, code) == (403, "admin_role_forbidden") and "team_admin" in message and "ads" in message
    assert _error(lead.post(f"/admin/keys/{other['id']}/revoke"))[0] == 403
    assert _error(lead.patch(f"/admin/keys/{made.json()['id']}", json={"team": "ads"}))[0] == 403, "no moving out"
    assert lead.post(f"/admin/keys/{made.json()['id']}/rotate", json={"grace": "1h"}).status_code == 200
    assert _error(lead.post("/admin/reload"))[0] == 403

    # An account whose groups map to no role is refused (403), as is everything the provider did not vouch for.
    nobody = provider.sign_in("nobody")
    assert _error(_api(gw, nobody["id_token"]).get("/admin/keys"))[:2] == (403, "admin_role_forbidden")
    forged_key = RSAKey.generate_key(2048, parameters={"kid": provider.key.kid}, private=True)
    other_app = provider.sign_in("alice", OTHER_CLIENT_ID, OTHER_SECRET)
    bad = {
        "forged": provider.mint(key=forged_key),
        "expired": provider.mint(iat=1_700_000_000, exp=1_700_000_600),
        "wrong audience (minted)": provider.mint(aud="someone-else"),
        "wrong audience (real, other client)": other_app["id_token"],
        "other client's access token": other_app["access_token"],
        "wrong issuer": provider.mint(iss="http://127.0.0.1:1"),
        "no expiry": provider.mint(exp=None),
        "garbage": "not-a-token",
        "tampered": alice["id_token"][:-4] + ("AAAA" if not alice["id_token"].endswith("AAAA") else "BBBB"),
    }
    for what, token in bad.items():
        status, code, message = _error(_api(gw, token).get("/admin/keys"))
        assert status == 401, f"{what}: {status} {message}"
        assert code in ("invalid_admin_token", "invalid_admin_key"), what
        assert token not in message
    assert "expired" in _error(_api(gw, bad["expired"]).get("/admin/keys"))[2]
    assert "audience" in _error(_api(gw, bad["wrong audience (minted)"]).get("/admin/keys"))[2]
    assert "issuer" in _error(_api(gw, bad["wrong issuer"]).get("/admin/keys"))[2]

    # The audit log has each write and refusal, who did it and from where, and no secret at all.
    rows = audit_rows(gw.ledger)
    actions = [(r["action"], r["outcome"], r["email"]) for r in rows]
    assert ("key.created", "ok", "alice@example.com") in actions
    assert ("key.created", "ok", "tom@example.com") in actions
    assert ("key.rotated", "ok", "tom@example.com") in actions
    assert ("key.created", "refused", "vera@example.com") in actions
    assert ("key.created", "refused", "tom@example.com") in actions
    assert ("config.reloaded", "refused", "vera@example.com") in actions
    assert sum(1 for r in rows if r["action"] == "admin.refused") >= len(bad)
    assert all(r["client"].startswith("127.0.0.1") for r in rows)
    created = [r["diff"] for r in rows if r["action"] == "key.created" and r["email"] == "alice@example.com"]
    assert {"from": None, "to": "search-bot"} in [d["name"] for d in created]
    assert all(d["id"]["from"] is None and d["id"]["to"] for d in created)
    secrets = [ADMIN_KEY, CLIENT_SECRET, OTHER_SECRET, made.json()["secret"], other["secret"],
               *PROVIDER_KEYS.values(), *(t for s in (alice, vera, tom, nobody, other_app)
                                          for t in (s["id_token"], s["access_token"])), *bad.values()]
    _assert_no_secret(gw.ledger, secrets)
    log = gw.log_text()
    assert all(secret not in log for secret in secrets), "a secret is in the gateway's log"

    # `tollway audit admin` reads the same log, with filters.
    listed = subprocess.run([*TOLLWAY, "audit", "admin", "--ledger", str(gw.ledger), "--action", "key.",
                             "--actor", "tom@example.com", "--json"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    entries = orjson.loads(listed.stdout)
    assert entries and {e["email"] for e in entries} == {"tom@example.com"}
    assert {e["action"] for e in entries} == {"key.created", "key.rotated", "key.revoked", "key.changed"}
    text = subprocess.run([*TOLLWAY, "audit", "admin", "--ledger", str(gw.ledger), "--since", "1h"],
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "alice@example.com" in text.stdout and "REFUSED" in text.stdout
    bad_since = subprocess.run([*TOLLWAY, "audit", "admin", "--ledger", str(gw.ledger), "--since", "yesterday"],
                               capture_output=True, text=True, timeout=60)
    assert bad_since.returncode == 2 and "--since" in bad_since.stderr


def _assert_no_secret(ledger, secrets: list[str]) -> None:
    raw = ledger.read_bytes()
    for suffix in ("-wal",):
        extra = ledger.with_name(ledger.name + suffix)
        if extra.exists():
            raw += extra.read_bytes()
    for secret in secrets:
        assert secret.encode() not in raw, f"a secret of {len(secret)} characters is in the ledger's database"
    for row in audit_rows(ledger):
        text = orjson.dumps(row).decode()
        for secret in secrets:
            assert secret not in text


def test_a_config_without_admin_key_or_sign_on_keeps_the_admin_side_off(emulator, gateway_factory):
    config = budget_config(emulator)
    config["server"].pop("admin_key_env")
    gw = gateway_factory(config, env=ENV)
    assert httpx.get(f"{gw.url}/admin/keys").status_code == 404
    assert httpx.get(f"{gw.url}/admin/ui").status_code == 404


@pytest.mark.parametrize(("admin", "env", "says"), [
    ({"oidc": {"issuer": "http://127.0.0.1:9", "client_id": "c", "roles": {"admin": ["ops"]}}}, {},
     "admin.session_secret_env: a public OpenID Connect client with no admin key needs a secret"),
    ({"oidc": {"issuer": "http://127.0.0.1:9", "client_id": "c", "client_secret_env": "NOT_SET_OIDC",
               "roles": {"admin": ["ops"]}}}, {}, "admin.oidc.client_secret_env: environment variable NOT_SET_OIDC"),
    ({"oidc": {"issuer": "idp.example.com", "client_id": "c", "roles": {"admin": ["ops"]}}}, {},
     "admin.oidc: issuer 'idp.example.com' must be an http(s) URL"),
    ({"oidc": {"issuer": "http://127.0.0.1:9", "client_id": "c", "roles": {}}}, {}, "map at least one claim value"),
])
def test_a_bad_sign_on_config_fails_at_start_naming_it(tmp_path, admin, env, says):
    import yaml

    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump({
        "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"d": {"provider": "p", "model": "m"}}, "route_groups": {"g": {"deployments": ["d"]}},
        "admin": admin}))
    result = subprocess.run([*TOLLWAY, "serve", "--config", str(config), "--port", str(free_port()),
                             "--ledger", str(tmp_path / "l.db")], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **env})
    assert result.returncode == 1, result.stderr
    assert says in result.stderr.replace("\n  ", " ")
