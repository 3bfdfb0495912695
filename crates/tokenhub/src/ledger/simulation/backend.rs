//! Where a simulated process keeps its reservations and balances: the seam a shared
//! backend plugs into.
//!
//! `InMemory` is the gateway without `redis_url`: one process with its own `Books`, so a
//! crash loses its reservations and unwritten costs with it. `Redis` (`redis_state.rs`) runs
//! several processes whose books decide reservations together in Redis; a crash is then
//! "an instance died with reservations held", and Redis must release them when the
//! instance's lease ends, which the invariant on reservations in flight checks.

use std::sync::Arc;

use super::redis_state::Redis;
use crate::ledger::books::Books;

pub trait SharedState {
    /// Printed with the figures.
    fn name(&self) -> &'static str;
    /// How many gateway processes run at once over this state.
    fn instances(&self) -> usize {
        1
    }
    /// The books of a process being started (after a crash, of its successor), made on
    /// its runtime (a Redis connection lives on it).
    fn books(&self, runtime: &tokio::runtime::Runtime) -> Result<Arc<Books>, String>;
    /// The Redis behind the books, for the faults and checks of shared money.
    fn redis(&self) -> Option<&Redis> {
        None
    }
}

/// Per-process books in memory: what the gateway runs with today.
pub struct InMemory;

impl SharedState for InMemory {
    fn name(&self) -> &'static str {
        "in-memory books"
    }

    fn books(&self, _runtime: &tokio::runtime::Runtime) -> Result<Arc<Books>, String> {
        Ok(Arc::new(Books::default()))
    }
}
