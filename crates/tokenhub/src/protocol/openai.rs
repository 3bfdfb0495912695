//! OpenAI Chat Completions: the client-facing contract and the dialect of most upstreams.

pub mod charge;
pub mod chat;
pub mod chunk;
pub mod embeddings;
pub mod error;
pub mod operation;
pub mod request;
pub mod splice;
pub mod usage;
