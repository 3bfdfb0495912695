-- Optional email verification at sign-up (#17). `verification_pending_since` is set on an
-- account that signed up while verification was required and cleared when it confirms
-- its address; existing accounts (NULL) are unaffected. Only each link's SHA-256 is kept.
ALTER TABLE users ADD COLUMN verification_pending_since INTEGER;
CREATE TABLE email_verifications (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX email_verifications_user ON email_verifications (user_id, created_at);
CREATE INDEX email_verifications_expiry ON email_verifications (expires_at);
CREATE INDEX password_resets_expiry ON password_resets (expires_at);
