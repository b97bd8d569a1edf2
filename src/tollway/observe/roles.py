"""Who may do what on the admin side: three roles, and how an OpenID Connect account gets one.

- admin: everything (keys of every team, teams, budgets, config reload).
- team_admin: reads everything a viewer reads; writes only keys of its own teams (creating one in, moving
  one to or changing one of another team is refused), never teams, budgets or the config.
- viewer: reads only.

The holder of the admin key is an admin. An OpenID Connect account's role comes from one claim (`groups`
by default, a list or a single string) matched against `admin.oidc.roles`: the highest role any of its
values grants wins; an account none of whose values is mapped gets no role and is refused at login.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from tollway.core.errors import GatewayError
from tollway.observe.admin_ui.settings import RoleMapping

ADMIN, TEAM_ADMIN, VIEWER = "admin", "team_admin", "viewer"
ADMIN_ONLY_PREFIXES = ("team.", "budget.", "config.", "admin.")  # actions a team admin may not take


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated admin caller. `kind` is "admin_key" or "oidc"; `subject` is the key's fingerprint
    or the OIDC `sub`; `teams` matter for a team admin only; `csrf` is set for a browser session."""

    kind: str
    subject: str
    role: str
    email: str = ""
    name: str = ""
    teams: frozenset[str] = frozenset()
    csrf: str = ""
    via_cookie: bool = field(default=False, compare=False)

    def refusal(self, action: str, teams: list[str]) -> GatewayError | None:
        """Why this caller may not take a write `action` touching keys of `teams` (None: it may)."""
        if self.role == ADMIN:
            return None
        if self.role == VIEWER:
            return forbidden(f"the viewer role is read-only: {action} needs the admin or team_admin role")
        if action.startswith(ADMIN_ONLY_PREFIXES):
            return forbidden(f"the team_admin role may not take {action}: it needs the admin role")
        outside = sorted({t or "(no team)" for t in teams if t not in self.teams})
        if outside:
            mine = ", ".join(sorted(self.teams)) or "none"
            return forbidden(f"the team_admin role of teams {mine} may not change keys of team "
                             f"{', '.join(outside)}")
        return None

    def public(self) -> dict:
        """What the UI is told about its user (GET /admin/ui/api/me)."""
        return {"kind": self.kind, "subject": self.subject, "email": self.email, "name": self.name,
                "role": self.role, "teams": sorted(self.teams), "csrf": self.csrf}


def admin_key_principal(admin_key: str) -> Principal:
    """The admin key's holder, named by a fingerprint of the key (worthless to an attacker, and it
    changes when the key is rotated, so the audit shows which key acted)."""
    fingerprint = hashlib.sha256(b"tollway-admin-key-id\0" + admin_key.encode()).hexdigest()[:12]
    return Principal("admin_key", f"admin-key:{fingerprint}", ADMIN)


def role_of(claims: dict, claim: str, mapping: RoleMapping) -> tuple[str, frozenset[str]] | None:
    """(role, teams) the claims grant, or None when none of the claim's values is mapped."""
    raw = claims.get(claim)
    values = {raw} if isinstance(raw, str) else {str(v) for v in raw} if isinstance(raw, list) else set()
    if values & set(mapping.admin):
        return ADMIN, frozenset()
    teams = frozenset(team for team, groups in mapping.team_admin.items() if values & set(groups))
    if teams:
        return TEAM_ADMIN, teams
    if values & set(mapping.viewer):
        return VIEWER, frozenset()
    return None


def forbidden(message: str) -> GatewayError:
    return GatewayError(403, message, "permission_error", "admin_role_forbidden")
