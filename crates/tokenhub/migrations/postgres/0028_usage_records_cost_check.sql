-- SQLite's bound on a record's cost became a CHECK constraint here (its 0028 rebuilds
-- usage_records for it). PostgreSQL has had that constraint since 0008: nothing to do.
-- The migration exists so that a number names the same change on both backends.
SELECT 1;
