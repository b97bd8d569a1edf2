"""The admin UI at /admin/ui and the admin side's access control: sign-in (admin key or OpenID Connect),
roles, CSRF-checked browser sessions and the audit log of every admin action (docs/admin.md)."""
