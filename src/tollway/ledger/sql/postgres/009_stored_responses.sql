-- Stored OpenAI Responses (previous_response_id, GET/DELETE /v1/responses/{id}): one row per response,
-- with the key that made it; dropped after responses.retention_days by created_at.
CREATE TABLE IF NOT EXISTS stored_responses (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    input_items BYTEA NOT NULL,
    output_items BYTEA NOT NULL,
    response BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS stored_responses_created ON stored_responses (created_at);
