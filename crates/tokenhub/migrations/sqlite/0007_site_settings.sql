-- Operator settings changed at runtime from the admin panel (sign-up mode, trial credit,
-- the chat demo's anonymous trial). A missing row means "the configuration file's value".
CREATE TABLE site_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
