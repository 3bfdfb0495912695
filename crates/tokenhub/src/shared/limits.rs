//! RPM/TPM token buckets in Redis: the same buckets as `relay/limits.rs` (one minute's
//! allowance, refilled continuously, estimate at admission corrected at settlement),
//! decided by one script per admission on the Redis clock, so every instance draws
//! from one bucket.

use std::sync::LazyLock;
use std::time::Duration;

use super::{SharedError, SharedState};
use crate::relay::limits::{LimitKind, Limited, TokenHold};

/// Buckets idle this long have refilled; Redis forgets them.
pub(super) const BUCKET_TTL_MS: u64 = 120_000;

/// Lua shared by the scripts that admit a request: the Redis clock and the buckets'
/// check (`check_limits`: nil and the levels, or the refusal {kind (1 requests, 2
/// tokens), limit, remaining, retry after ms}) and take (`take_limits`).
pub(super) const LIMITS_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function level(key, limit)
  local v = redis.call('HMGET', key, 'a', 't')
  local a, at = tonumber(v[1]), tonumber(v[2])
  if a == nil then return limit end
  return math.min(limit, a + math.max(0, now - at) * limit / 60000)
end
local function check_limits(rkey, tkey, rpm, tpm, tokens)
  local ra, ta
  if rpm > 0 then
    ra = level(rkey, rpm)
    if ra < 1 then
      return {1, rpm, math.floor(math.max(ra, 0)), math.ceil((1 - ra) * 60000 / rpm)}
    end
  end
  if tpm > 0 then
    ta = level(tkey, tpm)
    local need = math.min(tokens, tpm)
    if ta < need then
      return {2, tpm, math.floor(math.max(ta, 0)), math.ceil((need - ta) * 60000 / tpm)}
    end
  end
  return nil, ra, ta
end
local function take_limits(rkey, tkey, rpm, tpm, tokens, ra, ta, ttl)
  if rpm > 0 then
    redis.call('HSET', rkey, 'a', tostring(ra - 1), 't', now)
    redis.call('PEXPIRE', rkey, ttl)
  end
  if tpm > 0 then
    redis.call('HSET', tkey, 'a', tostring(ta - tokens), 't', now)
    redis.call('PEXPIRE', tkey, ttl)
  end
end
";

/// KEYS: the RPM bucket, the TPM bucket. ARGV: rpm (0 = none), tpm (0 = none), tokens,
/// TTL. Returns {0} when admitted, else the refusal. Nothing is taken from either
/// bucket when one refuses.
static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{LIMITS_LUA}
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local refusal, ra, ta = check_limits(KEYS[1], KEYS[2], rpm, tpm, tokens)
if refusal then return refusal end
take_limits(KEYS[1], KEYS[2], rpm, tpm, tokens, ra, ta, ARGV[4])
return {{0}}
"
    ))
});

/// KEYS: the TPM bucket. ARGV: tokens to give back (negative: take more), limit.
static CORRECT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local a = tonumber(redis.call('HGET', KEYS[1], 'a'))
if a == nil then return 0 end
redis.call('HSET', KEYS[1], 'a', tostring(math.min(tonumber(ARGV[2]), a + tonumber(ARGV[1]))))
return 1
",
    )
});

/// A limits refusal as the scripts return it.
pub(super) fn limited(answer: &[i64]) -> Option<Limited> {
    let [kind @ (1 | 2), limit, remaining, retry_ms] = answer else {
        return None;
    };
    Some(Limited {
        kind: if *kind == 1 {
            LimitKind::Requests
        } else {
            LimitKind::Tokens
        },
        limit: *limit as u64,
        remaining: (*remaining).max(0) as u64,
        retry_after: Duration::from_millis((*retry_ms).max(0) as u64),
    })
}

impl SharedState {
    pub(super) fn bucket(&self, scope: &str, id: i64, kind: &str) -> String {
        self.key(format_args!("rl:{scope}:{id}:{kind}"))
    }

    /// `RateLimits::admit` for all instances; `scope` names the bucket family (`key`,
    /// `chat`), `id` the caller within it.
    pub async fn admit(
        &self,
        scope: &str,
        id: i64,
        rpm: Option<u64>,
        tpm: Option<u64>,
        tokens: u64,
    ) -> Result<Result<(), Limited>, SharedError> {
        let mut connection = self.connection();
        let answer: Vec<i64> = ADMIT
            .key(self.bucket(scope, id, "rpm"))
            .key(self.bucket(scope, id, "tpm"))
            .arg(rpm.unwrap_or(0))
            .arg(tpm.unwrap_or(0))
            .arg(tokens)
            .arg(BUCKET_TTL_MS)
            .invoke_async(&mut connection)
            .await?;
        Ok(match answer.as_slice() {
            [0] => Ok(()),
            refusal => Err(limited(refusal)
                .ok_or_else(|| SharedError::Protocol(format!("admit: {refusal:?}")))?),
        })
    }

    /// Replaces a TPM estimate by the tokens actually used.
    pub async fn correct_tokens(
        &self,
        scope: &str,
        hold: &TokenHold,
        actual: u64,
    ) -> Result<(), SharedError> {
        let mut connection = self.connection();
        let returned = hold.estimated as i64 - actual.min(i64::MAX as u64) as i64;
        let _: i64 = CORRECT
            .key(self.bucket(scope, hold.key_id, "tpm"))
            .arg(returned)
            .arg(hold.limit)
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }
}
