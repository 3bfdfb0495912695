//! Shared server state: defaults, the request journal and failure counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

/// Server-wide defaults; every field can be overridden per request through
/// the `mock` knobs (see [`crate::Knobs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// Delay before response headers are sent.
    pub ttfb_ms: u64,
    /// Delay between SSE events.
    pub chunk_delay_ms: u64,
    /// Number of content pieces a streamed reply is split into.
    pub chunks: usize,
    /// If set, API endpoints require `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Models listed by `GET /v1/models`.
    pub models: Vec<String>,
    /// Every API request fails as with the `echo_key` knob (its credential repeated in the
    /// error message), also requests the test cannot put a knob in (a channel test).
    pub echo_key: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            ttfb_ms: 0,
            chunk_delay_ms: 0,
            chunks: 4,
            api_key: None,
            models: ["mock-gpt", "mock-mini", "mock-embed"]
                .map(String::from)
                .to_vec(),
            echo_key: false,
        }
    }
}

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Lower-cased header name → value (repeated headers joined by ", ").
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON, or `Null` if it was empty or not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// Convenience for tests: a header value by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Cheaply clonable handle to the state shared by all handlers.
#[derive(Clone)]
pub struct MockState {
    inner: Arc<Inner>,
}

struct Inner {
    defaults: Defaults,
    journal: Mutex<Vec<RecordedRequest>>,
    /// Failures already served per `fail_key`.
    failures: Mutex<HashMap<String, u32>>,
    next_id: AtomicU64,
    /// Flipped to true on shutdown so hanging handlers can finish and the
    /// graceful shutdown does not wait on them forever.
    shutdown: watch::Sender<bool>,
}

/// A poisoned lock only means another handler panicked mid-update; the data
/// (a list or counters) is still usable, so keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MockState {
    pub fn new(defaults: Defaults) -> Self {
        Self {
            inner: Arc::new(Inner {
                defaults,
                journal: Mutex::default(),
                failures: Mutex::default(),
                next_id: AtomicU64::new(1),
                shutdown: watch::Sender::new(false),
            }),
        }
    }

    pub fn defaults(&self) -> &Defaults {
        &self.inner.defaults
    }

    /// Every request received so far (except `/mock/*` control calls).
    pub fn journal(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.journal).clone()
    }

    /// Clears the journal and the failure counters.
    pub fn reset(&self) {
        lock(&self.inner.journal).clear();
        lock(&self.inner.failures).clear();
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        lock(&self.inner.journal).push(request);
    }

    /// Decides whether this request should fail: always without `fail_times`,
    /// else only the first `fail_times` requests with the same `fail_key`.
    pub(crate) fn should_fail(&self, fail_key: &str, fail_times: Option<u32>) -> bool {
        let Some(times) = fail_times else {
            return true;
        };
        let mut failures = lock(&self.inner.failures);
        let served = failures.entry(fail_key.to_owned()).or_insert(0);
        if *served < times {
            *served += 1;
            true
        } else {
            false
        }
    }

    /// Next response id number, unique per server.
    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn trigger_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Resolves once shutdown has been triggered.
    pub(crate) async fn shutdown_signal(&self) {
        let mut rx = self.inner.shutdown.subscribe();
        // Err means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|down| *down).await;
    }
}
