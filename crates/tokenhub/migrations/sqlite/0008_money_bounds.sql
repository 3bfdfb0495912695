-- Money columns hold integers within ±1e18 nano-USD ($1,000,000,000), and one request
-- costs at most 1e15 nano-USD ($1,000,000): see ledger/money.rs (MAX_AMOUNT,
-- MAX_REQUEST_COST). SQLite turns an integer expression that overflows into a REAL, which
-- it then stores in an INTEGER column: before this migration one absurd usage report
-- (`spent_nano + ?` past i64) left a REAL that no later read could decode. The triggers
-- below refuse any such value, so a batch carrying one fails and the ledger writer parks
-- the offending record (usage_dead_letters) instead of corrupting the books.

-- Repair what an earlier overflow left behind. Costs above the per-request bound are
-- capped to it; balances and spends that are not in-range integers are recomputed from
-- the ledger. TOTAL() cannot throw on overflow like SUM(); it is exact up to 2^53 nano-USD
-- (about $9 million), and beyond that an account whose column had already overflowed
-- gets the nearest representable value, clamped to the bound.
UPDATE usage_records SET cost_nano = 1000000000000000
 WHERE typeof(cost_nano) <> 'integer' OR cost_nano > 1000000000000000;
UPDATE usage_records SET cost_nano = 0 WHERE cost_nano < 0;
UPDATE ledger_entries SET amount_nano = MAX(MIN(amount_nano, 1000000000000000000), -1000000000000000000)
 WHERE typeof(amount_nano) <> 'integer' OR amount_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000;
UPDATE users SET balance_nano = CAST(MAX(MIN(
        (SELECT TOTAL(amount_nano) FROM ledger_entries WHERE user_id = users.id)
      - (SELECT TOTAL(cost_nano) FROM usage_records WHERE user_id = users.id),
        1e18), -1e18) AS INTEGER)
 WHERE typeof(balance_nano) <> 'integer' OR balance_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000;
UPDATE api_keys SET spent_nano = CAST(MIN(
        (SELECT TOTAL(cost_nano) FROM usage_records WHERE key_id = api_keys.id), 1e18) AS INTEGER)
 WHERE typeof(spent_nano) <> 'integer' OR spent_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000;
UPDATE api_keys SET quota_nano = MAX(MIN(quota_nano, 1000000000000000000), -1000000000000000000)
 WHERE quota_nano IS NOT NULL
   AND (typeof(quota_nano) <> 'integer' OR quota_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000);

CREATE TRIGGER users_balance_bounded_insert BEFORE INSERT ON users
WHEN typeof(NEW.balance_nano) <> 'integer'
  OR NEW.balance_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000
BEGIN SELECT RAISE(ABORT, 'balance_nano must be an integer within ±1e18'); END;
CREATE TRIGGER users_balance_bounded_update BEFORE UPDATE OF balance_nano ON users
WHEN typeof(NEW.balance_nano) <> 'integer'
  OR NEW.balance_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000
BEGIN SELECT RAISE(ABORT, 'balance_nano must be an integer within ±1e18'); END;

CREATE TRIGGER api_keys_money_bounded_insert BEFORE INSERT ON api_keys
WHEN typeof(NEW.spent_nano) <> 'integer'
  OR NEW.spent_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000
  OR (NEW.quota_nano IS NOT NULL AND (typeof(NEW.quota_nano) <> 'integer'
      OR NEW.quota_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000))
BEGIN SELECT RAISE(ABORT, 'spent_nano and quota_nano must be integers within ±1e18'); END;
CREATE TRIGGER api_keys_money_bounded_update BEFORE UPDATE OF spent_nano, quota_nano ON api_keys
WHEN typeof(NEW.spent_nano) <> 'integer'
  OR NEW.spent_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000
  OR (NEW.quota_nano IS NOT NULL AND (typeof(NEW.quota_nano) <> 'integer'
      OR NEW.quota_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000))
BEGIN SELECT RAISE(ABORT, 'spent_nano and quota_nano must be integers within ±1e18'); END;

CREATE TRIGGER usage_records_cost_bounded BEFORE INSERT ON usage_records
WHEN typeof(NEW.cost_nano) <> 'integer' OR NEW.cost_nano NOT BETWEEN 0 AND 1000000000000000
BEGIN SELECT RAISE(ABORT, 'cost_nano must be an integer within 0..=1e15'); END;

CREATE TRIGGER ledger_entries_amount_bounded BEFORE INSERT ON ledger_entries
WHEN typeof(NEW.amount_nano) <> 'integer'
  OR NEW.amount_nano NOT BETWEEN -1000000000000000000 AND 1000000000000000000
BEGIN SELECT RAISE(ABORT, 'amount_nano must be an integer within ±1e18'); END;

-- Usage records the database refused even alone (the writer isolates them by splitting
-- the batch): kept whole, as JSON, so nothing settled is silently lost. Their cost was
-- never debited; an operator can inspect and replay them.
CREATE TABLE usage_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    record TEXT NOT NULL,
    error TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
