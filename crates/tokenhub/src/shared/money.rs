//! Reservations across instances. Per user one hash `<prefix>m:u:<id>` and per key one
//! `<prefix>m:k:<id>`, each holding
//! - `amount` and `version`: the database's balance (or key spend) and its version
//!   (migration 0019), replaced only by a newer reading;
//! - `h:<instance>`: what that instance holds against it, reserved plus settled but not
//!   yet committed. A field counts only while its instance is alive; the admission that
//!   drops a dead instance's field forgets the amount with it (read again from the
//!   database), since that instance may have died between a commit and its share.
//!
//! Available = amount − Σ live holds, checked and taken in one script (with the key's
//! RPM/TPM buckets: one round trip per request), so the bound of one process holds for
//! all: a request is admitted only if its worst case fits beside every reservation in
//! flight on any instance.
//!
//! Moves: reserve (+worst case), settle (+cost − worst case), commit (the writer, after
//! its transaction: −cost, with the newer reading of the amount, in one script so the
//! available amount never jumps). The database stays the record: after Redis loses the
//! hashes, the amount is read again from the database on the next reservation, and each
//! instance writes back its holds from its own books (`restore_holds`).

use std::sync::LazyLock;

use super::limits::{BUCKET_TTL_MS, LIMITS_LUA, limited};
use super::{SharedError, SharedState};
use crate::ledger::books::Refusal;
use crate::ledger::money::Nanos;
use crate::relay::limits::Limited;
use crate::store::Versioned;

/// Money hashes of callers idle this long are dropped (they are read again on use).
const MONEY_TTL_MS: u64 = 24 * 3600 * 1000;

/// Exact integer arithmetic for the scripts. Lua numbers are doubles, exact only below
/// 2^53 (about $9M in nano-USD), and balances, quotas and sums of holds go far beyond
/// (`MAX_AMOUNT` is $1B): compared as doubles, an amount a few nano-dollars short could
/// pass. So every amount is read from its decimal text into two parts, `high, low` =
/// high × 10^9 + low with 0 ≤ low < 10^9, each far below 2^53 for any i64, and written
/// back as text; Redis's own HINCRBY moves the stored holds as 64-bit integers.
///
/// The admission is on every request's path, so the parts travel as a function's two
/// results rather than a table (no allocation), and an amount of at most 15 digits
/// (below 10^15, where a double is still exact) is split by arithmetic instead of string
/// cuts: together a third of the admission's time in Redis (bench/RESULTS.md, addendum
/// 21). `tests/it/shared_state.rs` compares amounts beyond 2^53 to the nano-dollar.
const EXACT_LUA: &str = r"
local BASE = 1000000000
local function exact(text)
  local value = tonumber(text)
  if value > -1e15 and value < 1e15 then
    local high = math.floor(value / BASE)
    return high, value - high * BASE
  end
  text = tostring(text)
  local negative = string.sub(text, 1, 1) == '-'
  if negative then text = string.sub(text, 2) end
  local high = tonumber(string.sub(text, 1, #text - 9))
  local low = tonumber(string.sub(text, #text - 8))
  if negative then
    high, low = -high, -low
    if low < 0 then high, low = high - 1, low + BASE end
  end
  return high, low
end
local function plus(ah, al, bh, bl)
  local high, low = ah + bh, al + bl
  if low >= BASE then return high + 1, low - BASE end
  return high, low
end
local function minus(ah, al, bh, bl)
  local high, low = ah - bh, al - bl
  if low < 0 then return high - 1, low + BASE end
  return high, low
end
local function below(ah, al, bh, bl)
  return ah < bh or (ah == bh and al < bl)
end
local function decimal(high, low)
  local sign = ''
  if high < 0 then
    sign = '-'
    if low == 0 then high = -high else high, low = -high - 1, BASE - low end
  end
  if high == 0 then return sign .. string.format('%d', low) end
  return sign .. string.format('%d%09d', high, low)
end
";

/// Lua of the reservation: `held` reads a money hash once and returns its amount and the
/// sum of the live instances' holds, dropping the dead ones' and, with them, the amount
/// (kept: its version); it asks about each instance once per script (`alive`). A dead instance may have
/// committed a batch and died before sharing it (`Committer::share`): Redis's amount then
/// lacks that batch's cost, which only the dead hold made up for; so an amount is never
/// used without the holds it was kept beside, and the next admission reads it again from
/// the database (`load_money`). `check_money` returns nil, or {-3} while Redis's data is lost or settling
/// (no heartbeat since, or holds still being written back: an amount read again from
/// the database now would ignore what other instances hold), {-1} / {-2} when the
/// user's / key's amount is not loaded, {3, available} or {4, remaining} (as decimal text) when refused; `take_money`
/// holds the amount. Amounts arrive as decimal text and are compared exactly (`EXACT_LUA`).
const MONEY_LUA: &str = r"
local alive = {}
local function held(key, instances)
  local fields = redis.call('HGETALL', key)
  local high, low, amount, ended = 0, 0, nil, false
  for i = 1, #fields, 2 do
    local field = fields[i]
    if field == 'amount' then
      amount = fields[i + 1]
    elseif string.find(field, 'h:', 1, true) == 1 then
      local instance = string.sub(field, 3)
      local live = alive[instance]
      if live == nil then
        live = redis.call('EXISTS', instances .. instance) == 1
        alive[instance] = live
      end
      if live then
        high, low = plus(high, low, exact(fields[i + 1]))
      else
        redis.call('HDEL', key, field)
        ended = true
      end
    end
  end
  if ended then
    redis.call('HDEL', key, 'amount')
    amount = nil
  end
  return amount, high, low
end
local function check_money(ukey, kkey, amount, quota, instances, epoch, settling)
  local state = redis.call('MGET', epoch, settling)
  if not state[1] or state[2] then return {-3} end
  local balance, uh, ul = held(ukey, instances)
  if not balance then return {-1} end
  local nh, nl = exact(amount)
  local bh, bl = exact(balance)
  local ah, al = minus(bh, bl, uh, ul)
  if below(ah, al, nh, nl) then return {3, decimal(ah, al)} end
  if tonumber(quota) >= 0 then
    local spent, kh, kl = held(kkey, instances)
    if not spent then return {-2} end
    local qh, ql = exact(quota)
    local sh, sl = exact(spent)
    local rh, rl = minus(qh, ql, sh, sl)
    rh, rl = minus(rh, rl, kh, kl)
    if below(rh, rl, nh, nl) then return {4, decimal(rh, rl)} end
  end
  return nil
end
local function take_money(ukey, kkey, field, amount, ttl)
  redis.call('HINCRBY', ukey, field, amount)
  redis.call('PEXPIRE', ukey, ttl)
  redis.call('HINCRBY', kkey, field, amount)
  redis.call('PEXPIRE', kkey, ttl)
end
";

/// One request's admission in one round trip: its key's RPM/TPM buckets, then its
/// reservation. KEYS: RPM bucket, TPM bucket, user hash, key hash, epoch, settling. ARGV: rpm, tpm (0 =
/// none), tokens, bucket TTL, hold field, amount (0 = free: no reservation), quota (-1 =
/// none), instances prefix, money TTL. Returns {0} when admitted, else what refused it;
/// nothing is taken unless everything passes.
static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{LIMITS_LUA}{EXACT_LUA}{MONEY_LUA}
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local refusal, ra, ta = check_limits(KEYS[1], KEYS[2], rpm, tpm, tokens)
if refusal then return refusal end
local amount = ARGV[6]
local reserves = amount ~= '0'
if reserves then
  refusal = check_money(KEYS[3], KEYS[4], amount, ARGV[7], ARGV[8], KEYS[5], KEYS[6])
  if refusal then return refusal end
end
take_limits(KEYS[1], KEYS[2], rpm, tpm, tokens, ra, ta, ARGV[4])
if reserves then take_money(KEYS[3], KEYS[4], ARGV[5], amount, ARGV[9]) end
return {{0}}
"
    ))
});

/// Takes a database reading of an amount: version -1 = no reading, -2 = forget the one
/// held (Redis must read it again before trusting it), else kept if newer than Redis's.
/// An amount forgotten beside a dead instance's hold keeps its version, so a reading
/// taken before that instance's last commit (a share still on its way) cannot bring the
/// old amount back; a `loading` reading, taken after Redis said the amount is missing,
/// may also be of that same version (the database did not change since).
const READING_LUA: &str = r"
local function take_reading(key, amount, version, loading)
  if version == -2 then
    redis.call('HDEL', key, 'amount', 'version')
  elseif version >= 0 then
    local held = tonumber(redis.call('HGET', key, 'version') or '-1')
    local reloads = loading and version == held and redis.call('HEXISTS', key, 'amount') == 0
    if version > held or reloads then
      redis.call('HSET', key, 'amount', amount, 'version', version)
    end
  end
end
";

/// KEYS: one money hash. ARGV: hold field, hold change, amount, version, TTL, loading
/// ('1': the reading answers an admission's `Missing`). Takes the reading, then moves
/// the hold.
static UPDATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{READING_LUA}
take_reading(KEYS[1], ARGV[3], tonumber(ARGV[4]), ARGV[6] == '1')
if ARGV[2] ~= '0' then
  if redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]) == 0 then
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"
    ))
});

/// KEYS: money hashes. ARGV: hold field, hold change (not 0), TTL. Moves this instance's
/// hold on every hash by the same change: a settlement's correction of its user's and
/// key's holds in one round trip, both or neither.
static MOVE_HOLDS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
for _, key in ipairs(KEYS) do
  if redis.call('HINCRBY', key, ARGV[1], ARGV[2]) == 0 then
    redis.call('HDEL', key, ARGV[1])
  end
  redis.call('PEXPIRE', key, ARGV[3])
end
return 1
",
    )
});

/// KEYS: one money hash. ARGV: hold field, what this instance holds (absolute), amount,
/// version (as `UPDATE`'s).
static RESTORE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{READING_LUA}
take_reading(KEYS[1], ARGV[3], tonumber(ARGV[4]), false)
if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 1
"
    ))
});

/// What a money hash is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Account {
    User(i64),
    Key(i64),
}

/// What an update knows of the amount in the database.
#[derive(Clone, Copy, Debug)]
pub enum Reading {
    /// Nothing new: only the hold moves.
    None,
    /// Read after the change: kept if newer than Redis's.
    Read(Versioned),
    /// The reading failed after a change: Redis must read it again before trusting it.
    Unknown,
}

impl Reading {
    pub fn from_result<E>(result: Result<Option<Versioned>, E>) -> Reading {
        match result {
            Ok(Some(reading)) => Reading::Read(reading),
            Ok(None) => Reading::None,
            Err(_) => Reading::Unknown,
        }
    }

    fn args(self) -> (i64, i64) {
        match self {
            Reading::None => (0, -1),
            Reading::Read(r) => (r.amount.0, r.version),
            Reading::Unknown => (0, -2),
        }
    }
}

/// One request's admission, as the shared state decided it.
#[derive(Debug)]
pub enum Admission {
    Admitted,
    Limited(Limited),
    Refused(Refusal),
    /// Redis does not hold this amount: read it from the database, `load_money`, retry.
    Missing(Account),
    /// Redis lost its data and the instances are writing their holds back (one lease at
    /// most): nothing paid is admitted meanwhile.
    Rebuilding,
}

/// What one request asks the shared state for.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub user_id: i64,
    pub key_id: i64,
    pub key_quota: Option<Nanos>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    /// Estimated tokens, for the TPM bucket.
    pub tokens: u64,
    /// Worst-case cost, reserved (zero: nothing to reserve).
    pub amount: Nanos,
}

impl SharedState {
    fn money_key(&self, account: Account) -> String {
        match account {
            Account::User(id) => self.key(format_args!("m:u:{id}")),
            Account::Key(id) => self.key(format_args!("m:k:{id}")),
        }
    }

    /// Admits one request across instances: takes from its key's buckets and reserves
    /// its worst case against the user's balance and the key's quota, or says why not.
    ///
    /// A failure marks this instance for a rebuild: an admission Redis applied but whose
    /// reply was lost holds money no request of this instance will release.
    pub async fn admit_request(&self, request: Request) -> Result<Admission, SharedError> {
        let answer = self.invoke_admission(request).await;
        if answer.is_err() {
            self.note_lost_update();
        }
        Self::admission(request, &answer?)
    }

    async fn invoke_admission(&self, request: Request) -> Result<Vec<i64>, SharedError> {
        self.run_money(
            ADMIT
                .key(self.bucket("key", request.key_id, "rpm"))
                .key(self.bucket("key", request.key_id, "tpm"))
                .key(self.money_key(Account::User(request.user_id)))
                .key(self.money_key(Account::Key(request.key_id)))
                .key(&self.names.epoch)
                .key(&self.names.settling)
                .arg(request.rpm.unwrap_or(0))
                .arg(request.tpm.unwrap_or(0))
                .arg(request.tokens)
                .arg(BUCKET_TTL_MS)
                .arg(&self.names.hold_field)
                .arg(request.amount.0.max(0))
                .arg(request.key_quota.map_or(-1, |q| q.0.max(0)))
                .arg(&self.names.instances)
                .arg(MONEY_TTL_MS),
        )
        .await
    }

    /// Decides one admission from the answer of `ADMIT`.
    fn admission(request: Request, answer: &[i64]) -> Result<Admission, SharedError> {
        let needed = request.amount;
        Ok(match answer {
            [0] => Admission::Admitted,
            [-1] => Admission::Missing(Account::User(request.user_id)),
            [-2] => Admission::Missing(Account::Key(request.key_id)),
            [-3] => Admission::Rebuilding,
            [3, available] => Admission::Refused(Refusal::Balance {
                available: Nanos(*available),
                needed,
            }),
            [4, remaining] => Admission::Refused(Refusal::KeyQuota {
                remaining: Nanos(*remaining),
                needed,
            }),
            other => Admission::Limited(
                limited(other).ok_or_else(|| SharedError::Protocol(format!("admit: {other:?}")))?,
            ),
        })
    }

    /// Takes a database reading of an amount (kept only if newer than Redis's) and moves
    /// this instance's hold by `hold_change`.
    pub async fn update_money(
        &self,
        account: Account,
        reading: Reading,
        hold_change: Nanos,
    ) -> Result<(), SharedError> {
        self.invoke_update(account, reading, hold_change, false)
            .await
    }

    /// Moves this instance's hold on each account by `change` (a settlement's
    /// correction: its cost less its reservation), atomically.
    pub async fn move_holds(&self, accounts: &[Account], change: Nanos) -> Result<(), SharedError> {
        let mut invocation = MOVE_HOLDS.prepare_invoke();
        for account in accounts {
            invocation.key(self.money_key(*account));
        }
        invocation
            .arg(&self.names.hold_field)
            .arg(change.0)
            .arg(MONEY_TTL_MS);
        let _: i64 = self.run_money(&invocation).await?;
        Ok(())
    }

    /// Answers an admission's `Missing`: a reading taken from the database after Redis
    /// said it lacks the amount, kept if newer than Redis's or of the version it forgot.
    pub async fn load_money(&self, account: Account, reading: Reading) -> Result<(), SharedError> {
        self.invoke_update(account, reading, Nanos::ZERO, true)
            .await
    }

    async fn invoke_update(
        &self,
        account: Account,
        reading: Reading,
        hold_change: Nanos,
        loading: bool,
    ) -> Result<(), SharedError> {
        let (amount, version) = reading.args();
        let _: i64 = self
            .run_money(
                UPDATE
                    .key(self.money_key(account))
                    .arg(&self.names.hold_field)
                    .arg(hold_change.0)
                    .arg(amount)
                    .arg(version)
                    .arg(MONEY_TTL_MS)
                    .arg(if loading { "1" } else { "0" }),
            )
            .await?;
        Ok(())
    }

    /// After Redis lost this instance's holds (its data set, or an update whose fate is
    /// unknown): writes back what it holds, from its books, with each amount as the
    /// database has it now (a lost update may have carried a newer reading than Redis's;
    /// kept only if newer, as always).
    pub async fn restore_holds(
        &self,
        holds: impl IntoIterator<Item = (Account, Nanos, Reading)>,
    ) -> Result<(), SharedError> {
        for (account, held, reading) in holds {
            let (amount, version) = reading.args();
            let _: i64 = self
                .run_money(
                    RESTORE
                        .key(self.money_key(account))
                        .arg(&self.names.hold_field)
                        .arg(held.0)
                        .arg(amount)
                        .arg(version),
                )
                .await?;
        }
        Ok(())
    }
}
