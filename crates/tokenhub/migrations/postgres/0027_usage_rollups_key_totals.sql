-- Usage history at scale (issue 13): every key's totals of all time, one row per key ever
-- used. The admin summary by key lists its keys from here instead of walking the running
-- totals' index key by key (half of that summary's time on PostgreSQL: 10,000 recursive
-- steps), and reads a range that runs to now from here too, leaving one seek per key for
-- the range's start. Written by the ledger writer in the same transaction as the
-- records, like the other rollups, so Σ cost here = Σ record cost. Columns as in 0018.
CREATE TABLE usage_rollups_key_totals (
    key_id BIGINT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0,
    explicit_cached_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost_nano BIGINT NOT NULL DEFAULT 0,
    latency_00 BIGINT NOT NULL DEFAULT 0,
    latency_01 BIGINT NOT NULL DEFAULT 0,
    latency_02 BIGINT NOT NULL DEFAULT 0,
    latency_03 BIGINT NOT NULL DEFAULT 0,
    latency_04 BIGINT NOT NULL DEFAULT 0,
    latency_05 BIGINT NOT NULL DEFAULT 0,
    latency_06 BIGINT NOT NULL DEFAULT 0,
    latency_07 BIGINT NOT NULL DEFAULT 0,
    latency_08 BIGINT NOT NULL DEFAULT 0,
    latency_09 BIGINT NOT NULL DEFAULT 0,
    latency_10 BIGINT NOT NULL DEFAULT 0,
    latency_11 BIGINT NOT NULL DEFAULT 0,
    latency_12 BIGINT NOT NULL DEFAULT 0,
    latency_13 BIGINT NOT NULL DEFAULT 0,
    latency_14 BIGINT NOT NULL DEFAULT 0,
    latency_15 BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX usage_rollups_key_totals_key ON usage_rollups_key_totals (key_id);

-- Backfill from the running totals (0025): each key's last row holds all of its records.
INSERT INTO usage_rollups_key_totals (key_id, requests, errors, prompt_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens, explicit_cached_tokens, completion_tokens, cost_nano, latency_00, latency_01, latency_02, latency_03, latency_04, latency_05, latency_06, latency_07, latency_08, latency_09, latency_10, latency_11, latency_12, latency_13, latency_14, latency_15)
SELECT running.key_id, running.requests, running.errors, running.prompt_tokens, running.cached_tokens, running.cache_write_tokens, running.cache_write_1h_tokens, running.explicit_cached_tokens, running.completion_tokens, running.cost_nano, running.latency_00, running.latency_01, running.latency_02, running.latency_03, running.latency_04, running.latency_05, running.latency_06, running.latency_07, running.latency_08, running.latency_09, running.latency_10, running.latency_11, running.latency_12, running.latency_13, running.latency_14, running.latency_15
FROM usage_rollups_key_running AS running
WHERE running.day = (SELECT MAX(later.day) FROM usage_rollups_key_running AS later
                     WHERE later.key_id = running.key_id);
