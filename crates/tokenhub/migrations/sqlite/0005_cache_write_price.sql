-- Prompt-cache writes have their own price (Anthropic bills a 5-minute cache write at
-- 1.25x input). NULL means "the input price", so existing models bill as before.
ALTER TABLE models ADD COLUMN cache_write_price_nano INTEGER;

-- A usage record shows the cache writes it was billed for, next to the cache reads.
ALTER TABLE usage_records ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;

-- The built-in catalogue used to seed one price for both input and output. Rows that
-- still hold exactly that seed (an operator never edited them) get the vendor's real
-- prices (see providers/presets.rs); edited rows are left alone.
UPDATE models SET output_price_nano = 1100000000, cached_input_price_nano = 70000000
 WHERE id = 'deepseek-chat' AND input_price_nano = 270000000 AND output_price_nano = 270000000 AND cached_input_price_nano IS NULL;
UPDATE models SET input_price_nano = 280000000, output_price_nano = 420000000, cached_input_price_nano = 28000000
 WHERE id = 'deepseek-v3.2' AND input_price_nano = 270000000 AND output_price_nano = 270000000 AND cached_input_price_nano IS NULL;
UPDATE models SET output_price_nano = 2190000000, cached_input_price_nano = 140000000
 WHERE id = 'deepseek-r1' AND input_price_nano = 550000000 AND output_price_nano = 550000000 AND cached_input_price_nano IS NULL;
UPDATE models SET input_price_nano = 400000000, output_price_nano = 1200000000
 WHERE id = 'qwen-plus' AND input_price_nano = 110000000 AND output_price_nano = 110000000 AND cached_input_price_nano IS NULL;
UPDATE models SET input_price_nano = 1600000000, output_price_nano = 6400000000
 WHERE id = 'qwen-max' AND input_price_nano = 280000000 AND output_price_nano = 280000000 AND cached_input_price_nano IS NULL;
UPDATE models SET input_price_nano = 1000000000, output_price_nano = 3200000000, cached_input_price_nano = 200000000
 WHERE id = 'glm-5' AND input_price_nano = 140000000 AND output_price_nano = 140000000 AND cached_input_price_nano IS NULL;
UPDATE models SET input_price_nano = 110000000, output_price_nano = 280000000
 WHERE id = 'doubao-pro' AND input_price_nano = 140000000 AND output_price_nano = 140000000 AND cached_input_price_nano IS NULL;
UPDATE models SET input_price_nano = 42000000, output_price_nano = 83000000
 WHERE id = 'doubao-lite' AND input_price_nano = 10000000 AND output_price_nano = 10000000 AND cached_input_price_nano IS NULL;
UPDATE models SET input_price_nano = 600000000, output_price_nano = 3000000000, cached_input_price_nano = 100000000
 WHERE id = 'kimi-k2.5' AND input_price_nano = 140000000 AND output_price_nano = 140000000 AND cached_input_price_nano IS NULL;
UPDATE models SET output_price_nano = 10000000000, cached_input_price_nano = 1250000000
 WHERE id = 'gpt-4o' AND input_price_nano = 2500000000 AND output_price_nano = 2500000000 AND cached_input_price_nano IS NULL;
UPDATE models SET output_price_nano = 15000000000, cached_input_price_nano = 300000000, cache_write_price_nano = 3750000000
 WHERE id = 'claude-sonnet-4' AND input_price_nano = 3000000000 AND output_price_nano = 3000000000 AND cached_input_price_nano IS NULL;
