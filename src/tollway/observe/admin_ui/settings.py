"""Config section `admin:`: single sign-on for the admin UI and API, roles, and the UI's sessions.

    admin:
      session_ttl_s: 28800                 # a UI session lasts 8 hours, then the user signs in again
      oidc:
        issuer: https://idp.example.com    # its /.well-known/openid-configuration is read at first use
        client_id: tollway-admin
        client_secret_env: TOLLWAY_OIDC_CLIENT_SECRET   # a public client (PKCE only) leaves it out
        redirect: https://gateway.example.com/admin/ui/callback
        role_claim: groups
        roles:
          admin: [platform-admins]
          viewer: [finance]
          team_admin: {search: [search-leads]}

See docs/admin.md. Secrets are named (an env var), never written here.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from tollway.core.config_base import Strict


class RoleMapping(Strict):
    admin: list[str] = Field(default_factory=list, description="claim values that make an admin")
    viewer: list[str] = Field(default_factory=list, description="claim values that make a read-only viewer")
    team_admin: dict[str, list[str]] = Field(default_factory=dict,
                                             description="team name -> claim values that make an admin of that team")


class OidcSettings(Strict):
    issuer: str = Field(description="the OpenID provider's issuer URL, exactly as its tokens' `iss`")
    client_id: str
    client_secret_env: str | None = Field(None, description="env var holding the client secret (none: a public client)")
    redirect: str = Field("/admin/ui/callback", description="this gateway's callback URL as registered at the "
                          "provider: https://<gateway>/admin/ui/callback, or a path resolved against the URL the "
                          "browser used")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    role_claim: str = Field("groups", description="the ID token or userinfo claim the roles are read from")
    roles: RoleMapping = RoleMapping()
    audiences: list[str] = Field(default_factory=list, description="audiences accepted on bearer JWT access "
                                 "tokens besides client_id")

    @model_validator(mode="after")
    def _check(self) -> "OidcSettings":
        if not self.issuer.startswith(("https://", "http://")):
            raise ValueError(f"issuer {self.issuer!r} must be an http(s) URL")
        if not self.redirect.startswith(("https://", "http://", "/")):
            raise ValueError(f"redirect {self.redirect!r} must be an http(s) URL or a path like /admin/ui/callback")
        if "openid" not in self.scopes:
            raise ValueError("scopes must include openid")
        if not (self.roles.admin or self.roles.viewer or self.roles.team_admin):
            raise ValueError("roles: map at least one claim value to admin, team_admin or viewer, "
                             "e.g. roles: {admin: [platform-admins]}")
        return self


class AdminSettings(Strict):
    oidc: OidcSettings | None = None
    session_ttl_s: int = Field(8 * 3600, ge=60, le=7 * 86400, description="how long a UI sign-in lasts")
    session_secret_env: str | None = Field(None, description="env var holding the key UI session cookies are "
                                           "signed with (default: derived from the admin key and client secret)")
