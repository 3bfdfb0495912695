-- The bound on a record's cost (0008) becomes a CHECK constraint instead of a trigger,
-- as it has always been on PostgreSQL. A BEFORE INSERT trigger runs as a sub-program
-- with a frame of its own for every row inserted: about 7,000 instructions a record,
-- a fifth of SQLite's work in a ledger batch, where the CHECK costs about 1,400
-- (bench/RESULTS.md, addendum 27). SQLite cannot add a constraint to a table, so the
-- table is rebuilt: same columns in the same order, same ids, same indexes, and the
-- AUTOINCREMENT sequence carried over so that no id is ever handed out twice.
CREATE TABLE usage_records_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    channel_id INTEGER,
    prompt_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_nano INTEGER NOT NULL CONSTRAINT usage_records_cost_bounded
        CHECK (typeof(cost_nano) = 'integer' AND cost_nano BETWEEN 0 AND 1000000000000000),
    status INTEGER NOT NULL,
    error TEXT,
    stream INTEGER NOT NULL,
    estimated INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    ttft_ms INTEGER,
    created_at INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    explicit_cached_tokens INTEGER NOT NULL DEFAULT 0,
    price_tier TEXT NOT NULL DEFAULT 'standard'
);

INSERT INTO usage_records_rebuilt (id, request_id, user_id, key_id, model, channel_id,
    prompt_tokens, cached_tokens, completion_tokens, cost_nano, status, error, stream,
    estimated, latency_ms, ttft_ms, created_at, cache_write_tokens, cache_write_1h_tokens,
    explicit_cached_tokens, price_tier)
SELECT id, request_id, user_id, key_id, model, channel_id,
    prompt_tokens, cached_tokens, completion_tokens, cost_nano, status, error, stream,
    estimated, latency_ms, ttft_ms, created_at, cache_write_tokens, cache_write_1h_tokens,
    explicit_cached_tokens, price_tier
FROM usage_records ORDER BY id;

-- The old sequence may be past the largest id left (retention deletes records).
DELETE FROM sqlite_sequence WHERE name = 'usage_records_rebuilt';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'usage_records_rebuilt', MAX(seq, (SELECT COALESCE(MAX(id), 0) FROM usage_records_rebuilt))
FROM sqlite_sequence WHERE name = 'usage_records';

DROP TABLE usage_records;
ALTER TABLE usage_records_rebuilt RENAME TO usage_records;

CREATE INDEX usage_records_user_time ON usage_records(user_id, created_at);
CREATE INDEX usage_records_key_time ON usage_records(key_id, created_at);
CREATE INDEX usage_records_time ON usage_records(created_at);
