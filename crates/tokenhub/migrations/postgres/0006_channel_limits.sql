-- Per-channel overrides of the global upstream timeouts (milliseconds; NULL = the global
-- default) and an optional cap on requests in flight. Several upstream keys of a channel
-- need no column: they are stored one per line in `channels.api_key`.
ALTER TABLE channels ADD COLUMN connect_timeout_ms BIGINT;
ALTER TABLE channels ADD COLUMN first_token_timeout_ms BIGINT;
ALTER TABLE channels ADD COLUMN idle_timeout_ms BIGINT;
ALTER TABLE channels ADD COLUMN total_timeout_ms BIGINT;
ALTER TABLE channels ADD COLUMN max_concurrency BIGINT;
