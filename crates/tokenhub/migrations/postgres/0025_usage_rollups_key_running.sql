-- Usage history at scale (issue 13): running totals per key, what the admin summary by
-- key with no other filter reads. A row (key_id, day) holds every record of the key
-- created before the end of that UTC day (`day`: Unix ms at its start), one row per key
-- per day the key was used. The totals of a range [from, to) of whole days are the key's
-- last row before `to` minus its last row before `from`: two rows per key whatever the
-- range, where the per-key daily table (0018) needed one per key and day of the range.
-- Written by the ledger writer in the same transaction as the records (store/rollups.rs:
-- a batch seeds a missing (key, day) row from the key's previous one, then adds its
-- totals to that row and every later one of the key), so a key's last row sums to Σ of
-- its record costs. Columns as in 0018.
CREATE TABLE usage_rollups_key_running (
    key_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
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
CREATE UNIQUE INDEX usage_rollups_key_running_key
    ON usage_rollups_key_running (key_id, day);

-- Backfill from the per-key daily rollups, which hold every record ever written (records
-- may have been purged since; the rollups never are): each day's sums run on per key.
INSERT INTO usage_rollups_key_running (key_id, day, user_id, requests, errors, prompt_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens, explicit_cached_tokens, completion_tokens, cost_nano, latency_00, latency_01, latency_02, latency_03, latency_04, latency_05, latency_06, latency_07, latency_08, latency_09, latency_10, latency_11, latency_12, latency_13, latency_14, latency_15)
SELECT key_id, day, MIN(user_id), SUM(SUM(requests)) OVER running, SUM(SUM(errors)) OVER running, SUM(SUM(prompt_tokens)) OVER running, SUM(SUM(cached_tokens)) OVER running, SUM(SUM(cache_write_tokens)) OVER running, SUM(SUM(cache_write_1h_tokens)) OVER running, SUM(SUM(explicit_cached_tokens)) OVER running, SUM(SUM(completion_tokens)) OVER running, SUM(SUM(cost_nano)) OVER running, SUM(SUM(latency_00)) OVER running, SUM(SUM(latency_01)) OVER running, SUM(SUM(latency_02)) OVER running, SUM(SUM(latency_03)) OVER running, SUM(SUM(latency_04)) OVER running, SUM(SUM(latency_05)) OVER running, SUM(SUM(latency_06)) OVER running, SUM(SUM(latency_07)) OVER running, SUM(SUM(latency_08)) OVER running, SUM(SUM(latency_09)) OVER running, SUM(SUM(latency_10)) OVER running, SUM(SUM(latency_11)) OVER running, SUM(SUM(latency_12)) OVER running, SUM(SUM(latency_13)) OVER running, SUM(SUM(latency_14)) OVER running, SUM(SUM(latency_15)) OVER running
FROM usage_rollups_daily
GROUP BY key_id, day
WINDOW running AS (PARTITION BY key_id ORDER BY day);
