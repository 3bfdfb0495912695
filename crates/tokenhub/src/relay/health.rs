//! Channel health: a circuit breaker per channel, and its latency.
//!
//! A channel that fails `threshold` times within `window` is opened (skipped) for
//! `cooldown`; after it, one request probes it (half-open): success closes the circuit,
//! failure opens it again. An upstream `Retry-After` opens it at least that long. An
//! upstream that rejects the channel's own credential (401/403) is disabled until the
//! configuration is reloaded: retrying a wrong key only burns time.
//!
//! State is per gateway process, behind this one type, so a shared (Redis) version can
//! replace it for several nodes without touching routing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Whether a channel may be called now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Healthy: call it.
    Closed,
    /// Cooldown over: this one request may probe it.
    Probe,
    /// Skip it until then.
    Open { until: Instant },
    /// Its credential was rejected; skip it until the configuration changes.
    Disabled { reason: String },
}

impl Admission {
    pub fn callable(&self) -> bool {
        matches!(self, Admission::Closed | Admission::Probe)
    }
}

#[derive(Debug, Default)]
struct ChannelHealth {
    recent_failures: VecDeque<Instant>,
    open_until: Option<Instant>,
    /// When the current probe was handed out. A probe whose request vanished (client
    /// gone mid-attempt) goes stale after a cooldown, so the channel is not stuck open.
    probing_since: Option<Instant>,
    disabled: Option<String>,
    ewma_latency_ms: Option<f64>,
    successes: u64,
    failures: u64,
}

/// A snapshot of one channel's health, for operators.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HealthReport {
    pub channel_id: i64,
    pub state: &'static str,
    pub cooldown_remaining_ms: Option<u64>,
    pub disabled_reason: Option<String>,
    pub ewma_latency_ms: Option<f64>,
    pub successes: u64,
    pub failures: u64,
}

#[derive(Debug, Default)]
pub struct Health {
    policy: BreakerPolicy,
    channels: Mutex<HashMap<i64, ChannelHealth>>,
}

/// Exported only on transitions, so the request path pays nothing while a channel is healthy.
fn set_circuit_gauge(channel_id: i64, open: bool) {
    metrics::gauge!("tokenhub_channel_circuit_open", "channel_id" => channel_id.to_string())
        .set(if open { 1.0 } else { 0.0 });
}

/// Weight of the newest latency sample in the moving average.
const EWMA_ALPHA: f64 = 0.2;

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

    /// Decides, and records a probe when it hands one out (only one at a time).
    pub fn admit(&self, channel_id: i64, now: Instant) -> Admission {
        let mut channels = self.channels();
        let Some(health) = channels.get_mut(&channel_id) else {
            return Admission::Closed;
        };
        if let Some(reason) = &health.disabled {
            return Admission::Disabled {
                reason: reason.clone(),
            };
        }
        let probe_live = health
            .probing_since
            .is_some_and(|since| now.duration_since(since) < self.policy.cooldown);
        match health.open_until {
            None => Admission::Closed,
            Some(until) if now < until => Admission::Open { until },
            Some(until) if probe_live => Admission::Open { until },
            Some(_) => {
                health.probing_since = Some(now);
                Admission::Probe
            }
        }
    }

    pub fn succeeded(&self, channel_id: i64, latency: Duration) {
        let mut channels = self.channels();
        let health = channels.entry(channel_id).or_default();
        health.successes += 1;
        if health.open_until.is_some() {
            set_circuit_gauge(channel_id, false);
        }
        health.open_until = None;
        health.probing_since = None;
        health.recent_failures.clear();
        let sample = latency.as_secs_f64() * 1000.0;
        health.ewma_latency_ms = Some(
            health
                .ewma_latency_ms
                .map_or(sample, |avg| avg + EWMA_ALPHA * (sample - avg)),
        );
    }

    /// Records a failed attempt. Client mistakes (not retryable) say nothing about the channel.
    pub fn failed(&self, channel_id: i64, failure: &UpstreamFailure, now: Instant) {
        if !failure.retryable() {
            return;
        }
        let mut channels = self.channels();
        let health = channels.entry(channel_id).or_default();
        health.failures += 1;
        if matches!(failure.kind, FailureKind::Status(401 | 403)) {
            health.disabled = Some(format!(
                "upstream rejected the channel's credential: {}",
                failure.message
            ));
            set_circuit_gauge(channel_id, true);
            return;
        }
        let was_probing = health.probing_since.take().is_some();
        health.recent_failures.push_back(now);
        while health
            .recent_failures
            .front()
            .is_some_and(|at| now.duration_since(*at) > self.policy.window)
        {
            health.recent_failures.pop_front();
        }
        let tripped = was_probing || health.recent_failures.len() >= self.policy.threshold;
        let mut until = tripped.then(|| now + self.policy.cooldown);
        if let Some(wait) = failure.retry_after {
            until = until.max(Some(now + wait));
        }
        if let Some(until) = until {
            if health.open_until.is_none() {
                set_circuit_gauge(channel_id, true);
            }
            health.open_until = health.open_until.max(Some(until));
        }
    }

    /// Forgets disabled credentials (the configuration changed; the key may be fixed).
    pub fn clear_disabled(&self) {
        for health in self.channels().values_mut() {
            health.disabled = None;
        }
    }

    pub fn report(&self, channel_id: i64, now: Instant) -> HealthReport {
        let channels = self.channels();
        let health = channels.get(&channel_id);
        let open_until = health
            .and_then(|h| h.open_until)
            .filter(|until| *until > now);
        let state = match health {
            Some(h) if h.disabled.is_some() => "disabled",
            _ if open_until.is_some() => "open",
            Some(h) if h.open_until.is_some() => "half_open",
            _ => "closed",
        };
        HealthReport {
            channel_id,
            state,
            cooldown_remaining_ms: open_until
                .map(|until| until.duration_since(now).as_millis() as u64),
            disabled_reason: health.and_then(|h| h.disabled.clone()),
            ewma_latency_ms: health.and_then(|h| h.ewma_latency_ms),
            successes: health.map_or(0, |h| h.successes),
            failures: health.map_or(0, |h| h.failures),
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

    #[test]
    fn opens_after_threshold_in_window_then_probes_once() {
        let health = Health::new(policy());
        let t0 = Instant::now();
        for i in 0..2 {
            health.failed(
                1,
                &failure(FailureKind::Status(500)),
                t0 + Duration::from_secs(i),
            );
        }
        assert_eq!(
            health.admit(1, t0 + Duration::from_secs(2)),
            Admission::Closed
        );
        health.failed(
            1,
            &failure(FailureKind::Connect),
            t0 + Duration::from_secs(2),
        );
        assert!(matches!(
            health.admit(1, t0 + Duration::from_secs(3)),
            Admission::Open { .. }
        ));
        assert_eq!(health.report(1, t0 + Duration::from_secs(3)).state, "open");
        let after = t0 + Duration::from_secs(8);
        assert_eq!(health.admit(1, after), Admission::Probe);
        assert!(
            matches!(health.admit(1, after), Admission::Open { .. }),
            "one probe at a time"
        );
        health.succeeded(1, Duration::from_millis(40));
        assert_eq!(health.admit(1, after), Admission::Closed);
        assert_eq!(health.report(1, after).ewma_latency_ms, Some(40.0));
    }

    #[test]
    fn a_failed_probe_reopens_and_old_failures_leave_the_window() {
        let health = Health::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            health.failed(1, &failure(FailureKind::Timeout), t0);
        }
        let later = t0 + Duration::from_secs(6);
        assert_eq!(health.admit(1, later), Admission::Probe);
        health.failed(1, &failure(FailureKind::Timeout), later);
        assert!(matches!(
            health.admit(1, later + Duration::from_secs(1)),
            Admission::Open { .. }
        ));

        let spaced = Health::new(policy());
        for i in 0..5 {
            spaced.failed(
                2,
                &failure(FailureKind::Status(502)),
                t0 + Duration::from_secs(20 * i),
            );
        }
        assert_eq!(
            spaced.admit(2, t0 + Duration::from_secs(81)),
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
        health.failed(1, &limited, t0);
        assert!(matches!(
            health.admit(1, t0 + Duration::from_secs(30)),
            Admission::Open { .. }
        ));
        health.failed(2, &failure(FailureKind::Status(401)), t0);
        assert!(matches!(health.admit(2, t0), Admission::Disabled { .. }));
        health.clear_disabled();
        assert_eq!(health.admit(2, t0), Admission::Closed);
        health.failed(3, &failure(FailureKind::Status(400)), t0);
        assert_eq!(
            health.report(3, t0).failures,
            0,
            "client mistakes do not count against a channel"
        );
    }
}
