//! The shared backend in Redis: every simulated process gets books over one Redis (the
//! gateway's `shared::SharedState`, its real Lua scripts), so reservations are decided
//! across instances, and the driver can fail what Redis does: an instance dying with
//! holds, Redis losing its data, a money script lost before or after Redis ran it.
//!
//! Time is the driver's: the lease is an hour, heartbeats run when the schedule says,
//! and a lease "expires" when the driver deletes the liveness key (`expire`), so a seed
//! replays the same run. Redis is a server of the run's own (`ScratchRedis`), or a
//! private key prefix on a given one.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backend::SharedState;
use crate::ledger::books::Books;
use crate::shared::money::Account;
use crate::shared::{Loss, MoneyFaults, Tuning};

/// Long enough that no lease ends by the clock during a run.
const LEASE: Duration = Duration::from_secs(3600);

/// A `redis-server` of one run (no persistence), killed with it.
pub struct ScratchRedis {
    child: Child,
    pub url: String,
}

impl ScratchRedis {
    /// Starts one on a free port; fails with the reason when there is no binary.
    pub fn start() -> Result<ScratchRedis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let mut server = ScratchRedis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                server.stop();
                return Err(format!("redis-server did not listen on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn stop(&mut self) {
        // Already gone is fine: only the process's exit matters here.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ScratchRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The loss the driver armed: the next money script of any process is lost there
/// (before Redis runs it, or its reply after).
#[derive(Default)]
pub struct LostScripts {
    /// 0: none armed; else `code(loss)`.
    armed: AtomicU8,
    requests: AtomicU64,
    replies: AtomicU64,
}

fn code(at: Loss) -> u8 {
    match at {
        Loss::Request => 1,
        Loss::Reply => 2,
    }
}

impl MoneyFaults for LostScripts {
    fn lose(&self, at: Loss) -> bool {
        let taken = self
            .armed
            .compare_exchange(code(at), 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if taken {
            let count = match at {
                Loss::Request => &self.requests,
                Loss::Reply => &self.replies,
            };
            count.fetch_add(1, Ordering::SeqCst);
        }
        taken
    }
}

/// One money hash as Redis holds it, read whole.
#[derive(Debug, Default)]
pub struct MoneyHash {
    /// The database amount Redis took, and its version.
    pub amount: Option<(i128, i64)>,
    /// Holds per instance id, of live instances only (a dead one's do not count).
    pub live_holds: BTreeMap<String, i128>,
    /// Whether it still has a hold of an instance whose lease ended: the next admission
    /// drops it and forgets the amount (`shared/money.rs`).
    pub ended_holds: bool,
}

impl MoneyHash {
    pub fn held(&self) -> i128 {
        self.live_holds.values().sum()
    }
}

pub struct Redis {
    url: String,
    prefix: String,
    instances: usize,
    connection: Mutex<redis::Connection>,
    losses: Arc<LostScripts>,
    /// The run's own server, stopped when this is dropped.
    server: Option<ScratchRedis>,
}

impl Redis {
    /// `instances` processes over a Redis server of this run's own.
    pub fn start(instances: usize) -> Result<Redis, String> {
        let server = ScratchRedis::start()?;
        let mut redis = Redis::connect(&server.url, instances)?;
        redis.server = Some(server);
        Ok(redis)
    }

    /// `instances` processes over the Redis at `url`, under a prefix of this run's own
    /// (the keys are removed after it).
    pub fn connect(url: &str, instances: usize) -> Result<Redis, String> {
        let client = redis::Client::open(url).map_err(|e| format!("{url}: {e}"))?;
        let connection = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(Redis {
            url: url.to_string(),
            prefix: format!("th-sim-{}:", uuid::Uuid::new_v4().simple()),
            instances: instances.max(1),
            connection: Mutex::new(connection),
            losses: Arc::default(),
            server: None,
        })
    }

    fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, String> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        command
            .query(&mut *connection)
            .map_err(|e| format!("redis: {e}"))
    }

    /// Loses the next money script any process sends, at `at`.
    pub fn arm_loss(&self, at: Loss) {
        self.losses.armed.store(code(at), Ordering::SeqCst);
    }

    /// Takes back a loss no script has met yet (an audit's rebuild is not to meet it).
    pub fn disarm(&self) {
        self.losses.armed.store(0, Ordering::SeqCst);
    }

    /// Scripts lost so far: (before Redis ran them, after).
    pub fn lost(&self) -> (u64, u64) {
        (
            self.losses.requests.load(Ordering::SeqCst),
            self.losses.replies.load(Ordering::SeqCst),
        )
    }

    /// What a restarted Redis without persistence, or a FLUSHALL, leaves of this
    /// deployment: nothing (liveness keys, epoch, limits and money hashes alike).
    pub fn flush(&self) -> Result<u64, String> {
        let keys = self.keys()?;
        if !keys.is_empty() {
            self.query::<()>(redis::cmd("DEL").arg(&keys))?;
        }
        Ok(keys.len() as u64)
    }

    fn keys(&self) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let (next, batch): (u64, Vec<String>) = self.query(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{}*", self.prefix))
                    .arg("COUNT")
                    .arg(1000),
            )?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// A dead instance's lease runs out: its liveness key is gone.
    pub fn expire(&self, instance: &str) -> Result<(), String> {
        self.query(redis::cmd("DEL").arg(format!("{}inst:{instance}", self.prefix)))
    }

    /// One lease passed since Redis lost its data: paid admissions resume.
    pub fn end_settling(&self) -> Result<(), String> {
        self.query(redis::cmd("DEL").arg(format!("{}settling", self.prefix)))
    }

    /// Reads one money hash and which of its holds count.
    pub fn money(&self, account: Account) -> Result<MoneyHash, String> {
        let key = match account {
            Account::User(id) => format!("{}m:u:{id}", self.prefix),
            Account::Key(id) => format!("{}m:k:{id}", self.prefix),
        };
        let fields: BTreeMap<String, String> = self.query(redis::cmd("HGETALL").arg(&key))?;
        let number = |text: &String| {
            text.parse::<i128>()
                .map_err(|e| format!("{key}: {text}: {e}"))
        };
        let mut hash = MoneyHash::default();
        if let (Some(amount), Some(version)) = (fields.get("amount"), fields.get("version")) {
            let version = version
                .parse::<i64>()
                .map_err(|e| format!("{key}: version {version}: {e}"))?;
            hash.amount = Some((number(amount)?, version));
        }
        for (field, value) in &fields {
            let Some(instance) = field.strip_prefix("h:") else {
                continue;
            };
            let alive: bool =
                self.query(redis::cmd("EXISTS").arg(format!("{}inst:{instance}", self.prefix)))?;
            if alive {
                hash.live_holds.insert(instance.to_string(), number(value)?);
            } else {
                hash.ended_holds = true;
            }
        }
        Ok(hash)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.server.is_none()
            && let Err(error) = self.flush()
        {
            eprintln!("could not remove the simulation's Redis keys: {error}");
        }
    }
}

impl SharedState for Redis {
    fn name(&self) -> &'static str {
        "Redis shared state"
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn books(&self, runtime: &tokio::runtime::Runtime) -> Result<Arc<Books>, String> {
        let faults: Arc<dyn MoneyFaults> = self.losses.clone();
        let tuning = Tuning {
            lease: LEASE,
            faults: Some(faults),
        };
        let shared = runtime
            .block_on(crate::shared::SharedState::connect_tuned(
                &self.url,
                &self.prefix,
                tuning,
            ))
            .map_err(|e| format!("redis: {e}"))?;
        Ok(Arc::new(Books::new(Some(shared))))
    }

    fn redis(&self) -> Option<&Redis> {
        Some(self)
    }
}
