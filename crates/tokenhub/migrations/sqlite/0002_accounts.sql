-- Accounts, sessions, limits, credits and the audit log (issue 7).
-- Money is nano-USD; times are Unix milliseconds; flags are 0/1 integers.

-- Per-user defaults that keys without their own limit inherit (NULL = no limit).
ALTER TABLE users ADD COLUMN rpm_limit INTEGER;
ALTER TABLE users ADD COLUMN tpm_limit INTEGER;

-- Per-key limits: allowed client IPs/CIDRs as a JSON array (NULL = any), RPM and TPM.
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
ALTER TABLE api_keys ADD COLUMN rpm_limit INTEGER;
ALTER TABLE api_keys ADD COLUMN tpm_limit INTEGER;

-- 1 while a model has no price set by the operator (e.g. imported from an upstream's
-- /models). Unpriced models are left out of the relay's catalogue: never billed at a
-- silent default.
ALTER TABLE models ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0;

-- Cookie sessions: only the SHA-256 of the token is stored.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Management API bearer tokens (th-admin-…): only the SHA-256 is stored.
CREATE TABLE admin_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL
);

-- Redemption codes: single use; only the SHA-256 of the code is stored.
CREATE TABLE redemption_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash TEXT NOT NULL UNIQUE,
    code_prefix TEXT NOT NULL,
    amount_nano INTEGER NOT NULL,
    batch TEXT NOT NULL DEFAULT '',
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    used_by INTEGER REFERENCES users(id),
    used_at INTEGER
);

-- Every admin action: who, what, when, before and after (JSON text).
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id INTEGER,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    before_json TEXT,
    after_json TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_log_time ON audit_log(created_at);

CREATE INDEX usage_records_time ON usage_records(created_at);
