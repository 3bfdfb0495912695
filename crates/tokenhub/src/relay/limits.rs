//! Per-key rate limits: requests per minute and tokens per minute.
//!
//! Each limit is a token bucket that holds at most one minute's allowance and refills
//! continuously, so a key may burst up to its limit and then sustains it. A request takes
//! one request and its estimated tokens (prompt + allowed output) at admission; when it
//! settles, the estimate is replaced by the real count, so TPM tracks real usage.
//!
//! In memory per gateway process; with Redis (`shared/limits.rs`) the same buckets are
//! shared by every instance: the relay then takes a key's buckets in the script that
//! also reserves its money (`shared/money.rs`), and the web chat awaits `admit_shared`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::shared::{SharedError, SharedState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
}

/// A refusal, with what OpenAI's `x-ratelimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limited {
    pub kind: LimitKind,
    pub limit: u64,
    pub remaining: u64,
    /// Until enough allowance is back for this request.
    pub retry_after: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    available: f64,
    updated: Instant,
}

impl Bucket {
    fn full(limit: u64, now: Instant) -> Bucket {
        Bucket {
            available: limit as f64,
            updated: now,
        }
    }

    fn refill(&mut self, limit: u64, now: Instant) {
        let per_second = limit as f64 / 60.0;
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.available = (self.available + elapsed * per_second).min(limit as f64);
        self.updated = now;
    }

    fn wait_for(&self, amount: f64, limit: u64) -> Duration {
        let missing = (amount - self.available).max(0.0);
        Duration::from_secs_f64(missing * 60.0 / limit.max(1) as f64)
    }
}

#[derive(Default)]
struct KeyBuckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

#[derive(Default)]
pub struct RateLimits {
    keys: Mutex<HashMap<i64, KeyBuckets>>,
    /// Redis and the bucket family's name there (`key`, `chat`).
    shared: Option<(Arc<SharedState>, &'static str)>,
}

/// Tokens taken from a key's TPM bucket at admission, to be corrected at settlement.
#[derive(Debug, PartialEq, Eq)]
pub struct TokenHold {
    pub key_id: i64,
    pub limit: u64,
    pub estimated: u64,
}

impl RateLimits {
    /// Buckets shared across instances under `scope`, or per process without Redis.
    pub fn new(shared: Option<Arc<SharedState>>, scope: &'static str) -> RateLimits {
        RateLimits {
            keys: Mutex::default(),
            shared: shared.map(|shared| (shared, scope)),
        }
    }

    /// `admit` across instances (only with Redis; without, `admit` decides alone).
    pub async fn admit_shared(
        &self,
        key_id: i64,
        rpm: Option<u64>,
        tpm: Option<u64>,
        tokens: u64,
    ) -> Result<Result<Option<TokenHold>, Limited>, SharedError> {
        let Some((shared, scope)) = &self.shared else {
            return Ok(self.admit(key_id, rpm, tpm, tokens, Instant::now()));
        };
        if rpm.is_none() && tpm.is_none() {
            return Ok(Ok(None));
        }
        Ok(shared
            .admit(scope, key_id, rpm, tpm, tokens)
            .await?
            .map(|()| {
                tpm.map(|limit| TokenHold {
                    key_id,
                    limit,
                    estimated: tokens,
                })
            }))
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<i64, KeyBuckets>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits one request of `tokens` estimated tokens, or says which limit it would break.
    /// Nothing is taken when it is refused.
    pub fn admit(
        &self,
        key_id: i64,
        rpm: Option<u64>,
        tpm: Option<u64>,
        tokens: u64,
        now: Instant,
    ) -> Result<Option<TokenHold>, Limited> {
        if rpm.is_none() && tpm.is_none() {
            return Ok(None);
        }
        let mut keys = self.keys();
        let buckets = keys.entry(key_id).or_default();
        let mut checks = Vec::with_capacity(2);
        if let Some(limit) = rpm {
            let bucket = buckets
                .requests
                .get_or_insert_with(|| Bucket::full(limit, now));
            bucket.refill(limit, now);
            checks.push((LimitKind::Requests, limit, 1.0, *bucket));
        }
        if let Some(limit) = tpm {
            let bucket = buckets
                .tokens
                .get_or_insert_with(|| Bucket::full(limit, now));
            bucket.refill(limit, now);
            // A request larger than a whole minute's allowance could never pass; let it
            // through once the bucket is full rather than refusing it forever.
            let amount = (tokens as f64).min(limit as f64);
            checks.push((LimitKind::Tokens, limit, amount, *bucket));
        }
        for (kind, limit, amount, bucket) in &checks {
            if bucket.available < *amount {
                return Err(Limited {
                    kind: *kind,
                    limit: *limit,
                    remaining: bucket.available.max(0.0) as u64,
                    retry_after: bucket.wait_for(*amount, *limit),
                });
            }
        }
        if let Some(bucket) = buckets.requests.as_mut().filter(|_| rpm.is_some()) {
            bucket.available -= 1.0;
        }
        let hold = tpm.map(|limit| TokenHold {
            key_id,
            limit,
            estimated: tokens,
        });
        if let Some(bucket) = buckets.tokens.as_mut().filter(|_| tpm.is_some()) {
            bucket.available -= tokens as f64;
        }
        Ok(hold)
    }

    /// Drops the buckets of callers idle for a minute or more. Such buckets have refilled
    /// completely, so forgetting them changes no decision; it bounds memory where callers
    /// come and go (the chat demo's per-address buckets).
    pub fn forget_idle(&self, now: Instant) {
        let idle = |bucket: &Option<Bucket>| {
            bucket
                .is_none_or(|b| now.saturating_duration_since(b.updated) >= Duration::from_secs(60))
        };
        self.keys()
            .retain(|_, buckets| !(idle(&buckets.requests) && idle(&buckets.tokens)));
    }

    /// How many callers have buckets.
    pub fn tracked(&self) -> usize {
        self.keys().len()
    }

    /// Replaces the estimate taken at admission by the tokens actually used.
    pub fn settle(&self, hold: TokenHold, actual: u64) {
        if let Some((shared, scope)) = &self.shared {
            let (update, scope) = (shared.clone(), *scope);
            shared.spawn_update(async move { update.correct_tokens(scope, &hold, actual).await });
            return;
        }
        let mut keys = self.keys();
        if let Some(bucket) = keys.get_mut(&hold.key_id).and_then(|b| b.tokens.as_mut()) {
            let corrected = bucket.available + hold.estimated as f64 - actual as f64;
            bucket.available = corrected.min(hold.limit as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_callers_are_forgotten_without_changing_decisions() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        assert!(limits.admit(1, Some(1), None, 0, t0).is_ok());
        assert!(
            limits
                .admit(2, Some(1), None, 0, t0 + Duration::from_secs(30))
                .is_ok()
        );
        limits.forget_idle(t0 + Duration::from_secs(60));
        assert_eq!(limits.tracked(), 1, "key 1 refilled and was dropped");
        assert!(
            limits
                .admit(2, Some(1), None, 0, t0 + Duration::from_secs(60))
                .is_err(),
            "key 2 is still limited"
        );
    }

    #[test]
    fn rpm_allows_a_burst_up_to_the_limit_then_refills() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limits.admit(1, Some(3), None, 0, t0).is_ok());
        }
        let refused = limits.admit(1, Some(3), None, 0, t0).unwrap_err();
        assert_eq!(
            (refused.kind, refused.limit, refused.remaining),
            (LimitKind::Requests, 3, 0)
        );
        assert_eq!(
            refused.retry_after,
            Duration::from_secs(20),
            "one request every 20 s at 3 RPM"
        );
        assert!(
            limits
                .admit(1, Some(3), None, 0, t0 + Duration::from_secs(20))
                .is_ok()
        );
        assert!(
            limits.admit(2, Some(3), None, 0, t0).is_ok(),
            "keys have their own buckets"
        );
    }

    #[test]
    fn tpm_is_corrected_by_actual_usage() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        let hold = limits.admit(1, None, Some(1000), 800, t0).unwrap().unwrap();
        let refused = limits.admit(1, None, Some(1000), 300, t0).unwrap_err();
        assert_eq!((refused.kind, refused.remaining), (LimitKind::Tokens, 200));
        limits.settle(hold, 100);
        assert!(
            limits.admit(1, None, Some(1000), 300, t0).is_ok(),
            "700 tokens came back"
        );
    }

    #[test]
    fn a_refused_request_takes_nothing_and_no_limit_means_no_state() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        assert_eq!(limits.admit(1, None, None, 10, t0), Ok(None));
        assert!(
            limits.admit(1, Some(1), Some(100), 200, t0).is_ok(),
            "oversized requests pass on a full bucket"
        );
        assert!(limits.admit(1, Some(5), Some(100), 50, t0).is_err());
        assert!(limits.keys().get(&1).unwrap().requests.unwrap().available >= 0.0);
    }
}
