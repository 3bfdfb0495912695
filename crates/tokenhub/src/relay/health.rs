//! Channel health: a circuit breaker per (channel, upstream key), the keys' turn, and the
//! channel's latency.
//!
//! A key that fails `threshold` times within `window` is opened (skipped) for `cooldown`;
//! after it, one request probes it (half-open): success closes the circuit, failure opens
//! it again. An upstream `Retry-After` opens it at least that long. A key the upstream
//! rejects (401/403) is disabled: retrying a wrong key only burns time. It stays disabled
//! until the operator replaces it (a new text is a new key) or a channel test passes with
//! it. A channel is unusable only when none of its keys may be called.
//!
//! Keys are identified by `UpstreamKey::id` (a fingerprint of their text), so editing a
//! channel's other keys keeps each key's state. A channel without a key has one implicit
//! key, `NO_KEY`.
//!
//! Without Redis the breakers are this process's. With it (`Health::shared`) the breaker
//! state is the deployment's, in Redis (`shared/breakers.rs`), and this type keeps a
//! mirror of it (`health/mirror.rs`): a healthy key is called without asking Redis; a key
//! that failed lately anywhere, or whose cooldown is over, is asked about before each
//! call. Counters and latency stay this instance's.

mod mirror;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::catalog::UpstreamKey;
use crate::fast_map::FastMap;
use crate::providers::{FailureKind, UpstreamFailure};
use crate::shared::SharedState;
use crate::shared::breakers::BreakerState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    pub threshold: usize,
    pub window: Duration,
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            threshold: 5,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
        }
    }
}

/// The key id of a channel that has no key.
pub const NO_KEY: u64 = 0;

/// Whether one key may be called now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Healthy: call it.
    Closed,
    /// Cooldown over: this one request may probe it.
    Probe,
    /// Skip it until then.
    Open { until: Instant },
    /// The upstream rejected it; skip it until it is replaced or passes a channel test.
    Disabled { reason: String },
}

/// Which key of a channel a request should use next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The key at this position of `Channel::keys` (0 for a channel without keys).
    Use(usize),
    /// No untried key may be called now; `until` is when the first cooling one reopens
    /// (`None` when the rest are disabled).
    Unavailable { until: Option<Instant> },
}

/// What the local state says of the next key, before the shared state is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Use(usize),
    /// Only with shared state: Redis decides whether this key may be called.
    Ask(usize),
    Unavailable {
        until: Option<Instant>,
    },
}

#[derive(Debug, Default)]
struct Breaker {
    recent_failures: VecDeque<Instant>,
    open_until: Option<Instant>,
    /// When the current probe was handed out. A probe whose request vanished (client
    /// gone mid-attempt) goes stale after a cooldown, so the key is not stuck open.
    probing_since: Option<Instant>,
    disabled: Option<String>,
    /// With shared state: a failure of this key was seen lately somewhere, so Redis
    /// decides each call until it says the window is clean.
    watched_until: Option<Instant>,
    successes: u64,
    failures: u64,
}

impl Breaker {
    /// Decides, and records a probe when it hands one out (only one at a time).
    fn admit(&mut self, policy: &BreakerPolicy, now: Instant) -> Admission {
        if let Some(reason) = &self.disabled {
            return Admission::Disabled {
                reason: reason.clone(),
            };
        }
        let probe_live = self
            .probing_since
            .is_some_and(|since| now.duration_since(since) < policy.cooldown);
        match self.open_until {
            None => Admission::Closed,
            Some(until) if now < until => Admission::Open { until },
            Some(until) if probe_live => Admission::Open { until },
            Some(_) => {
                self.probing_since = Some(now);
                Admission::Probe
            }
        }
    }

    /// With shared state: whether this call must be decided by Redis (a failure lately,
    /// or the cooldown is over and the probe is the cluster's to hand out).
    /// An open key is skipped here until its cooldown ends, a disabled one until a
    /// notice says otherwise.
    fn needs_shared_decision(&self, now: Instant) -> bool {
        if self.disabled.is_some() {
            return false;
        }
        match self.open_until {
            Some(until) => until <= now,
            None => self.watched_until.is_some_and(|until| until > now),
        }
    }

    /// Anything a success must clear in the shared state too.
    fn is_clean(&self) -> bool {
        self.open_until.is_none() && self.disabled.is_none() && self.watched_until.is_none()
    }

    fn is_open(&self) -> bool {
        self.open_until.is_some() || self.disabled.is_some()
    }

    /// The breaker of one process: counts the failure in the window and opens it at the
    /// threshold, after a failed probe, or for an upstream's `Retry-After`. Returns
    /// whether it was closed and is open now.
    fn trip(&mut self, policy: &BreakerPolicy, failure: &UpstreamFailure, now: Instant) -> bool {
        let was_probing = self.probing_since.take().is_some();
        self.recent_failures.push_back(now);
        while self
            .recent_failures
            .front()
            .is_some_and(|at| now.duration_since(*at) > policy.window)
        {
            self.recent_failures.pop_front();
        }
        let tripped = was_probing || self.recent_failures.len() >= policy.threshold;
        let mut until = tripped.then(|| now + policy.cooldown);
        if let Some(wait) = failure.retry_after {
            until = until.max(Some(now + wait));
        }
        let Some(until) = until else {
            return false;
        };
        let opened = self.open_until.is_none();
        self.open_until = self.open_until.max(Some(until));
        opened
    }

    fn state(&self, now: Instant) -> &'static str {
        match self.open_until {
            _ if self.disabled.is_some() => "disabled",
            Some(until) if until > now => "open",
            Some(_) => "half_open",
            None => "closed",
        }
    }

    fn view(&self, now: Instant) -> KeyState {
        KeyState {
            state: self.state(now),
            cooldown_remaining_ms: self
                .open_until
                .filter(|until| *until > now && self.disabled.is_none())
                .map(|until| until.duration_since(now).as_millis() as u64),
            disabled_reason: self.disabled.clone(),
        }
    }
}

/// One key's breaker for operators, from this process or from the shared state.
#[derive(Clone, Debug, PartialEq)]
struct KeyState {
    state: &'static str,
    cooldown_remaining_ms: Option<u64>,
    disabled_reason: Option<String>,
}

impl KeyState {
    fn of_shared(state: &BreakerState) -> KeyState {
        let (state, cooldown_remaining_ms, disabled_reason) = match state {
            BreakerState::Closed { .. } => ("closed", None, None),
            BreakerState::HalfOpen | BreakerState::Probe => ("half_open", None, None),
            BreakerState::Open { remaining } => ("open", Some(remaining.as_millis() as u64), None),
            BreakerState::Disabled { reason } => ("disabled", None, Some(reason.clone())),
        };
        KeyState {
            state,
            cooldown_remaining_ms,
            disabled_reason,
        }
    }
}

#[derive(Debug, Default)]
struct ChannelHealth {
    /// Position of the key to try first next time: keys are used in turn.
    cursor: usize,
    keys: FastMap<u64, Breaker>,
    ewma_latency_ms: Option<f64>,
    successes: u64,
    failures: u64,
}

/// One key's health, for operators. The key itself is shown masked.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KeyReport {
    pub index: usize,
    pub masked: String,
    pub state: &'static str,
    pub cooldown_remaining_ms: Option<u64>,
    pub disabled_reason: Option<String>,
    pub successes: u64,
    pub failures: u64,
}

/// A snapshot of one channel's health, for operators.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HealthReport {
    pub channel_id: i64,
    /// The channel's usable state: `closed` if any key is, else `half_open`, `open`, and
    /// `disabled` only when every key was rejected.
    pub state: &'static str,
    pub cooldown_remaining_ms: Option<u64>,
    pub disabled_reason: Option<String>,
    pub ewma_latency_ms: Option<f64>,
    pub successes: u64,
    pub failures: u64,
    /// Per key, in the channel's order (empty for a channel without keys).
    pub keys: Vec<KeyReport>,
}

#[derive(Debug, Default)]
pub struct Health {
    policy: BreakerPolicy,
    channels: Mutex<FastMap<i64, ChannelHealth>>,
    /// The deployment's breakers, when Redis is configured.
    shared: Option<Arc<SharedState>>,
    /// After Redis failed to answer, this instance decides alone until then instead of
    /// waiting for Redis on every call.
    shared_down_until: Mutex<Option<Instant>>,
}

/// Exported on this instance's transitions, so the request path pays nothing while a key
/// is healthy.
fn set_circuit_gauge(channel_id: i64, key_index: usize, open: bool) {
    metrics::gauge!(
        "tokenhub_channel_circuit_open",
        "channel_id" => channel_id.to_string(),
        "key" => key_index.to_string()
    )
    .set(if open { 1.0 } else { 0.0 });
}

/// Weight of the newest latency sample in the moving average.
const EWMA_ALPHA: f64 = 0.2;

fn key_id(keys: &[UpstreamKey], index: usize) -> u64 {
    keys.get(index).map_or(NO_KEY, |key| key.id)
}

/// Why a key is disabled, when the upstream rejected it (401/403).
fn rejection(failure: &UpstreamFailure) -> Option<String> {
    match failure.kind {
        FailureKind::Status(status @ (401 | 403)) => Some(format!(
            "upstream rejected this key (HTTP {status}): {}",
            failure.message()
        )),
        _ => None,
    }
}

impl Health {
    pub fn new(policy: BreakerPolicy) -> Health {
        Health {
            policy,
            ..Health::default()
        }
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, FastMap<i64, ChannelHealth>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `change` on one key's breaker (created if new).
    fn with_breaker<T>(
        &self,
        channel_id: i64,
        key: u64,
        change: impl FnOnce(&mut Breaker) -> T,
    ) -> T {
        let mut channels = self.channels();
        change(
            channels
                .entry(channel_id)
                .or_default()
                .keys
                .entry(key)
                .or_default(),
        )
    }

    /// The next key to call, in turn among those that may be called and are not in
    /// `tried` (bit i = position i already used by this request). Without shared state
    /// one lock and no allocation once the channel has been seen; with it, a Redis round
    /// trip only for a key that failed lately or whose cooldown is over.
    pub async fn pick(
        &self,
        channel_id: i64,
        keys: &[UpstreamKey],
        tried: u64,
        now: Instant,
    ) -> Pick {
        match &self.shared {
            Some(shared) => self.pick_shared(shared, channel_id, keys, tried, now).await,
            None => match self.next(channel_id, keys, tried, now, false) {
                // Without shared state nothing is asked.
                Next::Use(index) | Next::Ask(index) => Pick::Use(index),
                Next::Unavailable { until } => Pick::Unavailable { until },
            },
        }
    }

    /// What this process knows of the next key; `ask` lets it defer to Redis.
    fn next(
        &self,
        channel_id: i64,
        keys: &[UpstreamKey],
        tried: u64,
        now: Instant,
        ask: bool,
    ) -> Next {
        let count = keys.len().clamp(1, 64);
        let mut channels = self.channels();
        let health = match channels.get_mut(&channel_id) {
            Some(health) => health,
            // Never seen and a single key: nothing to rotate, nothing to look up.
            None if count == 1 => {
                return if tried & 1 == 0 {
                    Next::Use(0)
                } else {
                    Next::Unavailable { until: None }
                };
            }
            None => channels.entry(channel_id).or_default(),
        };
        let start = health.cursor % count;
        let mut until: Option<Instant> = None;
        for step in 0..count {
            let index = (start + step) % count;
            if tried & (1 << index) != 0 {
                continue;
            }
            let breaker = health.keys.get_mut(&key_id(keys, index));
            if ask
                && breaker
                    .as_ref()
                    .is_some_and(|b| b.needs_shared_decision(now))
            {
                health.cursor = index + 1;
                return Next::Ask(index);
            }
            let admission = breaker.map_or(Admission::Closed, |breaker| {
                breaker.admit(&self.policy, now)
            });
            match admission {
                Admission::Closed | Admission::Probe => {
                    health.cursor = index + 1;
                    return Next::Use(index);
                }
                Admission::Open { until: reopens } => {
                    until = Some(until.map_or(reopens, |u| u.min(reopens)));
                }
                Admission::Disabled { .. } => {}
            }
        }
        Next::Unavailable { until }
    }

    /// Whether one key may be called now, as this process alone decides (a probe is
    /// handed out like in `pick`).
    pub fn admit(&self, channel_id: i64, key: u64, now: Instant) -> Admission {
        let mut channels = self.channels();
        channels
            .get_mut(&channel_id)
            .and_then(|health| health.keys.get_mut(&key))
            .map_or(Admission::Closed, |breaker| {
                breaker.admit(&self.policy, now)
            })
    }

    pub fn succeeded(&self, channel_id: i64, key_index: usize, key: u64, latency: Duration) {
        let mut channels = self.channels();
        let health = channels.entry(channel_id).or_default();
        health.successes += 1;
        let sample = latency.as_secs_f64() * 1000.0;
        health.ewma_latency_ms = Some(
            health
                .ewma_latency_ms
                .map_or(sample, |avg| avg + EWMA_ALPHA * (sample - avg)),
        );
        let breaker = health.keys.entry(key).or_default();
        breaker.successes += 1;
        if breaker.open_until.is_some() {
            set_circuit_gauge(channel_id, key_index, false);
        }
        let was_clean = breaker.is_clean();
        breaker.open_until = None;
        breaker.probing_since = None;
        breaker.watched_until = None;
        breaker.recent_failures.clear();
        // Only a channel test calls a rejected key; its success re-enables the key.
        breaker.disabled = None;
        drop(channels);
        if !was_clean {
            self.reset_shared(channel_id, key);
        }
    }

    /// Records a failed attempt with one key. Client mistakes (not retryable) say nothing
    /// about the channel or the key.
    pub async fn failed(
        &self,
        channel_id: i64,
        key_index: usize,
        key: u64,
        failure: &UpstreamFailure,
        now: Instant,
    ) {
        if !failure.retryable() {
            return;
        }
        {
            let mut channels = self.channels();
            let health = channels.entry(channel_id).or_default();
            health.failures += 1;
            health.keys.entry(key).or_default().failures += 1;
        }
        let rejected = rejection(failure);
        if self
            .fail_shared(
                channel_id,
                key_index,
                key,
                failure,
                rejected.as_deref(),
                now,
            )
            .await
        {
            return;
        }
        let opened = self.with_breaker(channel_id, key, |breaker| match rejected {
            Some(reason) => {
                breaker.disabled = Some(reason);
                true
            }
            None => breaker.trip(&self.policy, failure, now),
        });
        if opened {
            set_circuit_gauge(channel_id, key_index, true);
        }
    }

    /// The channel's health with each of `keys` (its current keys, from the snapshot).
    /// With shared state the breakers' states are the deployment's (this process's when
    /// Redis does not answer); counters and latency are this instance's.
    pub async fn report(
        &self,
        channel_id: i64,
        keys: &[UpstreamKey],
        now: Instant,
    ) -> HealthReport {
        let ids: Vec<u64> = if keys.is_empty() {
            vec![NO_KEY]
        } else {
            keys.iter().map(|key| key.id).collect()
        };
        let shared = self.shared_views(channel_id, &ids).await;
        let channels = self.channels();
        let health = channels.get(&channel_id);
        let idle = Breaker::default();
        let breaker_of = |id: u64| health.and_then(|h| h.keys.get(&id)).unwrap_or(&idle);
        let states: Vec<KeyState> = match shared {
            Some(views) => views.iter().map(KeyState::of_shared).collect(),
            None => ids.iter().map(|id| breaker_of(*id).view(now)).collect(),
        };
        let key_reports: Vec<KeyReport> = keys
            .iter()
            .zip(&states)
            .enumerate()
            .map(|(index, (key, state))| {
                let breaker = breaker_of(key.id);
                KeyReport {
                    index,
                    masked: key.masked.clone(),
                    state: state.state,
                    cooldown_remaining_ms: state.cooldown_remaining_ms,
                    disabled_reason: state.disabled_reason.clone(),
                    successes: breaker.successes,
                    failures: breaker.failures,
                }
            })
            .collect();
        let state = ["closed", "half_open", "open", "disabled"]
            .into_iter()
            .find(|wanted| states.iter().any(|s| s.state == *wanted))
            .unwrap_or("closed");
        let cooldown_remaining_ms = (state == "open")
            .then(|| states.iter().filter_map(|s| s.cooldown_remaining_ms).min())
            .flatten();
        let disabled_reason = (state == "disabled")
            .then(|| states.iter().find_map(|s| s.disabled_reason.clone()))
            .flatten();
        HealthReport {
            channel_id,
            state,
            cooldown_remaining_ms,
            disabled_reason,
            ewma_latency_ms: health.and_then(|h| h.ewma_latency_ms),
            successes: health.map_or(0, |h| h.successes),
            failures: health.map_or(0, |h| h.failures),
            keys: key_reports,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: FailureKind) -> UpstreamFailure {
        UpstreamFailure::new(kind, "boom")
    }

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            threshold: 3,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(5),
        }
    }

    fn keys(count: usize) -> Vec<UpstreamKey> {
        crate::catalog::keys::upstream_keys("c", (0..count).map(|i| format!("key-{i}")).collect())
    }

    #[tokio::test]
    async fn opens_after_threshold_in_window_then_probes_once() {
        let health = Health::new(policy());
        let t0 = Instant::now();
        for i in 0..2 {
            health
                .failed(
                    1,
                    0,
                    NO_KEY,
                    &failure(FailureKind::Status(500)),
                    t0 + Duration::from_secs(i),
                )
                .await;
        }
        assert_eq!(
            health.admit(1, NO_KEY, t0 + Duration::from_secs(2)),
            Admission::Closed
        );
        health
            .failed(
                1,
                0,
                NO_KEY,
                &failure(FailureKind::Connect),
                t0 + Duration::from_secs(2),
            )
            .await;
        assert!(matches!(
            health.admit(1, NO_KEY, t0 + Duration::from_secs(3)),
            Admission::Open { .. }
        ));
        assert_eq!(
            health
                .report(1, &[], t0 + Duration::from_secs(3))
                .await
                .state,
            "open"
        );
        let after = t0 + Duration::from_secs(8);
        assert_eq!(
            health.pick(1, &[], 0, after).await,
            Pick::Use(0),
            "the probe"
        );
        assert!(
            matches!(
                health.pick(1, &[], 0, after).await,
                Pick::Unavailable { .. }
            ),
            "one probe at a time"
        );
        health.succeeded(1, 0, NO_KEY, Duration::from_millis(40));
        assert_eq!(health.admit(1, NO_KEY, after), Admission::Closed);
        assert_eq!(
            health.report(1, &[], after).await.ewma_latency_ms,
            Some(40.0)
        );
    }

    #[tokio::test]
    async fn a_failed_probe_reopens_and_old_failures_leave_the_window() {
        let health = Health::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            health
                .failed(1, 0, NO_KEY, &failure(FailureKind::Timeout), t0)
                .await;
        }
        let later = t0 + Duration::from_secs(6);
        assert_eq!(health.admit(1, NO_KEY, later), Admission::Probe);
        health
            .failed(1, 0, NO_KEY, &failure(FailureKind::Timeout), later)
            .await;
        assert!(matches!(
            health.admit(1, NO_KEY, later + Duration::from_secs(1)),
            Admission::Open { .. }
        ));

        let spaced = Health::new(policy());
        for i in 0..5 {
            spaced
                .failed(
                    2,
                    0,
                    NO_KEY,
                    &failure(FailureKind::Status(502)),
                    t0 + Duration::from_secs(20 * i),
                )
                .await;
        }
        assert_eq!(
            spaced.admit(2, NO_KEY, t0 + Duration::from_secs(81)),
            Admission::Closed,
            "failures far apart never trip it"
        );
    }

    #[tokio::test]
    async fn retry_after_and_bad_credentials() {
        let health = Health::new(policy());
        let t0 = Instant::now();
        let mut limited = failure(FailureKind::Status(429));
        limited.retry_after = Some(Duration::from_secs(60));
        health.failed(1, 0, NO_KEY, &limited, t0).await;
        assert!(matches!(
            health.admit(1, NO_KEY, t0 + Duration::from_secs(30)),
            Admission::Open { .. }
        ));
        health
            .failed(2, 0, NO_KEY, &failure(FailureKind::Status(401)), t0)
            .await;
        assert!(matches!(
            health.admit(2, NO_KEY, t0),
            Admission::Disabled { .. }
        ));
        health.succeeded(2, 0, NO_KEY, Duration::from_millis(5));
        assert_eq!(
            health.admit(2, NO_KEY, t0),
            Admission::Closed,
            "a passing channel test re-enables a rejected key"
        );
        health
            .failed(3, 0, NO_KEY, &failure(FailureKind::Status(400)), t0)
            .await;
        assert_eq!(
            health.report(3, &[], t0).await.failures,
            0,
            "client mistakes do not count against a channel"
        );
    }

    #[tokio::test]
    async fn keys_take_turns_and_skip_the_unhealthy_and_the_tried() {
        let health = Health::new(policy());
        let keys = keys(3);
        let t0 = Instant::now();
        let mut turns = Vec::new();
        for _ in 0..4 {
            turns.push(health.pick(7, &keys, 0, t0).await);
        }
        assert_eq!(
            turns,
            [Pick::Use(0), Pick::Use(1), Pick::Use(2), Pick::Use(0)]
        );
        health
            .failed(7, 1, keys[1].id, &failure(FailureKind::Status(401)), t0)
            .await;
        let mut turns = Vec::new();
        for _ in 0..3 {
            turns.push(health.pick(7, &keys, 0, t0).await);
        }
        assert_eq!(
            turns,
            [Pick::Use(2), Pick::Use(0), Pick::Use(2)],
            "the rejected key is skipped"
        );
        assert_eq!(
            health.pick(7, &keys, 0b101, t0).await,
            Pick::Unavailable { until: None }
        );
        let mut limited = failure(FailureKind::Status(429));
        limited.retry_after = Some(Duration::from_secs(9));
        health.failed(7, 0, keys[0].id, &limited, t0).await;
        assert_eq!(
            health.pick(7, &keys, 0b100, t0).await,
            Pick::Unavailable {
                until: Some(t0 + Duration::from_secs(9))
            }
        );

        let report = health.report(7, &keys, t0).await;
        assert_eq!(report.state, "closed", "key 2 still serves");
        let states: Vec<&str> = report.keys.iter().map(|k| k.state).collect();
        assert_eq!(states, ["open", "disabled", "closed"]);
        assert!(
            report.keys[1]
                .disabled_reason
                .as_deref()
                .unwrap()
                .contains("401")
        );
        assert_eq!(report.keys[0].cooldown_remaining_ms, Some(9000));
        assert_eq!(report.keys[2].masked, "…", "short keys are fully hidden");

        health
            .failed(7, 2, keys[2].id, &failure(FailureKind::Status(403)), t0)
            .await;
        health
            .failed(7, 0, keys[0].id, &failure(FailureKind::Status(401)), t0)
            .await;
        let report = health.report(7, &keys, t0).await;
        assert_eq!(report.state, "disabled", "every key was rejected");
        assert!(report.disabled_reason.is_some());
    }
}
