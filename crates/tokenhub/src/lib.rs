//! TokenHub: a self-hosted, OpenAI-compatible LLM API gateway with exact metered billing.
//! See ARCHITECTURE.md for the request's path through these modules.

pub mod accounts;
pub mod allocator;
pub mod api;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod fast_map;
pub mod ledger;
pub mod logging;
pub mod meters;
pub mod protocol;
pub mod providers;
pub mod relay;
pub mod server;
pub mod shared;
pub mod store;
pub mod tokens;
