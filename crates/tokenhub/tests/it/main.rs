//! The gateway's integration tests, linked into one test binary (one link instead of
//! one per file keeps CI's build time and disk use down). Each module starts its own
//! gateway and mock upstream on ephemeral loopback ports; see `support/harness.rs`.

#[path = "support/golden.rs"]
mod golden;
#[path = "support/harness.rs"]
mod harness;

mod anthropic_golden;
mod anthropic_inbound;
mod anthropic_inbound_golden;
mod anthropic_upstream;
mod channel_keys;
mod channel_limits;
mod chaos;
mod crash;
mod dialects;
mod gemini_golden;
mod gemini_upstream;
mod hygiene;
mod limits;
mod management;
mod money_bounds;
mod operations;
mod relay;
mod resilience;
mod scale;
mod web;
