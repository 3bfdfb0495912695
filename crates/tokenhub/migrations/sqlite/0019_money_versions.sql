-- A version per balance and per key spend, bumped by every change (see the PostgreSQL
-- migration; shared state runs on PostgreSQL, SQLite keeps the schemas alike).
ALTER TABLE users ADD COLUMN balance_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN spent_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER users_balance_version AFTER UPDATE OF balance_nano ON users
BEGIN
    UPDATE users SET balance_version = OLD.balance_version + 1 WHERE id = NEW.id;
END;
CREATE TRIGGER api_keys_spent_version AFTER UPDATE OF spent_nano ON api_keys
BEGIN
    UPDATE api_keys SET spent_version = OLD.spent_version + 1 WHERE id = NEW.id;
END;
