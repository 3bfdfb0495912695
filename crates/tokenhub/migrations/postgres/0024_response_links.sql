-- A stored response holds its own turn only, not the whole conversation (which grew with
-- every turn: quadratic storage along a previous_response_id chain). `input_items` is this
-- turn's input as Responses items, with ids (what GET /v1/responses/{id}/input_items
-- lists); `previous_id` is the response it continued. The conversation is rebuilt by
-- walking the links. Rows written before this migration keep `input_items` NULL and their
-- whole conversation in `conversation`: such a row ends a walk. New rows write '' there.
ALTER TABLE stored_responses ADD COLUMN previous_id TEXT;
ALTER TABLE stored_responses ADD COLUMN input_items TEXT;
