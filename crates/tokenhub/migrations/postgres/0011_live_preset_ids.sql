-- The preset channels seeded before 2026-12 map public names to upstream ids the vendors
-- have since retired (DeepSeek's deepseek-chat/deepseek-reasoner, Doubao 1.5, the
-- undated glm-4-flash, claude-sonnet-4-20250514). Seeding never overwrites a channel,
-- so rows that still hold exactly the old seed (an operator never edited them) move to
-- the ids in providers/presets.rs (see docs/providers/); edited rows are left alone.
UPDATE channels
   SET model_map = '{"deepseek-chat":"deepseek-flash","deepseek-r1":"deepseek-v4-pro","deepseek-v3.2":"deepseek-flash"}'
 WHERE name = 'deepseek'
   AND model_map = '{"deepseek-r1":"deepseek-reasoner","deepseek-v3.2":"deepseek-chat"}';
UPDATE channels
   SET model_map = '{"glm-4-flash":"glm-4-flash-250414"}'
 WHERE name = 'zhipu' AND model_map = '{}' AND models = '["glm-4-flash","glm-5"]';
UPDATE channels
   SET model_map = '{"doubao-lite":"doubao-seed-2-0-lite-260215","doubao-pro":"doubao-seed-2-0-pro-260215"}'
 WHERE name = 'doubao'
   AND model_map = '{"doubao-lite":"doubao-1-5-lite-32k-250115","doubao-pro":"doubao-1-5-pro-32k-250115"}';
UPDATE channels
   SET model_map = '{"claude-sonnet-4":"claude-sonnet-4-6"}'
 WHERE name = 'anthropic' AND model_map = '{"claude-sonnet-4":"claude-sonnet-4-20250514"}';
-- Running gateways on this database reload their catalogue.
UPDATE revision SET value = value + 1 WHERE id = 1;
