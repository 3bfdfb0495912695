//! State shared by every instance of one deployment, in Redis (`redis_url`).
//!
//! Without `redis_url` none of this exists and every limit, slot and reservation is per
//! process (`relay/limits.rs`, `relay/concurrency.rs`, `ledger/books.rs`), with no await
//! added to the request path. With it, those types hand their decisions to the Lua
//! scripts of this module, each one atomic on the Redis server, so N instances decide
//! as one. Keys, TTLs and the failure policy are in docs/redis.md.
//!
//! Liveness: each instance keeps `<prefix>inst:<id>` alive (TTL `LEASE`, renewed every
//! third of it). Concurrency slots and money held by an instance are tagged with its id
//! and count only while that key exists, so a killed instance's slots and reservations
//! free themselves within one lease.

pub mod breakers;
pub mod changes;
pub mod limits;
pub mod logins;
pub mod money;
pub mod slots;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long an instance's slots and holds outlive its last heartbeat.
pub const LEASE: Duration = Duration::from_secs(3);
/// The longest a request waits for Redis before the shared decision fails (503).
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("the shared state (Redis) is unavailable: {0}")]
    Unavailable(#[from] redis::RedisError),
    #[error("the shared state (Redis) answered unexpectedly: {0}")]
    Protocol(String),
}

/// One instance's handle on the shared state: a self-reconnecting connection, the key
/// namespace and this instance's id.
pub struct SharedState {
    connection: ConnectionManager,
    client: redis::Client,
    prefix: String,
    instance: String,
    /// An update was lost: the next heartbeat writes this instance's holds back.
    dirty: AtomicBool,
    /// The Redis data set this instance last saw (a random id Redis keeps at `epoch`).
    epoch: std::sync::Mutex<String>,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("instance", &self.instance)
            .finish()
    }
}

impl SharedState {
    /// Connects (failing start-up when Redis cannot be reached: a deployment configured
    /// for shared state must not silently run without it) and starts the heartbeat.
    pub async fn connect(url: &str, prefix: &str) -> Result<Arc<SharedState>, SharedError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_with_config(client.clone(), config).await?;
        let shared = Arc::new(SharedState {
            connection,
            client,
            prefix: prefix.to_string(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            dirty: AtomicBool::new(false),
            epoch: std::sync::Mutex::default(),
        });
        shared.beat().await?;
        Ok(shared)
    }

    /// A key in this deployment's namespace.
    pub fn key(&self, name: std::fmt::Arguments<'_>) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// The prefix of the instances' liveness keys (scripts append an instance id).
    fn instances_prefix(&self) -> String {
        self.key(format_args!("inst:"))
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// One round trip, for readiness.
    pub async fn ping(&self) -> Result<(), SharedError> {
        let mut connection = self.connection();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok(())
    }

    /// A connection to run one command on (cheap: a handle on the multiplexed one).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Renews this instance's liveness key and says whether the shared state was lost
    /// since the last beat (Redis restarted or flushed: the epoch changed).
    async fn beat(&self) -> Result<bool, SharedError> {
        let alive = self.key(format_args!("inst:{}", self.instance));
        let epoch_key = self.key(format_args!("epoch"));
        let mut connection = self.connection();
        let epoch: String = BEAT
            .key(alive)
            .key(epoch_key)
            .arg(LEASE.as_millis() as u64)
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .invoke_async(&mut connection)
            .await?;
        let mut seen = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        let lost = !seen.is_empty() && *seen != epoch;
        *seen = epoch;
        Ok(lost)
    }

    /// Keeps this instance alive in Redis; after Redis lost its data, `rebuild` puts back
    /// what this instance holds (its money in flight; slots free themselves).
    pub fn spawn_heartbeat<F, Fut>(self: &Arc<Self>, rebuild: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let shared = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(LEASE / 3);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                match shared.beat().await {
                    Ok(lost) => {
                        let dirty = shared.dirty.swap(false, Ordering::AcqRel);
                        if lost || dirty {
                            tracing::warn!(lost, "rebuilding this instance's shared state");
                            rebuild().await;
                        }
                    }
                    Err(error) => {
                        shared.dirty.store(true, Ordering::Release);
                        tracing::warn!(%error, "Redis heartbeat failed");
                    }
                }
            }
        });
    }
}

/// Renews the instance's liveness key and returns the data set's epoch, setting it to
/// ARGV[2] when missing (first start of the deployment, or Redis lost its data).
static BEAT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'NX')
return redis.call('GET', KEYS[2])
",
    )
});

impl SharedState {
    /// Runs a fire-and-forget update (a release, a settlement's correction) on the
    /// current runtime: callers run in `Drop` or in synchronous settlement code. A lost
    /// update marks the state for a rebuild at the next heartbeat.
    pub fn spawn_update<F>(self: &Arc<Self>, update: F)
    where
        F: std::future::Future<Output = Result<(), SharedError>> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.dirty.store(true, Ordering::Release);
            return;
        };
        let shared = Arc::clone(self);
        runtime.spawn(async move {
            shared.note(update.await);
        });
    }

    /// Logs a failed update and marks the state for a rebuild.
    pub fn note(&self, result: Result<(), SharedError>) {
        if let Err(error) = result {
            tracing::warn!(%error, "shared state update lost; rebuilding at the next heartbeat");
            self.dirty.store(true, Ordering::Release);
        }
    }
}
