//! Money in motion: prices, in-memory balances with reservations, and the batched writer.
//!
//! The database holds committed balances; `Books` holds, per user and per key, what is
//! committed, what has been debited here but not yet written, and what is reserved by
//! requests in flight. A request may start only if its reservation fits.

pub mod books;
pub mod money;
pub mod price_tiers;
pub mod retention;
#[cfg(any(test, feature = "simulation"))]
pub mod simulation;
pub mod spill;
pub mod writer;
