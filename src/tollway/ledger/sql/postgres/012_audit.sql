-- The admin audit log (docs/admin.md, "Audit log"): one row per admin action or refused admin attempt,
-- who did it (an admin key fingerprint or an OpenID Connect subject and email), when (ISO-8601 UTC text,
-- so text order is time order), what (action, target, a JSON diff with secrets removed) and from where.
CREATE TABLE IF NOT EXISTS admin_audit (
    id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    diff TEXT NOT NULL DEFAULT '{}',
    client TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS admin_audit_ts ON admin_audit (ts);
