//! The gateway's integration tests, linked into one test binary (one link instead of
//! one per file keeps CI's build time and disk use down). Each module starts its own
//! gateway and mock upstream on ephemeral loopback ports; see `support/harness.rs`.

#[path = "support/golden.rs"]
mod golden;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/processes.rs"]
mod processes;
#[path = "support/smtp.rs"]
mod smtp;

mod accounts_mail;
mod anthropic_golden;
mod anthropic_inbound;
mod anthropic_inbound_golden;
mod anthropic_rules;
mod anthropic_upstream;
mod billing;
mod catalogue;
mod channel_check;
mod channel_keys;
mod channel_limits;
mod chaos;
mod cluster;
mod connections;
mod crash;
mod dialects;
mod fast_path;
mod fidelity;
mod gemini_golden;
mod gemini_upstream;
mod hostile_prompts;
mod hygiene;
mod languages;
mod limits;
mod login_throttle;
mod management;
mod metrics_token;
mod money_bounds;
mod operations;
mod outages;
mod redaction;
mod relay;
mod resilience;
mod responses;
mod responses_golden;
mod responses_native;
mod responses_native_usage;
mod responses_storage;
mod scale;
mod secrets_at_rest;
mod shared_state;
mod start_refusals;
mod startup;
mod unreadable_model;
mod usage_rollups;
mod web;
mod web_fixes;
