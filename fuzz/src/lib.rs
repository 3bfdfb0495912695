//! What the fuzz targets share: cutting an input into the pieces a network would deliver,
//! and feeding those pieces through the SSE decoder the way the adapters do.

use bytes::Bytes;
use tokenhub::protocol::sse::{SseDecoder, SseEvent};

/// Splits `data` into a stream and the sizes of the reads it arrives in: the first byte
/// seeds the read sizes (1 to 64 bytes, so every split point gets exercised), the rest is
/// the stream.
pub fn reads(data: &[u8]) -> Vec<&[u8]> {
    let Some((&seed, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    let mut state = u32::from(seed) | 1;
    let mut pieces = Vec::new();
    while !rest.is_empty() {
        // xorshift: cheap, deterministic, and varied enough for read sizes.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state as usize % 64 + 1).min(rest.len());
        let (piece, tail) = rest.split_at(size);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// The events of a stream delivered in `pieces`, as the adapters decode them: event by
/// event as the reads arrive, then an unterminated last event at the end. Stops at an
/// event over `max_event_bytes`, as the adapters do.
pub fn decode(pieces: &[&[u8]], max_event_bytes: usize) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new(max_event_bytes);
    let mut events = Vec::new();
    for piece in pieces {
        decoder.push(Bytes::copy_from_slice(piece));
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(_) => return events,
            }
        }
    }
    events.extend(decoder.finish());
    events
}

/// The decoder's limit in the stream targets: small, so the refusal path runs too.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
