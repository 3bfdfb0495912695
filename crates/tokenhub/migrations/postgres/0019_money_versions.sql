-- A version per balance and per key spend, bumped by every change however it is made
-- (batch debits, credits, redemptions, admin edits), so the copy kept in Redis for the
-- instances' shared reservations (shared/money.rs) is replaced only by a newer reading:
-- two instances writing what they read after their commits can arrive in either order.
ALTER TABLE users ADD COLUMN balance_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN spent_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION tokenhub_bump_balance_version() RETURNS trigger AS $$
BEGIN
    NEW.balance_version := OLD.balance_version + 1;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION tokenhub_bump_spent_version() RETURNS trigger AS $$
BEGIN
    NEW.spent_version := OLD.spent_version + 1;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_balance_version BEFORE UPDATE OF balance_nano ON users
    FOR EACH ROW EXECUTE FUNCTION tokenhub_bump_balance_version();
CREATE TRIGGER api_keys_spent_version BEFORE UPDATE OF spent_nano ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tokenhub_bump_spent_version();
