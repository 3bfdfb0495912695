//! The local mirror of the deployment's breakers in Redis (`shared/breakers.rs`).
//!
//! The mirror learns from Redis's answers to this instance's calls and from the notices
//! every change publishes; after a (re)subscription it marks every breaker Redis holds as
//! watched, since notices were missed meanwhile. A key the mirror knows nothing bad of is
//! called without asking: a healthy request adds no round trip. A notice arrives within
//! a millisecond or so, so calls that start after another instance's failure was
//! counted ask Redis; what was in flight when a breaker opened still reaches the
//! upstream, as on one instance.
//!
//! Redis unreachable: routing fails open to this process's breaker (the local one, as
//! without Redis) for `SHARED_RETRY` before asking Redis again, so an outage of the
//! breaker store neither refuses traffic nor adds its timeout to every call.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{Admission, Breaker, BreakerPolicy, Health, Next, Pick, key_id, set_circuit_gauge};
use crate::catalog::UpstreamKey;
use crate::providers::UpstreamFailure;
use crate::shared::breakers::{BreakerLimits, BreakerNotice, BreakerState};
use crate::shared::{SharedError, SharedState};

/// How long this instance decides alone after Redis failed to answer a breaker call.
const SHARED_RETRY: Duration = Duration::from_secs(1);

impl Breaker {
    /// Takes Redis's word for this key. Returns `Some(open)` when the key changed
    /// between callable and not.
    fn mirror(
        &mut self,
        state: &BreakerState,
        policy: &BreakerPolicy,
        now: Instant,
    ) -> Option<bool> {
        let was_open = self.is_open();
        let watch = Some(now + policy.window);
        match state {
            BreakerState::Closed { recent_failures } => {
                self.open_until = None;
                self.disabled = None;
                self.probing_since = None;
                self.recent_failures.clear();
                self.watched_until = (*recent_failures > 0).then_some(now + policy.window);
            }
            BreakerState::HalfOpen => {
                self.open_until = Some(now);
                self.watched_until = watch;
            }
            BreakerState::Open { remaining } => {
                self.open_until = Some(now + *remaining);
                self.watched_until = watch;
            }
            BreakerState::Disabled { reason } => self.disabled = Some(reason.clone()),
            BreakerState::Probe => self.watched_until = watch,
        }
        let open = self.is_open();
        (open != was_open).then_some(open)
    }
}

fn admission(state: BreakerState, now: Instant) -> Admission {
    match state {
        BreakerState::Closed { .. } | BreakerState::HalfOpen => Admission::Closed,
        BreakerState::Probe => Admission::Probe,
        BreakerState::Open { remaining } => Admission::Open {
            until: now + remaining,
        },
        BreakerState::Disabled { reason } => Admission::Disabled { reason },
    }
}

impl Health {
    /// The deployment's breakers, shared through Redis; listens for the other
    /// instances' changes.
    pub fn shared(policy: BreakerPolicy, shared: Arc<SharedState>) -> Arc<Health> {
        let health = Arc::new(Health {
            policy,
            shared: Some(shared.clone()),
            ..Health::default()
        });
        let (on_notice, on_subscribed) = (Arc::downgrade(&health), Arc::downgrade(&health));
        let listing = Arc::downgrade(&shared);
        shared.spawn_breaker_listener(
            move || {
                let (health, shared) = (on_subscribed.clone(), listing.clone());
                tokio::spawn(async move { resync(health, shared).await });
            },
            move |notice| {
                if let Some(health) = on_notice.upgrade() {
                    health.apply(&notice, Instant::now());
                }
            },
        );
        health
    }

    fn limits(&self) -> BreakerLimits {
        BreakerLimits {
            threshold: self.policy.threshold,
            window: self.policy.window,
            cooldown: self.policy.cooldown,
        }
    }

    /// The shared state, unless it failed lately.
    fn reachable_shared(&self, now: Instant) -> Option<&Arc<SharedState>> {
        let down = *self
            .shared_down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.shared
            .as_ref()
            .filter(|_| down.is_none_or(|until| until <= now))
    }

    fn shared_failed(&self, error: &SharedError, now: Instant) {
        tracing::warn!(%error, "breaker state in Redis unavailable; this instance decides alone for a second");
        metrics::counter!("tokenhub_shared_state_failures_total").increment(1);
        *self
            .shared_down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now + SHARED_RETRY);
    }

    /// Takes Redis's word for one key, exporting a transition when `key_index` is known.
    fn mirror(
        &self,
        channel_id: i64,
        key_index: Option<usize>,
        key: u64,
        state: &BreakerState,
        now: Instant,
    ) {
        let changed = self.with_breaker(channel_id, key, |b| b.mirror(state, &self.policy, now));
        if let (Some(open), Some(index)) = (changed, key_index) {
            set_circuit_gauge(channel_id, index, open);
        }
    }

    fn apply(&self, notice: &BreakerNotice, now: Instant) {
        self.mirror(notice.channel_id, None, notice.key, &notice.state, now);
    }

    /// `pick` with shared state: keys the mirror doubts are asked about, in turn.
    pub(super) async fn pick_shared(
        &self,
        shared: &SharedState,
        channel_id: i64,
        keys: &[UpstreamKey],
        tried: u64,
        now: Instant,
    ) -> Pick {
        let mut asked = tried;
        let mut until: Option<Instant> = None;
        loop {
            let index = match self.next(channel_id, keys, asked, now, true) {
                Next::Use(index) => return Pick::Use(index),
                Next::Unavailable { until: reopens } => {
                    let until = [until, reopens].into_iter().flatten().min();
                    return Pick::Unavailable { until };
                }
                Next::Ask(index) => index,
            };
            asked |= 1 << index;
            let key = key_id(keys, index);
            match self.ask(shared, channel_id, index, key, now).await {
                Admission::Closed | Admission::Probe => return Pick::Use(index),
                Admission::Open { until: reopens } => {
                    until = Some(until.map_or(reopens, |u| u.min(reopens)));
                }
                Admission::Disabled { .. } => {}
            }
        }
    }

    /// Redis's decision for one key (a probe is handed out to one caller in the
    /// deployment), or this process's when Redis does not answer.
    async fn ask(
        &self,
        shared: &SharedState,
        channel_id: i64,
        index: usize,
        key: u64,
        now: Instant,
    ) -> Admission {
        if self.reachable_shared(now).is_some() {
            match shared.breaker_admit(channel_id, key, self.limits()).await {
                Ok(state) => {
                    self.mirror(channel_id, Some(index), key, &state, now);
                    return admission(state, now);
                }
                Err(error) => self.shared_failed(&error, now),
            }
        }
        self.with_breaker(channel_id, key, |breaker| breaker.admit(&self.policy, now))
    }

    /// Counts a failure in Redis; false when it could not (this process then decides).
    pub(super) async fn fail_shared(
        &self,
        channel_id: i64,
        key_index: usize,
        key: u64,
        failure: &UpstreamFailure,
        rejected: Option<&str>,
        now: Instant,
    ) -> bool {
        let Some(shared) = self.reachable_shared(now) else {
            return false;
        };
        let counted = shared
            .breaker_failed(
                channel_id,
                key,
                self.limits(),
                failure.retry_after,
                rejected,
            )
            .await;
        match counted {
            Ok(state) => {
                self.mirror(channel_id, Some(key_index), key, &state, now);
                true
            }
            Err(error) => {
                self.shared_failed(&error, now);
                false
            }
        }
    }

    /// Closes the key's breaker for the deployment after a success, in the background:
    /// the answer is on its way already.
    pub(super) fn reset_shared(&self, channel_id: i64, key: u64) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(error) = shared.breaker_reset(channel_id, key).await {
                tracing::warn!(%error, channel_id, "breaker reset not recorded in Redis");
            }
        });
    }

    /// The deployment's view of the keys, when there is one and Redis answers.
    pub(super) async fn shared_views(
        &self,
        channel_id: i64,
        keys: &[u64],
    ) -> Option<Vec<BreakerState>> {
        let shared = self.shared.as_ref()?;
        shared
            .breaker_views(channel_id, keys)
            .await
            .inspect_err(|error| {
                tracing::warn!(%error, "breaker state in Redis unavailable; showing this instance's");
            })
            .ok()
    }
}

/// After a (re)subscription: every breaker Redis holds is asked about before its next
/// call, since its notices may have been missed.
async fn resync(health: Weak<Health>, shared: Weak<SharedState>) {
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let known = match shared.breakers_known().await {
        Ok(known) => known,
        Err(error) => {
            tracing::warn!(%error, "cannot list the breakers in Redis");
            return;
        }
    };
    let Some(health) = health.upgrade() else {
        return;
    };
    let watch = Instant::now() + health.policy.window;
    for (channel_id, key) in known {
        health.with_breaker(channel_id, key, |breaker| {
            breaker.watched_until = breaker.watched_until.max(Some(watch));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_asks_redis_only_about_doubtful_keys() {
        let policy = BreakerPolicy::default();
        let now = Instant::now();
        let mut breaker = Breaker::default();
        assert!(!breaker.needs_shared_decision(now), "a clean key is called");

        let failed = BreakerState::Closed { recent_failures: 2 };
        assert_eq!(breaker.mirror(&failed, &policy, now), None);
        assert!(breaker.needs_shared_decision(now), "a failure lately: ask");

        let open = BreakerState::Open {
            remaining: Duration::from_secs(5),
        };
        assert_eq!(breaker.mirror(&open, &policy, now), Some(true));
        assert!(
            !breaker.needs_shared_decision(now + Duration::from_secs(1)),
            "skipped locally while open"
        );
        assert_eq!(
            breaker.admit(&policy, now + Duration::from_secs(1)),
            Admission::Open {
                until: now + Duration::from_secs(5)
            }
        );
        let later = now + Duration::from_secs(6);
        assert!(breaker.needs_shared_decision(later), "the probe is Redis's");

        let clean = BreakerState::Closed { recent_failures: 0 };
        assert_eq!(breaker.mirror(&clean, &policy, later), Some(false));
        assert!(breaker.is_clean());
        assert!(!breaker.needs_shared_decision(later));

        let disabled = BreakerState::Disabled {
            reason: "rejected".into(),
        };
        assert_eq!(breaker.mirror(&disabled, &policy, later), Some(true));
        assert!(!breaker.needs_shared_decision(later), "skipped locally");
    }
}
