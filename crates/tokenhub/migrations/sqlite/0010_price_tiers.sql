-- Billing that matches each provider's invoice (issue 19).
-- Per model: the price of 1-hour cache writes (NULL = 2x input on Anthropic channels), of
-- explicit cache hits (NULL = the cache-read price; DashScope bills them apart from
-- implicit hits), and its price tiers (service tiers, UTC time windows) as JSON.
ALTER TABLE models ADD COLUMN cache_write_1h_price_nano INTEGER;
ALTER TABLE models ADD COLUMN explicit_cached_price_nano INTEGER;
ALTER TABLE models ADD COLUMN price_tiers TEXT NOT NULL DEFAULT '[]';

-- A usage record shows those token classes and which prices were applied. Existing rows
-- were billed at the standard prices.
ALTER TABLE usage_records ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN explicit_cached_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN price_tier TEXT NOT NULL DEFAULT 'standard';
