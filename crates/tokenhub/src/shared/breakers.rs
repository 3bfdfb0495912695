//! Circuit breakers in Redis: one state per (channel, upstream key), decided by Lua
//! scripts on the Redis clock so every instance sees one breaker. `relay/health.rs` keeps
//! a local mirror of it and asks Redis only about keys that failed recently or whose
//! cooldown is over, so a healthy key costs no round trip. Keys and TTLs: docs/redis.md.
//!
//! A change (a failure counted, a breaker opened, a key disabled or reset) is published
//! by the script that made it on `<prefix>breakers` as `<channel> <key> <code> <n>
//! <reason>`, so the other instances update their mirrors at once.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::{SharedError, SharedState};

/// The Redis clock in ms, for the scripts below.
const NOW_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// A disabled key's state outlives its last failure this long (a key replaced by the
/// operator gets a new id, so its old state is garbage).
const DISABLED_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// Answer codes shared by the scripts and `BreakerState::from_answer`.
const CLOSED: i64 = 0;
const HALF_OPEN: i64 = 1;
const OPEN: i64 = 2;
const DISABLED: i64 = 3;
const PROBE: i64 = 4;

/// KEYS: the key's state hash, its failure times. ARGV: window ms, cooldown ms.
/// Hands out the one probe of the cluster when the cooldown is over and no live probe
/// lease exists.
static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_LUA}
local window, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'disabled', 'open', 'probe')
if v[1] then return {{{DISABLED}, 0, v[1]}} end
local open = tonumber(v[2])
if open == nil then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  return {{{CLOSED}, redis.call('ZCARD', KEYS[2]), ''}}
end
if now < open then return {{{OPEN}, open - now, ''}} end
local probe = tonumber(v[3])
if probe and now < probe then return {{{OPEN}, probe - now, ''}} end
redis.call('HSET', KEYS[1], 'probe', now + cooldown)
redis.call('PEXPIRE', KEYS[1], window + cooldown)
redis.call('PEXPIRE', KEYS[2], window + cooldown)
return {{{PROBE}, 0, ''}}
"
    ))
});

/// KEYS: state hash, failure times. ARGV: threshold, window ms, cooldown ms, retry
/// after ms (0: none), disabled reason ('' unless the upstream rejected the key),
/// disabled TTL, notices channel, notice head (`<channel> <key>`).
static FAILED: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_LUA}
local window, cooldown = tonumber(ARGV[2]), tonumber(ARGV[3])
local function answer(code, n, text)
  redis.call('PUBLISH', ARGV[7], ARGV[8] .. ' ' .. code .. ' ' .. n .. ' ' .. text)
  return {{code, n, text}}
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'disabled', ARGV[5])
  redis.call('HDEL', KEYS[1], 'open', 'probe')
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return answer({DISABLED}, 0, ARGV[5])
end
local v = redis.call('HMGET', KEYS[1], 'disabled', 'open', 'probe')
if v[1] then return {{{DISABLED}, 0, v[1]}} end
local was_probing = v[3] ~= false
if was_probing then redis.call('HDEL', KEYS[1], 'probe') end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('ZADD', KEYS[2], now, seq)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[2])
local open = tonumber(v[2])
local reopen = nil
if was_probing or n >= tonumber(ARGV[1]) then reopen = now + cooldown end
local retry = tonumber(ARGV[4])
if retry > 0 and (reopen == nil or now + retry > reopen) then reopen = now + retry end
if reopen and (open == nil or reopen > open) then
  open = reopen
  redis.call('HSET', KEYS[1], 'open', open)
end
local ttl = window + cooldown + math.max(0, (open or now) - now)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
if open == nil then return answer({CLOSED}, n, '') end
if open > now then return answer({OPEN}, open - now, '') end
return answer({HALF_OPEN}, 0, '')
"
    ))
});

/// KEYS: state hash, failure times. ARGV: notices channel, notice head. A success
/// closes the breaker and forgets its failures (as on one instance).
static RESET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' {CLOSED} 0 ')
return 1
"
    ))
});

/// KEYS: state hashes. Each key's state for operators, nothing changed.
static VIEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{NOW_LUA}
local states = {{}}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'disabled', 'open')
  local open = tonumber(v[2])
  if v[1] then states[i] = {{{DISABLED}, 0, v[1]}}
  elseif open == nil then states[i] = {{{CLOSED}, 0, ''}}
  elseif open > now then states[i] = {{{OPEN}, open - now, ''}}
  else states[i] = {{{HALF_OPEN}, 0, ''}} end
end
return states
"
    ))
});

/// One key's breaker as Redis holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Callable; `recent_failures` within the window (0: nothing to watch).
    Closed { recent_failures: u64 },
    /// Cooldown over; the next caller gets the probe.
    HalfOpen,
    /// Skip it this long (the cooldown, or another instance's probe lease).
    Open { remaining: Duration },
    /// The upstream rejected it.
    Disabled { reason: String },
    /// This caller holds the cluster's one probe.
    Probe,
}

impl BreakerState {
    fn from_answer((code, n, reason): (i64, i64, String)) -> Result<BreakerState, SharedError> {
        let n = n.max(0) as u64;
        Ok(match code {
            CLOSED => BreakerState::Closed { recent_failures: n },
            HALF_OPEN => BreakerState::HalfOpen,
            OPEN => BreakerState::Open {
                remaining: Duration::from_millis(n),
            },
            DISABLED => BreakerState::Disabled { reason },
            PROBE => BreakerState::Probe,
            other => return Err(SharedError::Protocol(format!("breaker state {other}"))),
        })
    }
}

/// A change another instance (or this one) made, as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerNotice {
    pub channel_id: i64,
    pub key: u64,
    pub state: BreakerState,
}

impl BreakerNotice {
    /// `None` for a payload this version does not understand (it is then ignored).
    pub fn parse(payload: &str) -> Option<BreakerNotice> {
        let mut parts = payload.splitn(5, ' ');
        let channel_id = parts.next()?.parse().ok()?;
        let key = parts.next()?.parse().ok()?;
        let code = parts.next()?.parse().ok()?;
        let n = parts.next()?.parse().ok()?;
        let reason = parts.next().unwrap_or_default().to_string();
        let state = BreakerState::from_answer((code, n, reason)).ok()?;
        Some(BreakerNotice {
            channel_id,
            key,
            state,
        })
    }
}

/// The breaker settings the scripts apply.
#[derive(Clone, Copy, Debug)]
pub struct BreakerLimits {
    pub threshold: usize,
    pub window: Duration,
    pub cooldown: Duration,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl SharedState {
    fn breaker_keys(&self, channel_id: i64, key: u64) -> (String, String) {
        (
            self.key(format_args!("br:{channel_id}:{key}")),
            self.key(format_args!("br:{channel_id}:{key}:f")),
        )
    }

    fn breakers_channel(&self) -> String {
        self.key(format_args!("breakers"))
    }

    /// Whether the key may be called now; hands out the cluster's one probe.
    pub async fn breaker_admit(
        &self,
        channel_id: i64,
        key: u64,
        limits: BreakerLimits,
    ) -> Result<BreakerState, SharedError> {
        let (state, failures) = self.breaker_keys(channel_id, key);
        let mut connection = self.connection();
        let answer = ADMIT
            .key(state)
            .key(failures)
            .arg(millis(limits.window))
            .arg(millis(limits.cooldown))
            .invoke_async(&mut connection)
            .await?;
        BreakerState::from_answer(answer)
    }

    /// Counts a failure (or disables the key, with `disabled` as the reason) and returns
    /// the breaker's state after it.
    pub async fn breaker_failed(
        &self,
        channel_id: i64,
        key: u64,
        limits: BreakerLimits,
        retry_after: Option<Duration>,
        disabled: Option<&str>,
    ) -> Result<BreakerState, SharedError> {
        let (state, failures) = self.breaker_keys(channel_id, key);
        let mut connection = self.connection();
        let answer = FAILED
            .key(state)
            .key(failures)
            .arg(limits.threshold)
            .arg(millis(limits.window))
            .arg(millis(limits.cooldown))
            .arg(retry_after.map_or(0, millis))
            .arg(disabled.unwrap_or_default())
            .arg(DISABLED_TTL_MS)
            .arg(self.breakers_channel())
            .arg(format!("{channel_id} {key}"))
            .invoke_async(&mut connection)
            .await?;
        BreakerState::from_answer(answer)
    }

    /// Closes the breaker after a success (a probe's, or a passing channel test's).
    pub async fn breaker_reset(&self, channel_id: i64, key: u64) -> Result<(), SharedError> {
        let (state, failures) = self.breaker_keys(channel_id, key);
        let mut connection = self.connection();
        let _: i64 = RESET
            .key(state)
            .key(failures)
            .arg(self.breakers_channel())
            .arg(format!("{channel_id} {key}"))
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }

    /// The states of a channel's keys, in order (never `Probe`).
    pub async fn breaker_views(
        &self,
        channel_id: i64,
        keys: &[u64],
    ) -> Result<Vec<BreakerState>, SharedError> {
        let mut invocation = VIEW.prepare_invoke();
        for key in keys {
            invocation.key(self.breaker_keys(channel_id, *key).0);
        }
        let mut connection = self.connection();
        let answers: Vec<(i64, i64, String)> = invocation.invoke_async(&mut connection).await?;
        if answers.len() != keys.len() {
            return Err(SharedError::Protocol(format!(
                "breaker views: {} for {} keys",
                answers.len(),
                keys.len()
            )));
        }
        answers.into_iter().map(BreakerState::from_answer).collect()
    }

    /// The (channel, key) pairs Redis holds a breaker for: what an instance must ask
    /// about after it (re)subscribed, having missed notices meanwhile.
    pub async fn breakers_known(&self) -> Result<Vec<(i64, u64)>, SharedError> {
        let pattern = self.key(format_args!("br:*"));
        let prefix = self.key(format_args!("br:"));
        let mut connection = self.connection();
        let mut cursor = 0u64;
        let mut known = Vec::new();
        loop {
            let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut connection)
                .await?;
            known.extend(names.iter().filter_map(|name| {
                let (channel, key) = name.strip_prefix(&prefix)?.split_once(':')?;
                Some((channel.parse().ok()?, key.parse().ok()?))
            }));
            if next == 0 {
                return Ok(known);
            }
            cursor = next;
        }
    }

    /// Hands every breaker notice to `on_notice`, and calls `resync` after each
    /// (re)subscription: notices published while unsubscribed are lost.
    pub fn spawn_breaker_listener(
        self: &Arc<Self>,
        resync: impl Fn() + Send + Sync + 'static,
        on_notice: impl Fn(BreakerNotice) + Send + Sync + 'static,
    ) {
        self.spawn_listener(self.breakers_channel(), resync, move |payload| {
            if let Some(notice) = BreakerNotice::parse(&payload) {
                on_notice(notice);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse_with_reasons_that_hold_spaces() {
        assert_eq!(
            BreakerNotice::parse("7 123 3 0 upstream rejected this key (HTTP 401): no"),
            Some(BreakerNotice {
                channel_id: 7,
                key: 123,
                state: BreakerState::Disabled {
                    reason: "upstream rejected this key (HTTP 401): no".into()
                }
            })
        );
        assert_eq!(
            BreakerNotice::parse("7 123 2 1500 ").map(|n| n.state),
            Some(BreakerState::Open {
                remaining: Duration::from_millis(1500)
            })
        );
        assert_eq!(
            BreakerNotice::parse("7 1 0 0 ").map(|n| n.state),
            Some(BreakerState::Closed { recent_failures: 0 })
        );
        assert_eq!(BreakerNotice::parse("7 x 0 0 "), None);
        assert_eq!(BreakerNotice::parse("7 1 9 0 "), None, "unknown code");
        assert_eq!(BreakerNotice::parse(""), None);
    }
}
