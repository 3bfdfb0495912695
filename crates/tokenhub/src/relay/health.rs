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
//! State is per gateway process, behind this one type, so a shared (Redis) version can
//! replace it for several nodes without touching routing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::catalog::UpstreamKey;
use crate::providers::{FailureKind, UpstreamFailure};

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

#[derive(Debug, Default)]
struct Breaker {
    recent_failures: VecDeque<Instant>,
    open_until: Option<Instant>,
    /// When the current probe was handed out. A probe whose request vanished (client
    /// gone mid-attempt) goes stale after a cooldown, so the key is not stuck open.
    probing_since: Option<Instant>,
    disabled: Option<String>,
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

    fn state(&self, now: Instant) -> &'static str {
        match self.open_until {
            _ if self.disabled.is_some() => "disabled",
            Some(until) if until > now => "open",
            Some(_) => "half_open",
            None => "closed",
        }
    }
}

#[derive(Debug, Default)]
struct ChannelHealth {
    /// Position of the key to try first next time: keys are used in turn.
    cursor: usize,
    keys: HashMap<u64, Breaker>,
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
    channels: Mutex<HashMap<i64, ChannelHealth>>,
}

/// Exported only on transitions, so the request path pays nothing while a key is healthy.
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

impl Health {
    pub fn new(policy: BreakerPolicy) -> Health {
        Health {
            policy,
            channels: Mutex::default(),
        }
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<i64, ChannelHealth>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next key to call, in turn among those that may be called and are not in
    /// `tried` (bit i = position i already used by this request). One lock, no allocation
    /// once the channel has been seen.
    pub fn pick(&self, channel_id: i64, keys: &[UpstreamKey], tried: u64, now: Instant) -> Pick {
        let count = keys.len().clamp(1, 64);
        let mut channels = self.channels();
        let health = match channels.get_mut(&channel_id) {
            Some(health) => health,
            // Never seen and a single key: nothing to rotate, nothing to look up.
            None if count == 1 => {
                return if tried & 1 == 0 {
                    Pick::Use(0)
                } else {
                    Pick::Unavailable { until: None }
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
            let admission = health
                .keys
                .get_mut(&key_id(keys, index))
                .map_or(Admission::Closed, |breaker| {
                    breaker.admit(&self.policy, now)
                });
            match admission {
                Admission::Closed | Admission::Probe => {
                    health.cursor = index + 1;
                    return Pick::Use(index);
                }
                Admission::Open { until: reopens } => {
                    until = Some(until.map_or(reopens, |u| u.min(reopens)));
                }
                Admission::Disabled { .. } => {}
            }
        }
        Pick::Unavailable { until }
    }

    /// Whether one key may be called now (a probe is handed out like in `pick`).
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
        breaker.open_until = None;
        breaker.probing_since = None;
        breaker.recent_failures.clear();
        // Only a channel test calls a rejected key; its success re-enables the key.
        breaker.disabled = None;
    }

    /// Records a failed attempt with one key. Client mistakes (not retryable) say nothing
    /// about the channel or the key.
    pub fn failed(
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
        let mut channels = self.channels();
        let health = channels.entry(channel_id).or_default();
        health.failures += 1;
        let breaker = health.keys.entry(key).or_default();
        breaker.failures += 1;
        if matches!(failure.kind, FailureKind::Status(401 | 403)) {
            breaker.disabled = Some(format!(
                "upstream rejected this key (HTTP {}): {}",
                match failure.kind {
                    FailureKind::Status(status) => status,
                    _ => 0,
                },
                failure.message()
            ));
            set_circuit_gauge(channel_id, key_index, true);
            return;
        }
        let was_probing = breaker.probing_since.take().is_some();
        breaker.recent_failures.push_back(now);
        while breaker
            .recent_failures
            .front()
            .is_some_and(|at| now.duration_since(*at) > self.policy.window)
        {
            breaker.recent_failures.pop_front();
        }
        let tripped = was_probing || breaker.recent_failures.len() >= self.policy.threshold;
        let mut until = tripped.then(|| now + self.policy.cooldown);
        if let Some(wait) = failure.retry_after {
            until = until.max(Some(now + wait));
        }
        if let Some(until) = until {
            if breaker.open_until.is_none() {
                set_circuit_gauge(channel_id, key_index, true);
            }
            breaker.open_until = breaker.open_until.max(Some(until));
        }
    }

    /// The channel's health with each of `keys` (its current keys, from the snapshot).
    pub fn report(&self, channel_id: i64, keys: &[UpstreamKey], now: Instant) -> HealthReport {
        let channels = self.channels();
        let health = channels.get(&channel_id);
        let idle = Breaker::default();
        let breaker_of = |id: u64| health.and_then(|h| h.keys.get(&id)).unwrap_or(&idle);
        let remaining = |breaker: &Breaker| {
            breaker
                .open_until
                .filter(|until| *until > now && breaker.disabled.is_none())
                .map(|until| until.duration_since(now).as_millis() as u64)
        };
        let key_reports: Vec<KeyReport> = keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                let breaker = breaker_of(key.id);
                KeyReport {
                    index,
                    masked: key.masked.clone(),
                    state: breaker.state(now),
                    cooldown_remaining_ms: remaining(breaker),
                    disabled_reason: breaker.disabled.clone(),
                    successes: breaker.successes,
                    failures: breaker.failures,
                }
            })
            .collect();
        let breakers: Vec<&Breaker> = if keys.is_empty() {
            vec![breaker_of(NO_KEY)]
        } else {
            keys.iter().map(|key| breaker_of(key.id)).collect()
        };
        let states: Vec<&'static str> = breakers.iter().map(|b| b.state(now)).collect();
        let state = ["closed", "half_open", "open", "disabled"]
            .into_iter()
            .find(|wanted| states.contains(wanted))
            .unwrap_or("closed");
        let cooldown_remaining_ms = (state == "open")
            .then(|| breakers.iter().filter_map(|b| remaining(b)).min())
            .flatten();
        let disabled_reason = (state == "disabled")
            .then(|| breakers.iter().find_map(|b| b.disabled.clone()))
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

    #[test]
    fn opens_after_threshold_in_window_then_probes_once() {
        let health = Health::new(policy());
        let t0 = Instant::now();
        for i in 0..2 {
            health.failed(
                1,
                0,
                NO_KEY,
                &failure(FailureKind::Status(500)),
                t0 + Duration::from_secs(i),
            );
        }
        assert_eq!(
            health.admit(1, NO_KEY, t0 + Duration::from_secs(2)),
            Admission::Closed
        );
        health.failed(
            1,
            0,
            NO_KEY,
            &failure(FailureKind::Connect),
            t0 + Duration::from_secs(2),
        );
        assert!(matches!(
            health.admit(1, NO_KEY, t0 + Duration::from_secs(3)),
            Admission::Open { .. }
        ));
        assert_eq!(
            health.report(1, &[], t0 + Duration::from_secs(3)).state,
            "open"
        );
        let after = t0 + Duration::from_secs(8);
        assert_eq!(health.pick(1, &[], 0, after), Pick::Use(0), "the probe");
        assert!(
            matches!(health.pick(1, &[], 0, after), Pick::Unavailable { .. }),
            "one probe at a time"
        );
        health.succeeded(1, 0, NO_KEY, Duration::from_millis(40));
        assert_eq!(health.admit(1, NO_KEY, after), Admission::Closed);
        assert_eq!(health.report(1, &[], after).ewma_latency_ms, Some(40.0));
    }

    #[test]
    fn a_failed_probe_reopens_and_old_failures_leave_the_window() {
        let health = Health::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            health.failed(1, 0, NO_KEY, &failure(FailureKind::Timeout), t0);
        }
        let later = t0 + Duration::from_secs(6);
        assert_eq!(health.admit(1, NO_KEY, later), Admission::Probe);
        health.failed(1, 0, NO_KEY, &failure(FailureKind::Timeout), later);
        assert!(matches!(
            health.admit(1, NO_KEY, later + Duration::from_secs(1)),
            Admission::Open { .. }
        ));

        let spaced = Health::new(policy());
        for i in 0..5 {
            spaced.failed(
                2,
                0,
                NO_KEY,
                &failure(FailureKind::Status(502)),
                t0 + Duration::from_secs(20 * i),
            );
        }
        assert_eq!(
            spaced.admit(2, NO_KEY, t0 + Duration::from_secs(81)),
            Admission::Closed,
            "failures far apart never trip it"
        );
    }

    #[test]
    fn retry_after_and_bad_credentials() {
        let health = Health::new(policy());
        let t0 = Instant::now();
        let mut limited = failure(FailureKind::Status(429));
        limited.retry_after = Some(Duration::from_secs(60));
        health.failed(1, 0, NO_KEY, &limited, t0);
        assert!(matches!(
            health.admit(1, NO_KEY, t0 + Duration::from_secs(30)),
            Admission::Open { .. }
        ));
        health.failed(2, 0, NO_KEY, &failure(FailureKind::Status(401)), t0);
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
        health.failed(3, 0, NO_KEY, &failure(FailureKind::Status(400)), t0);
        assert_eq!(
            health.report(3, &[], t0).failures,
            0,
            "client mistakes do not count against a channel"
        );
    }

    #[test]
    fn keys_take_turns_and_skip_the_unhealthy_and_the_tried() {
        let health = Health::new(policy());
        let keys = keys(3);
        let t0 = Instant::now();
        let turns: Vec<Pick> = (0..4).map(|_| health.pick(7, &keys, 0, t0)).collect();
        assert_eq!(
            turns,
            [Pick::Use(0), Pick::Use(1), Pick::Use(2), Pick::Use(0)]
        );
        health.failed(7, 1, keys[1].id, &failure(FailureKind::Status(401)), t0);
        let turns: Vec<Pick> = (0..3).map(|_| health.pick(7, &keys, 0, t0)).collect();
        assert_eq!(
            turns,
            [Pick::Use(2), Pick::Use(0), Pick::Use(2)],
            "the rejected key is skipped"
        );
        assert_eq!(
            health.pick(7, &keys, 0b101, t0),
            Pick::Unavailable { until: None }
        );
        let mut limited = failure(FailureKind::Status(429));
        limited.retry_after = Some(Duration::from_secs(9));
        health.failed(7, 0, keys[0].id, &limited, t0);
        assert_eq!(
            health.pick(7, &keys, 0b100, t0),
            Pick::Unavailable {
                until: Some(t0 + Duration::from_secs(9))
            }
        );

        let report = health.report(7, &keys, t0);
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

        health.failed(7, 2, keys[2].id, &failure(FailureKind::Status(403)), t0);
        health.failed(7, 0, keys[0].id, &failure(FailureKind::Status(401)), t0);
        let report = health.report(7, &keys, t0);
        assert_eq!(report.state, "disabled", "every key was rejected");
        assert!(report.disabled_reason.is_some());
    }
}
