-- Responses kept for the Responses API (`store`, default true): `GET /v1/responses/{id}`
-- answers `response`; `previous_response_id` replays `conversation` (the chat messages of
-- every turn so far, instructions excluded, as OpenAI does not carry them over). A row is
-- its owner's alone (every read filters on user_id) and is purged after expires_at.
CREATE TABLE stored_responses (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    key_id BIGINT NOT NULL,
    response TEXT NOT NULL,
    conversation TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX stored_responses_user ON stored_responses (user_id);
CREATE INDEX stored_responses_expiry ON stored_responses (expires_at);
