-- Usage history at scale (issue 13): rollups of usage records, written by the ledger
-- writer in the same transaction as the records (so Σ rollup cost = Σ record cost in every
-- table), read by every summary, chart and billing endpoint. Raw records may then be
-- purged after their retention; rollups are kept.
--
-- `hour`, `day`: Unix ms at the start of the UTC hour or day. `channel_id` 0: no channel
-- (refused before routing). `errors`: requests with status 400 or above. `latency_NN`: a
-- histogram of latency_ms, the mergeable sketch percentiles are read from; bucket NN holds
-- [bound NN-1, bound NN) of
-- 50, 100, 150, 250, 400, 600, 1000, 1500, 2500, 4000, 6000, 10000, 15000, 25000, 60000 ms
-- (latency_15: 60 s and more). The bounds are `LATENCY_BOUNDS_MS` in store/rollups.rs.

-- Per owner and hour: what user, key and billing views read.
CREATE TABLE usage_rollups (
    hour INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    channel_id INTEGER NOT NULL,
    status INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    explicit_cached_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    latency_00 INTEGER NOT NULL DEFAULT 0,
    latency_01 INTEGER NOT NULL DEFAULT 0,
    latency_02 INTEGER NOT NULL DEFAULT 0,
    latency_03 INTEGER NOT NULL DEFAULT 0,
    latency_04 INTEGER NOT NULL DEFAULT 0,
    latency_05 INTEGER NOT NULL DEFAULT 0,
    latency_06 INTEGER NOT NULL DEFAULT 0,
    latency_07 INTEGER NOT NULL DEFAULT 0,
    latency_08 INTEGER NOT NULL DEFAULT 0,
    latency_09 INTEGER NOT NULL DEFAULT 0,
    latency_10 INTEGER NOT NULL DEFAULT 0,
    latency_11 INTEGER NOT NULL DEFAULT 0,
    latency_12 INTEGER NOT NULL DEFAULT 0,
    latency_13 INTEGER NOT NULL DEFAULT 0,
    latency_14 INTEGER NOT NULL DEFAULT 0,
    latency_15 INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX usage_rollups_owner
    ON usage_rollups (user_id, hour, key_id, model, channel_id, status);
CREATE INDEX usage_rollups_key ON usage_rollups (key_id, hour);

-- Everyone together per hour: the admin summaries by day or model, whatever the number of
-- users and keys.
CREATE TABLE usage_rollups_global (
    hour INTEGER NOT NULL,
    model TEXT NOT NULL,
    channel_id INTEGER NOT NULL,
    status INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    explicit_cached_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    latency_00 INTEGER NOT NULL DEFAULT 0,
    latency_01 INTEGER NOT NULL DEFAULT 0,
    latency_02 INTEGER NOT NULL DEFAULT 0,
    latency_03 INTEGER NOT NULL DEFAULT 0,
    latency_04 INTEGER NOT NULL DEFAULT 0,
    latency_05 INTEGER NOT NULL DEFAULT 0,
    latency_06 INTEGER NOT NULL DEFAULT 0,
    latency_07 INTEGER NOT NULL DEFAULT 0,
    latency_08 INTEGER NOT NULL DEFAULT 0,
    latency_09 INTEGER NOT NULL DEFAULT 0,
    latency_10 INTEGER NOT NULL DEFAULT 0,
    latency_11 INTEGER NOT NULL DEFAULT 0,
    latency_12 INTEGER NOT NULL DEFAULT 0,
    latency_13 INTEGER NOT NULL DEFAULT 0,
    latency_14 INTEGER NOT NULL DEFAULT 0,
    latency_15 INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX usage_rollups_global_hour
    ON usage_rollups_global (hour, model, channel_id, status);

-- Per key and day: the admin summaries by user or key over whole days (one row per key
-- in use per day, not one per key, model, channel and status per hour).
CREATE TABLE usage_rollups_daily (
    day INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    explicit_cached_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    latency_00 INTEGER NOT NULL DEFAULT 0,
    latency_01 INTEGER NOT NULL DEFAULT 0,
    latency_02 INTEGER NOT NULL DEFAULT 0,
    latency_03 INTEGER NOT NULL DEFAULT 0,
    latency_04 INTEGER NOT NULL DEFAULT 0,
    latency_05 INTEGER NOT NULL DEFAULT 0,
    latency_06 INTEGER NOT NULL DEFAULT 0,
    latency_07 INTEGER NOT NULL DEFAULT 0,
    latency_08 INTEGER NOT NULL DEFAULT 0,
    latency_09 INTEGER NOT NULL DEFAULT 0,
    latency_10 INTEGER NOT NULL DEFAULT 0,
    latency_11 INTEGER NOT NULL DEFAULT 0,
    latency_12 INTEGER NOT NULL DEFAULT 0,
    latency_13 INTEGER NOT NULL DEFAULT 0,
    latency_14 INTEGER NOT NULL DEFAULT 0,
    latency_15 INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX usage_rollups_daily_day
    ON usage_rollups_daily (day, user_id, key_id);

-- Backfill from the records already stored.
INSERT INTO usage_rollups (hour, user_id, key_id, model, channel_id, status, requests, errors, prompt_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens, explicit_cached_tokens, completion_tokens, cost_nano, latency_00, latency_01, latency_02, latency_03, latency_04, latency_05, latency_06, latency_07, latency_08, latency_09, latency_10, latency_11, latency_12, latency_13, latency_14, latency_15)
SELECT (created_at / 3600000) * 3600000, user_id, key_id, model, COALESCE(channel_id, 0), status,
       COUNT(*),
       SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
       SUM(prompt_tokens),
       SUM(cached_tokens),
       SUM(cache_write_tokens),
       SUM(cache_write_1h_tokens),
       SUM(explicit_cached_tokens),
       SUM(completion_tokens),
       SUM(cost_nano),
       SUM(CASE WHEN latency_ms < 50 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 50 AND latency_ms < 100 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 100 AND latency_ms < 150 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 150 AND latency_ms < 250 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 250 AND latency_ms < 400 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 400 AND latency_ms < 600 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 600 AND latency_ms < 1000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 1000 AND latency_ms < 1500 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 1500 AND latency_ms < 2500 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 2500 AND latency_ms < 4000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 4000 AND latency_ms < 6000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 6000 AND latency_ms < 10000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 10000 AND latency_ms < 15000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 15000 AND latency_ms < 25000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 25000 AND latency_ms < 60000 THEN 1 ELSE 0 END),
       SUM(CASE WHEN latency_ms >= 60000 THEN 1 ELSE 0 END)
FROM usage_records
GROUP BY (created_at / 3600000) * 3600000, user_id, key_id, model, COALESCE(channel_id, 0), status;

INSERT INTO usage_rollups_global (hour, model, channel_id, status, requests, errors, prompt_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens, explicit_cached_tokens, completion_tokens, cost_nano, latency_00, latency_01, latency_02, latency_03, latency_04, latency_05, latency_06, latency_07, latency_08, latency_09, latency_10, latency_11, latency_12, latency_13, latency_14, latency_15)
SELECT hour, model, channel_id, status, SUM(requests), SUM(errors), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(explicit_cached_tokens), SUM(completion_tokens), SUM(cost_nano), SUM(latency_00), SUM(latency_01), SUM(latency_02), SUM(latency_03), SUM(latency_04), SUM(latency_05), SUM(latency_06), SUM(latency_07), SUM(latency_08), SUM(latency_09), SUM(latency_10), SUM(latency_11), SUM(latency_12), SUM(latency_13), SUM(latency_14), SUM(latency_15)
FROM usage_rollups
GROUP BY hour, model, channel_id, status;

INSERT INTO usage_rollups_daily (day, user_id, key_id, requests, errors, prompt_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens, explicit_cached_tokens, completion_tokens, cost_nano, latency_00, latency_01, latency_02, latency_03, latency_04, latency_05, latency_06, latency_07, latency_08, latency_09, latency_10, latency_11, latency_12, latency_13, latency_14, latency_15)
SELECT (hour / 86400000) * 86400000, user_id, key_id, SUM(requests), SUM(errors), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(explicit_cached_tokens), SUM(completion_tokens), SUM(cost_nano), SUM(latency_00), SUM(latency_01), SUM(latency_02), SUM(latency_03), SUM(latency_04), SUM(latency_05), SUM(latency_06), SUM(latency_07), SUM(latency_08), SUM(latency_09), SUM(latency_10), SUM(latency_11), SUM(latency_12), SUM(latency_13), SUM(latency_14), SUM(latency_15)
FROM usage_rollups
GROUP BY (hour / 86400000) * 86400000, user_id, key_id;
