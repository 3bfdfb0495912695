-- The change feed (issue 13): every mutation of users, keys, balances, models, channels or
-- fallbacks writes one row here in its own transaction; running gateways read the rows
-- after the last id they saw and apply each change alone, instead of rebuilding
-- everything on a revision bump. Rows older than an hour are pruned.
CREATE TABLE changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'key', 'user', 'balance' or 'catalog'.
    kind TEXT NOT NULL,
    -- The key's or user's id; 0 for 'catalog'.
    entity_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX changes_created_at ON changes (created_at);

-- What the configuration file last applied to the database: its entries are applied
-- again only when they change, so edits made in the admin panel survive restarts.
CREATE TABLE applied_config (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);
