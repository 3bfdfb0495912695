//! This instance among others on one database: its heartbeat (the `instances` table),
//! the live peers it sees, and the readiness report behind `/readyz`.
//!
//! Several instances on one database without shared state (Redis) each enforce limits,
//! breakers and concurrency caps alone, so N instances admit N times a key's RPM. That is
//! a deployment mistake, not a failure: it is logged loudly and shown in `/readyz`, but
//! the instance stays ready.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::ledger::writer::LedgerStatus;
use crate::store::{PeerInstance, Store, now_ms};

/// How often an instance beats, and how long a silent peer still counts as live.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
const LIVE_WITHIN: Duration = Duration::from_secs(15);

/// How long `/readyz` waits for the database (and each extra check).
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Instances {
    id: String,
    address: String,
    /// True when limits and health are shared through Redis.
    shared_state: bool,
    started_at: i64,
    peers: Mutex<Vec<PeerInstance>>,
}

impl Instances {
    pub fn new(address: String, shared_state: bool) -> Arc<Instances> {
        let mut id = [0u8; 8];
        rand::fill(&mut id);
        Arc::new(Instances {
            id: hex::encode(id),
            address,
            shared_state,
            started_at: now_ms(),
            peers: Mutex::new(Vec::new()),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Beats once and takes the peers seen; a new count of peers without shared state
    /// is logged as an error.
    pub async fn beat(&self, store: &Store) {
        let seen = store
            .instance_heartbeat(
                &self.id,
                &self.address,
                self.shared_state,
                self.started_at,
                i64::try_from(LIVE_WITHIN.as_millis()).unwrap_or(i64::MAX),
            )
            .await;
        let peers = match seen {
            Ok(peers) => peers,
            Err(error) => {
                tracing::debug!(%error, "instance heartbeat not written");
                return;
            }
        };
        let before = std::mem::replace(&mut *self.lock(), peers.clone()).len();
        if peers.len() != before {
            if let Some(warning) = self.warning_for(&peers) {
                tracing::error!(peers = ?peers.iter().map(|p| &p.address).collect::<Vec<_>>(), "{warning}");
            } else {
                tracing::info!(
                    peers = peers.len(),
                    "other gateway instances on this database"
                );
            }
        }
    }

    /// Beats every `HEARTBEAT_INTERVAL` until `stop`, then removes this instance's row.
    pub fn spawn(self: Arc<Self>, store: Store, stop: CancellationToken) {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(HEARTBEAT_INTERVAL) => self.beat(&store).await,
                }
            }
            let _ = store.instance_gone(&self.id).await;
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PeerInstance>> {
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn warning_for(&self, peers: &[PeerInstance]) -> Option<String> {
        (!self.shared_state && !peers.is_empty()).then(|| {
            format!(
                "{} other gateway instance(s) use this database, but this instance has no shared \
                 state (redis_url): rate limits, quotas' reservations, breakers and concurrency caps \
                 are enforced per instance, so they multiply by the number of instances",
                peers.len()
            )
        })
    }

    /// The `/readyz` detail about instances.
    pub fn view(&self) -> Value {
        let peers = self.lock().clone();
        json!({
            "id": self.id,
            "shared_state": self.shared_state,
            "live_peers": peers.iter().map(|p| &p.address).collect::<Vec<_>>(),
            "warning": self.warning_for(&peers),
        })
    }
}

/// A dependency `/readyz` checks besides the database and the ledger (Redis, once
/// configured): `Err` carries the reason the instance is not ready.
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// Redis, when shared state is configured: not ready while it does not answer.
pub struct SharedStateCheck(pub Arc<crate::shared::SharedState>);

impl ReadinessCheck for SharedStateCheck {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move { self.0.ping().await.map_err(|e| e.to_string()) })
    }
}

/// What `/readyz` looks at.
pub struct Readiness {
    pub store: Store,
    pub ledger: Arc<LedgerStatus>,
    pub instances: Arc<Instances>,
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Readiness {
    /// Whether the instance can serve paid traffic, and the detail of every check.
    pub async fn report(&self) -> (bool, Value) {
        let mut reasons = Vec::new();
        let database = match tokio::time::timeout(CHECK_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(error)) => format!("unreachable: {error}"),
            Err(_) => format!("no answer within {} ms", CHECK_TIMEOUT.as_millis()),
        };
        if database != "ok" {
            reasons.push(format!("database {database}"));
        }
        if self.ledger.spill_full() {
            reasons.push(format!(
                "ledger backlog {} bytes is beyond its bound of {} bytes",
                self.ledger.spilled_bytes(),
                self.ledger.spill_limit()
            ));
        }
        if !self.ledger.writer_running() {
            reasons.push("ledger writer down: it panicked and waits to restart".into());
        }
        let mut checks = serde_json::Map::new();
        for check in &self.checks {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                Ok(Ok(())) => "ok".to_string(),
                Ok(Err(why)) => why,
                Err(_) => format!("no answer within {} ms", CHECK_TIMEOUT.as_millis()),
            };
            if outcome != "ok" {
                reasons.push(format!("{} {outcome}", check.name()));
            }
            checks.insert(check.name().into(), Value::String(outcome));
        }
        let ready = reasons.is_empty();
        let detail = json!({
            "ready": ready,
            "reasons": reasons,
            "database": database,
            "ledger": {
                "backlog_batches": self.ledger.backlog_batches(),
                "spilled_bytes": self.ledger.spilled_bytes(),
                "spill_limit_bytes": self.ledger.spill_limit(),
                "writer_running": self.ledger.writer_running(),
            },
            "checks": checks,
            "instances": self.instances.view(),
        });
        (ready, detail)
    }
}
