//! RPM/TPM token buckets in Redis: the same buckets as `relay/limits.rs` (one minute's
//! allowance, refilled continuously, estimate at admission corrected at settlement),
//! decided by one script per admission on the Redis clock, so every instance draws
//! from one bucket.

use std::sync::LazyLock;
use std::time::Duration;

use super::{SharedError, SharedState};
use crate::relay::limits::{LimitKind, Limited, TokenHold};

/// Buckets idle this long have refilled; Redis forgets them.
const BUCKET_TTL_MS: u64 = 120_000;

/// KEYS: the RPM bucket, the TPM bucket. ARGV: rpm (0 = none), tpm (0 = none), tokens,
/// TTL. Returns {0} when admitted, else {kind (1 requests, 2 tokens), limit, remaining,
/// retry after ms}. Nothing is taken from either bucket when one refuses.
static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function level(key, limit)
  local v = redis.call('HMGET', key, 'a', 't')
  local a, at = tonumber(v[1]), tonumber(v[2])
  if a == nil then return limit end
  return math.min(limit, a + math.max(0, now - at) * limit / 60000)
end
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ra, ta
if rpm > 0 then
  ra = level(KEYS[1], rpm)
  if ra < 1 then
    return {1, rpm, math.floor(math.max(ra, 0)), math.ceil((1 - ra) * 60000 / rpm)}
  end
end
if tpm > 0 then
  ta = level(KEYS[2], tpm)
  local need = math.min(tokens, tpm)
  if ta < need then
    return {2, tpm, math.floor(math.max(ta, 0)), math.ceil((need - ta) * 60000 / tpm)}
  end
end
if rpm > 0 then
  redis.call('HSET', KEYS[1], 'a', tostring(ra - 1), 't', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
if tpm > 0 then
  redis.call('HSET', KEYS[2], 'a', tostring(ta - tokens), 't', now)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return {0}
",
    )
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

impl SharedState {
    fn bucket(&self, scope: &str, id: i64, kind: &str) -> String {
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
            [kind, limit, remaining, retry_ms] => Err(Limited {
                kind: if *kind == 1 {
                    LimitKind::Requests
                } else {
                    LimitKind::Tokens
                },
                limit: *limit as u64,
                remaining: (*remaining).max(0) as u64,
                retry_after: Duration::from_millis((*retry_ms).max(0) as u64),
            }),
            other => return Err(SharedError::Protocol(format!("admit: {other:?}"))),
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
