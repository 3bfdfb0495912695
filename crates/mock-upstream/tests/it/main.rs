//! The mock's wire-level tests, linked into one test binary, one module per dialect.

mod gemini_wire;
mod messages_wire;
mod vendor_rules;
mod wire;
