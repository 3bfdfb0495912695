//! Where a simulated process keeps its reservations and balances: the seam a shared
//! backend plugs into.
//!
//! Today every process has its own `Books` in memory, so a crash loses its reservations
//! and unwritten costs with it. A shared-state backend (Redis, for reservations across
//! instances) implements `SharedState` by handing out books that share its store; the
//! simulation then runs its processes over it unchanged, and `Crash` becomes "an
//! instance died with reservations held": the backend must release or expire them,
//! which the invariant on reservations in flight checks.

use std::sync::Arc;

use crate::ledger::books::Books;

pub trait SharedState {
    /// Printed with the figures.
    fn name(&self) -> &'static str;
    /// The books of a process being started (after a crash, of its successor).
    fn books(&self) -> Arc<Books>;
}

/// Per-process books in memory: what the gateway runs with today.
pub struct InMemory;

impl SharedState for InMemory {
    fn name(&self) -> &'static str {
        "in-memory books"
    }

    fn books(&self) -> Arc<Books> {
        Arc::new(Books::default())
    }
}
