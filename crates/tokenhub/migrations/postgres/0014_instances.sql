-- Running gateway instances (issue 14): each writes its row at start and every few
-- seconds after. An instance that sees others beating on the same database without
-- shared state (Redis) says so at start and in /readyz: limits, breakers and
-- concurrency caps are then per instance. Rows silent for a minute are removed.
CREATE TABLE instances (
    -- Random per process.
    id TEXT PRIMARY KEY,
    -- host:port it listens on, for the operator.
    address TEXT NOT NULL,
    -- 1 when the instance shares its limits through Redis.
    shared_state BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
CREATE INDEX instances_heartbeat_at ON instances (heartbeat_at);
