-- The seed page (the product's contract) lists its 12 models with one price per 1M
-- tokens: the input price. The built-in catalogue carried the vendors' list prices for
-- seven of them instead; it now carries the seed's (crates/tokenhub/catalog/models.json,
-- with output and cache prices at each vendor's published ratio). Rows that still hold
-- exactly the previous built-in input and output prices (an operator never edited them)
-- move to the new ones; each cache price moves only while it is still the previous
-- built-in one. A row an operator edited is left alone (docs/catalogue.md).
UPDATE models SET input_price_nano = 270000000, output_price_nano = 405000000,
       cached_input_price_nano = CASE WHEN cached_input_price_nano = 28000000 THEN 27000000 ELSE cached_input_price_nano END
 WHERE id = 'deepseek-v3.2' AND input_price_nano = 280000000 AND output_price_nano = 420000000;
UPDATE models SET input_price_nano = 110000000, output_price_nano = 330000000,
       cached_input_price_nano = CASE WHEN cached_input_price_nano = 80000000 THEN 22000000 ELSE cached_input_price_nano END,
       explicit_cached_price_nano = CASE WHEN explicit_cached_price_nano = 40000000 THEN 11000000 ELSE explicit_cached_price_nano END,
       cache_write_price_nano = CASE WHEN cache_write_price_nano = 500000000 THEN 137500000 ELSE cache_write_price_nano END
 WHERE id = 'qwen-plus' AND input_price_nano = 400000000 AND output_price_nano = 1200000000;
UPDATE models SET input_price_nano = 280000000, output_price_nano = 1120000000,
       cached_input_price_nano = CASE WHEN cached_input_price_nano = 320000000 THEN 56000000 ELSE cached_input_price_nano END,
       explicit_cached_price_nano = CASE WHEN explicit_cached_price_nano = 160000000 THEN 28000000 ELSE explicit_cached_price_nano END,
       cache_write_price_nano = CASE WHEN cache_write_price_nano = 2000000000 THEN 350000000 ELSE cache_write_price_nano END
 WHERE id = 'qwen-max' AND input_price_nano = 1600000000 AND output_price_nano = 6400000000;
UPDATE models SET input_price_nano = 140000000, output_price_nano = 448000000,
       cached_input_price_nano = CASE WHEN cached_input_price_nano = 200000000 THEN 28000000 ELSE cached_input_price_nano END
 WHERE id = 'glm-5' AND input_price_nano = 1000000000 AND output_price_nano = 3200000000;
UPDATE models SET input_price_nano = 140000000, output_price_nano = 350000000
 WHERE id = 'doubao-pro' AND input_price_nano = 110000000 AND output_price_nano = 280000000;
UPDATE models SET input_price_nano = 10000000, output_price_nano = 20000000
 WHERE id = 'doubao-lite' AND input_price_nano = 42000000 AND output_price_nano = 83000000;
UPDATE models SET input_price_nano = 140000000, output_price_nano = 700000000,
       cached_input_price_nano = CASE WHEN cached_input_price_nano = 100000000 THEN 23333334 ELSE cached_input_price_nano END
 WHERE id = 'kimi-k2.5' AND input_price_nano = 600000000 AND output_price_nano = 3000000000;
-- The seed shows these windows as 128K and the two proxied vendors as "(via proxy)";
-- the previous seed wrote 131,072 (which reads 131K, as the seed shows qwen-plus's).
UPDATE models SET context = 128000
 WHERE context = 131072 AND id IN ('deepseek-v3.2', 'glm-4-flash', 'glm-5', 'doubao-pro', 'doubao-lite', 'kimi-k2.5', 'gpt-4o');
UPDATE models SET provider = 'OpenAI (via proxy)' WHERE id = 'gpt-4o' AND provider = 'OpenAI';
UPDATE models SET provider = 'Anthropic (via proxy)' WHERE id = 'claude-sonnet-4' AND provider = 'Anthropic';
-- Running gateways on this database rebuild their catalogue.
INSERT INTO changes (kind, entity_id, created_at) VALUES ('catalog', 0, CAST(strftime('%s', 'now') AS INTEGER) * 1000);
