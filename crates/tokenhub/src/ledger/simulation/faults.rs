//! The faults injected into the ledger writer through its `WriteFaults` seam, and the
//! count of every fault injected, by kind.
//!
//! Whether a write attempt fails is decided by a hash of the seed, the batch's first
//! request id, its length and the attempt's number, not by the simulation's stream of
//! draws: the writer cuts batches by the clock, and its decisions must not shift the
//! driver's draws (which would make a replay run other operations).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::rng::{hash_text, mix};
use crate::ledger::writer::WriteFaults;
use crate::store::{StoreError, UsageRecord};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A write attempt failed before anything was written (a lost connection).
    CommitFailed,
    /// A write attempt timed out before anything was written.
    CommitTimedOut,
    /// A batch committed but its acknowledgement was lost.
    ReplyLost,
    /// A record the database refuses as data (it ends parked).
    RecordRefused,
    /// The writer task replaced by a new one, the old one draining.
    WriterRestart,
    /// The process died: books, caches, queued and unwritten records gone.
    Crash,
    /// The database stopped answering the writer for a while.
    Outage,
    /// A committed batch delivered to the database again, first and retry alike.
    DuplicateBatch,
    /// With shared state: a crashed instance's lease ended (its holds no longer count).
    LeaseEnded,
    /// With shared state: Redis lost its data (a restart without persistence, a flush).
    RedisFlush,
    /// With shared state: a money script lost before Redis ran it.
    RedisRequestLost,
    /// With shared state: Redis ran a money script and its reply was lost.
    RedisReplyLost,
}

impl FaultKind {
    pub const ALL: [FaultKind; 12] = [
        FaultKind::CommitFailed,
        FaultKind::CommitTimedOut,
        FaultKind::ReplyLost,
        FaultKind::RecordRefused,
        FaultKind::WriterRestart,
        FaultKind::Crash,
        FaultKind::Outage,
        FaultKind::DuplicateBatch,
        FaultKind::LeaseEnded,
        FaultKind::RedisFlush,
        FaultKind::RedisRequestLost,
        FaultKind::RedisReplyLost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::CommitFailed => "commit failed",
            FaultKind::CommitTimedOut => "commit timed out",
            FaultKind::ReplyLost => "reply lost after commit",
            FaultKind::RecordRefused => "record refused (parked)",
            FaultKind::WriterRestart => "writer restart",
            FaultKind::Crash => "process crash",
            FaultKind::Outage => "database outage",
            FaultKind::DuplicateBatch => "duplicate batch delivery",
            FaultKind::LeaseEnded => "dead instance's lease ended",
            FaultKind::RedisFlush => "Redis lost its data",
            FaultKind::RedisRequestLost => "Redis script lost before it ran",
            FaultKind::RedisReplyLost => "Redis reply lost after it ran",
        }
    }
}

/// Rates of the writer's faults, per mille of write attempts.
#[derive(Clone, Copy, Debug)]
pub struct WriterFaultRates {
    pub fail: u64,
    pub lost_reply: u64,
}

pub struct FaultPlan {
    /// Woken when a reply is lost: the process's balance refresh then runs before the
    /// writer's retry, as a reloader's poll may (`Process::start`).
    pub reply_lost: tokio::sync::Notify,
    seed: u64,
    rates: WriterFaultRates,
    outage: AtomicBool,
    state: Mutex<PlanState>,
}

#[derive(Default)]
struct PlanState {
    /// Attempts so far per batch (its first request id and length).
    attempts: HashMap<(String, usize), u32>,
    /// Request ids the database refuses as data.
    refused: HashSet<String>,
    counts: BTreeMap<FaultKind, u64>,
    /// The last batch the database committed, for a duplicate delivery.
    last_committed: Vec<UsageRecord>,
}

impl FaultPlan {
    pub fn new(seed: u64, rates: WriterFaultRates) -> FaultPlan {
        FaultPlan {
            reply_lost: tokio::sync::Notify::new(),
            seed,
            rates,
            outage: AtomicBool::new(false),
            state: Mutex::new(PlanState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn count(&self, kind: FaultKind) {
        *self.state().counts.entry(kind).or_default() += 1;
    }

    pub fn counts(&self) -> BTreeMap<FaultKind, u64> {
        self.state().counts.clone()
    }

    pub fn set_outage(&self, down: bool) {
        self.outage.store(down, Ordering::SeqCst);
    }

    pub fn in_outage(&self) -> bool {
        self.outage.load(Ordering::SeqCst)
    }

    /// Makes the database refuse this request's record as data.
    pub fn refuse(&self, request_id: &str) {
        self.state().refused.insert(request_id.to_string());
        self.count(FaultKind::RecordRefused);
    }

    pub fn is_refused(&self, request_id: &str) -> bool {
        self.state().refused.contains(request_id)
    }

    pub fn last_committed(&self) -> Vec<UsageRecord> {
        self.state().last_committed.clone()
    }

    /// How many attempts in a row a batch starting with this record times out: 1 % of
    /// batches, 1 to 6 attempts (more than the writer's refusals before parking).
    fn stuck_attempts(&self, batch: &[UsageRecord]) -> u32 {
        let first = batch.first().map_or("", |r| r.request_id.as_str());
        let roll = hash_text(self.seed ^ 3, first);
        if roll % 1000 < 10 {
            1 + (roll / 1000 % 6) as u32
        } else {
            0
        }
    }

    /// A number in 0..1000 decided by this batch and attempt alone.
    fn roll(&self, batch: &[UsageRecord], attempt: u32, salt: u64) -> u64 {
        let first = batch.first().map_or("", |r| r.request_id.as_str());
        mix(hash_text(self.seed ^ salt, first) ^ (batch.len() as u64) << 32 ^ u64::from(attempt))
            % 1000
    }
}

impl WriteFaults for FaultPlan {
    fn before_write(&self, batch: &[UsageRecord]) -> Result<(), StoreError> {
        if self.in_outage() {
            return Err(StoreError::Database(sqlx::Error::Io(
                std::io::ErrorKind::ConnectionRefused.into(),
            )));
        }
        let mut state = self.state();
        if let Some(record) = batch.iter().find(|r| state.refused.contains(&r.request_id)) {
            return Err(StoreError::OutOfRange(format!(
                "simulated refusal of request {}",
                record.request_id
            )));
        }
        let first = batch
            .first()
            .map_or(String::new(), |r| r.request_id.clone());
        let attempt = {
            let attempts = state.attempts.entry((first, batch.len())).or_default();
            *attempts += 1;
            *attempts
        };
        let roll = self.roll(batch, attempt, 1);
        if attempt <= self.stuck_attempts(batch) {
            // A commit that keeps timing out, then goes through.
            *state.counts.entry(FaultKind::CommitTimedOut).or_default() += 1;
            return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
        }
        if roll < self.rates.fail {
            let (kind, error) = if roll.is_multiple_of(2) {
                (
                    FaultKind::CommitFailed,
                    sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
                )
            } else {
                (FaultKind::CommitTimedOut, sqlx::Error::PoolTimedOut)
            };
            *state.counts.entry(kind).or_default() += 1;
            return Err(StoreError::Database(error));
        }
        Ok(())
    }

    fn after_commit(&self, batch: &[UsageRecord]) -> Result<(), StoreError> {
        let mut state = self.state();
        let first = batch
            .first()
            .map_or(String::new(), |r| r.request_id.clone());
        let batch_key = (first, batch.len());
        let attempt = state.attempts.get(&batch_key).copied().unwrap_or_default();
        state.last_committed = batch.to_vec();
        if self.roll(batch, attempt, 2) < self.rates.lost_reply {
            // The count stays: the retry is another attempt, with another roll.
            *state.counts.entry(FaultKind::ReplyLost).or_default() += 1;
            self.reply_lost.notify_one();
            return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
        }
        state.attempts.remove(&batch_key);
        Ok(())
    }

    fn database_answers(&self) -> bool {
        !self.in_outage()
    }

    fn retry_delay(&self, _planned: Duration) -> Duration {
        Duration::from_micros(200)
    }
}
