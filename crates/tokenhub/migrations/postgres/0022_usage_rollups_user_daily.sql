-- Usage history at scale (issue 13): per user and UTC day, what the admin summary by
-- user (the dashboard's "top users") and one user's daily chart read: one row per user
-- active that day, not one per key (`usage_rollups_daily`) or per key, model, channel and
-- status and hour (`usage_rollups`). Written by the ledger writer in the same transaction
-- as the records, like the tables of migration 0018, so Σ cost here = Σ record cost.
-- Columns as in 0018 (`day`: Unix ms at the start of the UTC day).
CREATE TABLE usage_rollups_user_daily (
    user_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
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
CREATE UNIQUE INDEX usage_rollups_user_daily_user
    ON usage_rollups_user_daily (user_id, day);
CREATE INDEX usage_rollups_user_daily_day ON usage_rollups_user_daily (day);

-- Backfill from the per-key daily rollups, which hold every record ever written (records
-- may have been purged since; the rollups never are).
INSERT INTO usage_rollups_user_daily (user_id, day, requests, errors, prompt_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens, explicit_cached_tokens, completion_tokens, cost_nano, latency_00, latency_01, latency_02, latency_03, latency_04, latency_05, latency_06, latency_07, latency_08, latency_09, latency_10, latency_11, latency_12, latency_13, latency_14, latency_15)
SELECT user_id, day, SUM(requests), SUM(errors), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(explicit_cached_tokens), SUM(completion_tokens), SUM(cost_nano), SUM(latency_00), SUM(latency_01), SUM(latency_02), SUM(latency_03), SUM(latency_04), SUM(latency_05), SUM(latency_06), SUM(latency_07), SUM(latency_08), SUM(latency_09), SUM(latency_10), SUM(latency_11), SUM(latency_12), SUM(latency_13), SUM(latency_14), SUM(latency_15)
FROM usage_rollups_daily
GROUP BY user_id, day;
