//! The SSE decoder fed the same stream in one read and in random reads: the events must
//! be the same, and each event's raw bytes must be a piece of the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenhub::protocol::sse::DEFAULT_MAX_EVENT_BYTES;
use tokenhub_fuzz::{MAX_EVENT_BYTES, decode, reads};

fuzz_target!(|data: &[u8]| {
    let pieces = reads(data);
    let whole: Vec<u8> = pieces.concat();
    let at_once = decode(&[&whole], DEFAULT_MAX_EVENT_BYTES);
    let in_reads = decode(&pieces, DEFAULT_MAX_EVENT_BYTES);
    assert_eq!(at_once, in_reads, "the split points changed the events");
    let raw_total: usize = at_once.iter().map(|e| e.raw.len()).sum();
    assert!(raw_total <= whole.len());
    // A small limit: the refusal path must not panic either.
    let _ = decode(&pieces, 16);
    let _ = decode(&pieces, MAX_EVENT_BYTES);
});
