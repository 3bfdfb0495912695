//! Wire formats and pure translations. Nothing here knows about HTTP servers, the
//! database or the relay's state: inputs are bytes or JSON, outputs are bytes or JSON.

pub mod anthropic;
pub mod chunks;
pub mod gemini;
pub mod openai;
pub mod responses;
pub mod sse;

#[cfg(test)]
mod fuzz_regressions;
