-- Channels that serve OpenAI's Responses API themselves (OpenAI's own API): /v1/responses
-- is passed through to them instead of being translated to chat completions.
ALTER TABLE channels ADD COLUMN responses_native INTEGER NOT NULL DEFAULT 0;
-- A stored response whose conversation the upstream holds (a native channel stored it):
-- the row records who owns the id, so previous_response_id is passed upstream only for its
-- owner; `conversation` is then an empty array.
ALTER TABLE stored_responses ADD COLUMN native INTEGER NOT NULL DEFAULT 0;
-- The OpenAI preset channel, where it still points at OpenAI's own API, is one.
UPDATE channels SET responses_native = 1
 WHERE name = 'openai' AND kind = 'openai' AND base_url = 'https://api.openai.com/v1';
