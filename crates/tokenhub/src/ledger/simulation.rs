//! The ledger simulation: a seeded, deterministic schedule of random operations and
//! injected faults, driven through the real money path (`Books`, `Settlement`, the
//! `relay::bounds` of a request, the key cache, the change feed's `Reloader`, the
//! `LedgerWriter` and the store on SQLite or PostgreSQL), with the ledger's invariants
//! checked after every step and audited against the database every few hundred.
//!
//! Compiled for tests and with the `simulation` feature (`scripts/simulate.sh`), never
//! into the gateway. `docs/simulation.md` lists the operations, faults and invariants,
//! and how to replay a failing seed.
//!
//! Determinism: every choice of the driver comes from one SplitMix64 stream seeded by
//! `seed`, and the writer's faults are a hash of the seed and the batch (`faults`). The
//! writer still cuts batches by the clock (it waits `BATCH_WINDOW` for company), so a
//! replay runs the same operations and faults on the same requests, in batches that may
//! be cut differently; the invariants hold for any cut.

mod audit;
mod backend;
mod faults;
mod model;
mod ops;
mod process;
mod redis_state;
mod rng;
mod scratch;
mod shared_money;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use backend::{InMemory, SharedState};
pub use faults::{FaultKind, WriterFaultRates};
pub use redis_state::{Redis, ScratchRedis};
pub use scratch::ScratchDatabase;

use faults::FaultPlan;
use model::Model;
use process::Process;
use rng::Rng;

use crate::catalog::Model as CatalogModel;
use crate::ledger::money::{Nanos, TokenCeiling, TokenCounts};
use crate::relay::settle::Settlement;
use crate::store::SecretKey;

/// What to run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub steps: u64,
    pub database_url: String,
    /// `sqlite` or `postgres`, for the replay line.
    pub backend: String,
    /// Writer faults per mille of write attempts.
    pub rates: WriterFaultRates,
}

impl SimConfig {
    pub fn new(seed: u64, steps: u64, database: &ScratchDatabase) -> SimConfig {
        SimConfig {
            seed,
            steps,
            database_url: database.url.clone(),
            backend: database.label.to_string(),
            rates: WriterFaultRates {
                fail: 30,
                lost_reply: 20,
            },
        }
    }
}

/// The figures of a run that held every invariant.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub steps: u64,
    pub backend: String,
    pub state: &'static str,
    pub instances: usize,
    pub operations: BTreeMap<&'static str, u64>,
    pub faults: BTreeMap<FaultKind, u64>,
    pub checks: BTreeMap<&'static str, u64>,
    pub committed: i64,
    pub parked: i64,
    pub lost_in_crashes: u64,
    pub late_commits: u64,
    pub elapsed: Duration,
}

impl Report {
    pub fn total_checks(&self) -> u64 {
        self.checks.values().sum()
    }

    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ledger simulation: seed {} on {} ({}, {} process(es)): {} steps in {:.1} s",
            self.seed,
            self.backend,
            self.state,
            self.instances,
            self.steps,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "operations:")?;
        for (name, count) in &self.operations {
            writeln!(f, "  {name:<40} {count:>10}")?;
        }
        writeln!(f, "faults injected ({}):", self.total_faults())?;
        for kind in FaultKind::ALL {
            let count = self.faults.get(&kind).copied().unwrap_or(0);
            writeln!(f, "  {:<40} {count:>10}", kind.name())?;
        }
        writeln!(f, "invariant checks ({}), all held:", self.total_checks())?;
        for (name, count) in &self.checks {
            writeln!(f, "  {name:<40} {count:>10}")?;
        }
        write!(
            f,
            "records: {} committed, {} parked, {} lost with a crashed process ({} of them committed as it died)",
            self.committed, self.parked, self.lost_in_crashes, self.late_commits
        )
    }
}

/// An invariant that did not hold, with what it takes to replay the run.
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    pub step: u64,
    pub backend: String,
    /// The options that choose the shared state, for the replay line (boxed: keeps the
    /// `Err` of every step small).
    pub shared: Box<str>,
    pub invariant: &'static str,
    pub detail: String,
    /// The last operations before the failure, oldest first.
    pub recent: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ledger simulation FAILED: seed {} step {} ({}): invariant `{}`: {}",
            self.seed, self.step, self.backend, self.invariant, self.detail
        )?;
        writeln!(
            f,
            "replay: scripts/simulate.sh --seed {} --steps {} --backend {}{}",
            self.seed,
            self.step + 1,
            self.backend,
            self.shared
        )?;
        writeln!(f, "last operations:")?;
        for line in &self.recent {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// Runs the simulation; `shared` decides where each process keeps its reservations.
pub fn run(config: &SimConfig, shared: &dyn SharedState) -> Result<Report, Failure> {
    let started = Instant::now();
    let mut sim = Sim::new(config, shared);
    sim.setup()?;
    while sim.step < config.steps {
        sim.run_step()?;
        sim.step += 1;
    }
    sim.finish()?;
    let mut faults = sim.faults.counts();
    if let Some(redis) = shared.redis() {
        let (requests, replies) = redis.lost();
        faults.insert(FaultKind::RedisRequestLost, requests);
        faults.insert(FaultKind::RedisReplyLost, replies);
    }
    Ok(Report {
        seed: config.seed,
        steps: config.steps,
        backend: config.backend.clone(),
        state: shared.name(),
        instances: shared.instances(),
        operations: sim.operations,
        faults,
        checks: sim.checks,
        committed: sim.model.committed,
        parked: sim.model.parked,
        lost_in_crashes: sim.lost_in_crashes,
        late_commits: sim.model.late_commits,
        elapsed: started.elapsed(),
    })
}

/// The default output reserved for a chat request without `max_tokens` (the config's
/// `default_output_reserve_tokens`).
const DEFAULT_OUTPUT: u64 = 1024;
/// How many operations a failure report shows.
const RECENT: usize = 24;

/// A request admitted and not settled yet.
struct InFlight {
    request_id: String,
    user: usize,
    key: usize,
    amount: Nanos,
    settlement: Settlement,
    worst: TokenCounts,
    ceiling: TokenCeiling,
    model: usize,
    contacted: bool,
    /// The client set `max_tokens`.
    output_limited: bool,
    /// The writer its settlement sends to (see `Process::restart_writer`).
    writer_generation: u64,
    /// The process that admitted it (an index into `Sim::processes`).
    instance: usize,
}

struct Sim<'a> {
    config: &'a SimConfig,
    shared: &'a dyn SharedState,
    rng: Rng,
    secret: SecretKey,
    faults: Arc<FaultPlan>,
    /// The gateway processes (one without shared state); `None` only while one restarts.
    processes: Vec<Option<Process>>,
    /// The process the current operation runs on.
    current: usize,
    /// Instance ids of crashed processes whose lease has not ended yet.
    dead_instances: Vec<String>,
    model: Model,
    catalog: Vec<CatalogModel>,
    in_flight: Vec<InFlight>,
    next_request: u64,
    step: u64,
    outage_until: Option<u64>,
    next_audit: u64,
    audits: u64,
    last_record: i64,
    last_parked: i64,
    lost_in_crashes: u64,
    operations: BTreeMap<&'static str, u64>,
    checks: BTreeMap<&'static str, u64>,
    recent: VecDeque<String>,
}

impl<'a> Sim<'a> {
    fn new(config: &'a SimConfig, shared: &'a dyn SharedState) -> Sim<'a> {
        Sim {
            config,
            shared,
            rng: Rng::new(config.seed),
            secret: SecretKey::generate(),
            faults: Arc::new(FaultPlan::new(config.seed, config.rates)),
            processes: Vec::new(),
            current: 0,
            dead_instances: Vec::new(),
            model: Model::default(),
            catalog: Vec::new(),
            in_flight: Vec::new(),
            next_request: 0,
            step: 0,
            outage_until: None,
            next_audit: 0,
            audits: 0,
            last_record: 0,
            last_parked: 0,
            lost_in_crashes: 0,
            operations: BTreeMap::new(),
            checks: BTreeMap::new(),
            recent: VecDeque::with_capacity(RECENT),
        }
    }

    fn process(&self) -> &Process {
        self.processes[self.current]
            .as_ref()
            .expect("a process runs between steps")
    }

    fn process_mut(&mut self) -> &mut Process {
        self.processes[self.current]
            .as_mut()
            .expect("a process runs between steps")
    }

    /// The processes running, with their index.
    fn live_processes(&self) -> impl Iterator<Item = (usize, &Process)> {
        self.processes
            .iter()
            .enumerate()
            .filter_map(|(index, process)| process.as_ref().map(|p| (index, p)))
    }

    /// The Redis of the shared state (borrowed from the run, not from `self`).
    fn redis(&self) -> Option<&'a Redis> {
        self.shared.redis()
    }

    fn failure(&self, invariant: &'static str, detail: String) -> Failure {
        Failure {
            seed: self.config.seed,
            step: self.step,
            backend: self.config.backend.clone(),
            shared: match self.shared.redis() {
                Some(_) => {
                    format!(" --shared redis --instances {}", self.shared.instances()).into()
                }
                None => Box::default(),
            },
            invariant,
            detail,
            recent: self.recent.iter().cloned().collect(),
        }
    }

    /// Counts a check of `invariant` and fails the run if it does not hold.
    fn check(
        &mut self,
        invariant: &'static str,
        holds: bool,
        detail: impl FnOnce() -> String,
    ) -> Result<(), Failure> {
        *self.checks.entry(invariant).or_default() += 1;
        if holds {
            Ok(())
        } else {
            Err(self.failure(invariant, detail()))
        }
    }

    /// A store or runtime error where none may happen: the run stops with it.
    fn broken(&self, what: &str, error: impl fmt::Display) -> Failure {
        self.failure("the database answers", format!("{what}: {error}"))
    }

    fn operation(&mut self, name: &'static str, detail: String) {
        *self.operations.entry(name).or_default() += 1;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent
            .push_back(format!("step {}: {name} {detail}", self.step));
    }

    fn in_outage(&self) -> bool {
        self.outage_until.is_some()
    }

    fn run_step(&mut self) -> Result<(), Failure> {
        if self.outage_until.is_some_and(|until| self.step >= until) {
            self.outage_until = None;
            self.faults.set_outage(false);
            self.operation("outage over", String::new());
        }
        self.random_operation()?;
        self.check_memory()?;
        if self.step >= self.next_audit && !self.in_outage() {
            self.audit()?;
            self.next_audit = self.step + self.rng.between(100, 600);
        }
        Ok(())
    }

    /// Settles what is in flight, ends any outage, waits for the writer and audits.
    fn finish(&mut self) -> Result<(), Failure> {
        self.outage_until = None;
        self.faults.set_outage(false);
        while !self.in_flight.is_empty() {
            self.settle(Some(1))?;
            self.check_memory()?;
        }
        self.audit()
    }
}

#[cfg(test)]
mod tests;
