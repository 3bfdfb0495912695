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

#[cfg(test)]
mod rebuild_order;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::ledger::money as ledger_money;

/// How long an instance's slots and holds outlive its last heartbeat.
pub const LEASE: Duration = Duration::from_secs(3);
/// The longest a request waits for Redis before the shared decision fails (503).
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// How one instance's shared state behaves: the gateway runs with `Tuning::default()`;
/// the ledger simulation sets a lease it ends itself and loses replies on purpose.
#[derive(Clone)]
pub struct Tuning {
    /// How long this instance's slots and holds outlive its last heartbeat.
    pub lease: Duration,
    /// Consulted before and after every money script (see `MoneyFaults`).
    pub faults: Option<Arc<dyn MoneyFaults>>,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            lease: LEASE,
            faults: None,
        }
    }
}

/// Where a money script is lost: before Redis ran it, or after (its reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    Request,
    Reply,
}

/// A seam for the simulation: a money script lost on the way to Redis (never applied)
/// or on the way back (applied, its reply lost), as a dropped connection loses them.
pub trait MoneyFaults: Send + Sync {
    /// Whether the script is lost at this point.
    fn lose(&self, at: Loss) -> bool;
}

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
    /// Key and field names every admission sends, made once (see `Names`).
    names: Names,
    /// An update was lost: the next heartbeat writes this instance's holds back.
    dirty: AtomicBool,
    /// The Redis data set this instance last saw (a random id Redis keeps at `epoch`).
    epoch: std::sync::Mutex<String>,
    tuning: Tuning,
    /// Orders the hold changes sent to Redis against a rebuild (`rebuild_holds`).
    holds: HoldOrder,
}

/// The names that do not change for an instance's life.
struct Names {
    /// The id of the Redis data set: missing after Redis lost its data, until a heartbeat.
    epoch: String,
    /// Present for one lease after Redis lost its data (see `BEAT`).
    settling: String,
    /// The prefix of the instances' liveness keys (scripts append an instance id).
    instances: String,
    /// This instance's field in a money hash.
    hold_field: String,
}

impl Names {
    fn new(prefix: &str, instance: &str) -> Names {
        Names {
            epoch: format!("{prefix}epoch"),
            settling: format!("{prefix}settling"),
            instances: format!("{prefix}inst:"),
            hold_field: format!("h:{instance}"),
        }
    }
}

/// How a rebuild of this instance's holds (written back whole, from its books) and the
/// changes it sends one by one (admissions, settlements' corrections) stay in order: a
/// change is sent under a read guard of `gate`, a rebuild writes under its write guard,
/// so no change is on its way while the holds are written back. A correction the books
/// made before the rebuild read them is in the holds written back and is not sent after
/// (`rebuilt_through`); one made after is sent after them. Without this a correction
/// landing just after a rebuild was counted twice, and one just before it was lost.
#[derive(Default)]
struct HoldOrder {
    gate: tokio::sync::RwLock<()>,
    /// Numbers the books' hold changes, taken under the books' lock.
    changes: AtomicU64,
    /// The last change the holds written back included.
    rebuilt_through: AtomicU64,
    /// Background updates spawned and not finished.
    in_flight: AtomicUsize,
    landed: tokio::sync::Notify,
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
        SharedState::connect_tuned(url, prefix, Tuning::default()).await
    }

    /// `connect` with a lease and faults of the caller's (the ledger simulation).
    pub async fn connect_tuned(
        url: &str,
        prefix: &str,
        tuning: Tuning,
    ) -> Result<Arc<SharedState>, SharedError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_with_config(client.clone(), config).await?;
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let shared = Arc::new(SharedState {
            connection,
            client,
            prefix: prefix.to_string(),
            names: Names::new(prefix, &instance),
            instance,
            dirty: AtomicBool::new(false),
            epoch: std::sync::Mutex::default(),
            tuning,
            holds: HoldOrder::default(),
        });
        shared.beat().await?;
        Ok(shared)
    }

    /// A key in this deployment's namespace.
    pub fn key(&self, name: std::fmt::Arguments<'_>) -> String {
        format!("{}{}", self.prefix, name)
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
        let seen = self.epoch.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut connection = self.connection();
        let epoch: String = BEAT
            .key(alive)
            .key(&self.names.epoch)
            .key(&self.names.settling)
            .arg(self.tuning.lease.as_millis() as u64)
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .arg(&seen)
            .invoke_async(&mut connection)
            .await?;
        let lost = !seen.is_empty() && seen != epoch;
        *self.epoch.lock().unwrap_or_else(|e| e.into_inner()) = epoch;
        Ok(lost)
    }

    /// One heartbeat: renews the lease and says whether this instance must write its
    /// holds back (Redis lost its data set, or an update of this instance was lost).
    /// `spawn_heartbeat` runs it every third of the lease; the simulation when it decides.
    pub async fn heartbeat(&self) -> Result<bool, SharedError> {
        match self.beat().await {
            Ok(lost) => Ok(self.dirty.swap(false, Ordering::AcqRel) || lost),
            Err(error) => {
                self.dirty.store(true, Ordering::Release);
                Err(error)
            }
        }
    }

    /// Keeps this instance alive in Redis; after Redis lost its data, `rebuild` puts back
    /// what this instance holds (its money in flight; slots free themselves).
    pub fn spawn_heartbeat<F, Fut>(self: &Arc<Self>, rebuild: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let shared = Arc::downgrade(self);
        let period = self.tuning.lease / 3;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                match shared.heartbeat().await {
                    Ok(true) => {
                        tracing::warn!("rebuilding this instance's shared state");
                        rebuild().await;
                    }
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "Redis heartbeat failed"),
                }
            }
        });
    }
}

/// One background update counted in flight until its task ends (or is dropped).
struct InFlight(Arc<SharedState>);

impl InFlight {
    fn new(shared: Arc<SharedState>) -> InFlight {
        shared.holds.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.holds.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.holds.landed.notify_waiters();
    }
}

/// Renews the instance's liveness key (KEYS[1]) and returns the data set's epoch
/// (KEYS[2]), setting it to ARGV[2] when missing (first start of the deployment, or Redis
/// lost its data). An instance that saw another epoch (ARGV[3]) finds the data lost:
/// money is then `settling` (KEYS[3]) for one lease, while every live instance beats and
/// writes its holds back (`money.rs` admits nothing paid meanwhile).
static BEAT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
if redis.call('SET', KEYS[2], ARGV[2], 'NX') and ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
end
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
            self.note_lost_update();
            return;
        };
        let in_flight = InFlight::new(Arc::clone(self));
        runtime.spawn(async move {
            in_flight.0.note(update.await);
        });
    }

    /// Numbers a change of this instance's holds; `Books` takes it under its lock, with
    /// the change it makes, so the numbers follow the order of the books.
    pub fn next_hold_change(&self) -> u64 {
        self.holds.changes.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The last hold change numbered; read under the books' lock with their holds.
    pub fn hold_changes(&self) -> u64 {
        self.holds.changes.load(Ordering::Acquire)
    }

    /// `spawn_update` for a change of the holds that the books made as change `change`:
    /// sent in order with a rebuild (see `HoldOrder`), and not at all if a rebuild wrote
    /// back holds that include it.
    pub fn spawn_hold_update<F>(self: &Arc<Self>, change: u64, update: F)
    where
        F: std::future::Future<Output = Result<(), SharedError>> + Send + 'static,
    {
        let shared = Arc::clone(self);
        self.spawn_update(async move {
            let _sending = shared.holds.gate.read().await;
            if change <= shared.holds.rebuilt_through.load(Ordering::Acquire) {
                return Ok(());
            }
            update.await
        });
    }

    /// Runs `admit` (an admission sent to Redis and taken into the books) with no
    /// rebuild in between, which would write back holds without what Redis took.
    pub async fn in_order<T>(&self, admit: impl std::future::Future<Output = T>) -> T {
        let _sending = self.holds.gate.read().await;
        admit.await
    }

    /// Writes this instance's holds back (`restore_holds`) with none of its changes on the
    /// way: `holds` reads the books (with the last change they include) once the changes
    /// sent are answered; `reading` gives each account's amount read from the database.
    pub async fn rebuild_holds(
        &self,
        holds: impl FnOnce() -> (Vec<(money::Account, ledger_money::Nanos)>, u64),
        reading: impl Fn(money::Account) -> money::Reading,
    ) -> Result<(), SharedError> {
        let _rebuilding = self.holds.gate.write().await;
        let (holds, through) = holds();
        let restored = self
            .restore_holds(
                holds
                    .into_iter()
                    .map(|(account, held)| (account, held, reading(account))),
            )
            .await;
        // Even after a failure (it marks a rebuild again): the next one includes them too.
        self.holds
            .rebuilt_through
            .fetch_max(through, Ordering::AcqRel);
        restored
    }

    /// Waits until every background update spawned so far has finished (the ledger
    /// simulation's audit compares Redis with the books only then).
    pub async fn updates_landed(&self) {
        loop {
            let landed = self.holds.landed.notified();
            if self.holds.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            landed.await;
        }
    }

    /// Runs one money script, losing it where the simulation's faults say.
    async fn run_money<T: redis::FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, SharedError> {
        self.injected(Loss::Request)?;
        let mut connection = self.connection();
        let answer = script.invoke_async(&mut connection).await?;
        self.injected(Loss::Reply)?;
        Ok(answer)
    }

    fn injected(&self, at: Loss) -> Result<(), SharedError> {
        match &self.tuning.faults {
            Some(faults) if faults.lose(at) => Err(SharedError::Unavailable(
                redis::RedisError::from((redis::ErrorKind::Io, "connection lost (injected)")),
            )),
            _ => Ok(()),
        }
    }

    /// Logs a failed update and marks the state for a rebuild.
    pub fn note(&self, result: Result<(), SharedError>) {
        if let Err(error) = result {
            tracing::warn!(%error, "shared state update lost; rebuilding at the next heartbeat");
            self.note_lost_update();
        }
    }

    /// An update may or may not have reached Redis: the next heartbeat writes this
    /// instance's holds back from its books.
    fn note_lost_update(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}
