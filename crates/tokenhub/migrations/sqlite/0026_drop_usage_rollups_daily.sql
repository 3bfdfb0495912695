-- The per key and day rollup (0018) has been read by no summary since the running totals
-- per key (0025) answer summaries by key, and the backfills of 0022 and 0025 that read it
-- have run. Every batch still paid an upsert into it: it goes.
DROP TABLE usage_rollups_daily;
