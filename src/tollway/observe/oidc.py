"""The OpenID Connect client of the admin side: sign-in by authorization code with PKCE, and bearer tokens.

authlib builds the authorization URL (S256 code challenge) and exchanges the code; joserfc (authlib's JOSE
library) checks every JWT: its signature against the provider's published keys (read from the discovery
document's jwks_uri, read again once when a token names a key not seen yet, so the provider may rotate its
keys), its issuer (exactly `admin.oidc.issuer`), its audience (the client id, or one of
`admin.oidc.audiences` for access tokens), its expiry and, at sign-in, the nonce. An opaque access token
is checked by the provider's introspection endpoint (it must be active and issued to this client or one
of the audiences) and its claims read from userinfo; the answer is kept a minute per token so an API
script does not cost the provider two calls per request. Any failure is an `OidcError`, which the admin side answers
with 401; its message says what was wrong, never the token.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tollway.observe.admin_ui.settings import OidcSettings

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
LEEWAY_S = 30
_USERINFO_TTL_S = 60.0
_USERINFO_CACHE_MAX = 1000
_KEYS_REFETCH_S = 30.0


class OidcError(Exception):
    """A token or sign-in the provider did not vouch for; the message names what was wrong."""


class OidcClient:
    def __init__(self, settings: OidcSettings, client_secret: str | None, timeout_s: float = 10.0) -> None:
        self.settings = settings
        self._secret = client_secret
        self._timeout_s = timeout_s
        self._http = httpx2.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._keys_read_at = 0.0
        self._userinfo: dict[str, tuple[float, dict]] = {}

    async def close(self) -> None:
        await self._http.aclose()

    async def authorization_url(self, state: str, nonce: str, verifier: str, redirect: str) -> str:
        meta = await self.metadata()
        async with self._oauth(redirect) as client:
            url, _ = client.create_authorization_url(meta["authorization_endpoint"], state=state, nonce=nonce,
                                                     code_verifier=verifier)
        return url

    async def sign_in(self, code: str, verifier: str, nonce: str, redirect: str) -> dict[str, Any]:
        """The claims of the account that signed in: the ID token's (checked, nonce included), with the
        userinfo endpoint's added when the role claim is not in the ID token."""
        meta = await self.metadata()
        try:
            async with self._oauth(redirect) as client:
                token = await client.fetch_token(meta["token_endpoint"], code=code, code_verifier=verifier,
                                                 grant_type="authorization_code")
        except Exception as exc:  # the network, or authlib's OAuthError with the provider's error code and text
            raise OidcError(f"the provider refused the sign-in code: {_short(exc)}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the provider's token answer holds no id_token (is the `openid` scope granted?)")
        claims = await self.verify_jwt(id_token, [self.settings.client_id])
        if claims.get("nonce") != nonce:
            raise OidcError("the ID token's nonce does not match this sign-in")
        if self.settings.role_claim not in claims and isinstance(token.get("access_token"), str):
            claims = {**await self.userinfo(token["access_token"]), **claims}
        return claims

    async def verify_bearer(self, token: str) -> dict[str, Any]:
        """Claims of a bearer token: a JWT (ID token or JWT access token) checked here, else an opaque
        access token checked by introspection and userinfo."""
        if token.count(".") == 2:
            claims = await self.verify_jwt(token, [self.settings.client_id, *self.settings.audiences])
            return claims
        return await self._opaque(token)

    async def verify_jwt(self, token: str, audiences: list[str]) -> dict[str, Any]:
        keys = await self._key_set()
        try:
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
        except JoseError as exc:
            if "key" not in str(exc).lower() or time.monotonic() - self._keys_read_at < _KEYS_REFETCH_S:
                raise OidcError(f"the token's signature does not verify ({exc.error})") from None
            keys = await self._key_set(refresh=True)  # the provider may have rotated its signing key
            try:
                decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            except JoseError as again:
                raise OidcError(f"the token's signature does not verify ({again.error})") from None
        except ValueError as exc:
            raise OidcError(f"not a valid JWT ({_short(exc)})") from None
        claims = dict(decoded.claims)
        check_claims(claims, self.settings.issuer, audiences, time.time())
        return claims

    async def _opaque(self, token: str) -> dict[str, Any]:
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._userinfo.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        found = await self._introspect(token)
        claims = {**await self.userinfo(token), "iss": found.get("iss", self.settings.issuer)}
        if claims.get("sub") != found.get("sub"):
            raise OidcError("the provider's userinfo and introspection name different subjects")
        if len(self._userinfo) >= _USERINFO_CACHE_MAX:
            self._userinfo.clear()
        self._userinfo[digest] = (time.monotonic() + _USERINFO_TTL_S, claims)
        return claims

    async def _introspect(self, token: str) -> dict[str, Any]:
        meta = await self.metadata()
        if not self._secret or "introspection_endpoint" not in meta:
            raise OidcError("the token is not a JWT, and opaque access tokens need the provider's introspection "
                            "endpoint and a client secret (admin.oidc.client_secret_env)")
        try:
            reply = await self._http.post(meta["introspection_endpoint"], data={"token": token},
                                          auth=(self.settings.client_id, self._secret))
            found = reply.json() if reply.status_code == 200 else {}
        except (httpx2.HTTPError, ValueError) as exc:
            raise OidcError(f"the provider's introspection endpoint failed: {_short(exc)}") from None
        if found.get("active") is not True:
            raise OidcError("the provider says the access token is not active (expired, revoked or unknown)")
        aud = found.get("aud")
        audiences = {found.get("client_id"), *([aud] if isinstance(aud, str) else aud or [])}
        if not audiences & {self.settings.client_id, *self.settings.audiences}:
            raise OidcError("the access token was issued to another client, not this gateway")
        return found

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        meta = await self.metadata()
        if "userinfo_endpoint" not in meta:
            raise OidcError("the token is not a JWT and the provider has no userinfo endpoint to check it")
        try:
            reply = await self._http.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"})
        except httpx2.HTTPError as exc:
            raise OidcError(f"the provider's userinfo endpoint is unreachable: {_short(exc)}") from None
        if reply.status_code != 200:
            raise OidcError(f"the provider does not accept the access token (userinfo answered {reply.status_code})")
        return reply.json()

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                reply = await self._http.get(url)
                reply.raise_for_status()
                meta = reply.json()
            except (httpx2.HTTPError, ValueError) as exc:
                raise OidcError(f"cannot read the provider's discovery document {url}: {_short(exc)}") from None
            if meta.get("issuer") != self.settings.issuer:
                raise OidcError(f"the discovery document names issuer {meta.get('issuer')!r}, not the configured "
                                f"{self.settings.issuer!r}")
            self._metadata = meta
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            try:
                reply = await self._http.get(meta["jwks_uri"])
                reply.raise_for_status()
                self._keys = KeySet.import_key_set(reply.json())
            except (httpx2.HTTPError, ValueError, KeyError, JoseError) as exc:
                raise OidcError(f"cannot read the provider's signing keys: {_short(exc)}") from None
            self._keys_read_at = time.monotonic()
        return self._keys

    def _oauth(self, redirect: str) -> AsyncOAuth2Client:
        method = "client_secret_basic" if self._secret else "none"
        return AsyncOAuth2Client(client_id=self.settings.client_id, client_secret=self._secret,
                                 token_endpoint_auth_method=method, scope=" ".join(self.settings.scopes),
                                 redirect_uri=redirect, code_challenge_method="S256",
                                 timeout=self._timeout_s)


def check_claims(claims: dict[str, Any], issuer: str, audiences: list[str], now: float) -> None:
    """Raise OidcError unless the token is from `issuer`, for one of `audiences`, and in its lifetime."""
    if claims.get("iss") != issuer:
        raise OidcError(f"the token's issuer {claims.get('iss')!r} is not the configured {issuer!r}")
    aud = claims.get("aud")
    given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not set(given) & set(audiences):
        raise OidcError(f"the token's audience {given} is not this gateway's ({', '.join(audiences)})")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        raise OidcError("the token has no expiry (exp)")
    if exp + LEEWAY_S < now:
        raise OidcError("the token has expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and nbf - LEEWAY_S > now:
        raise OidcError("the token is not valid yet (nbf)")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise OidcError("the token names no subject (sub)")


def _short(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
