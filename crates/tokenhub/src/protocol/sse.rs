//! A bounded, incremental Server-Sent Events decoder.
//!
//! Feed it bytes as they arrive; it yields each complete event with its exact raw bytes
//! (so unchanged events are forwarded byte for byte) and its joined `data`. It accepts
//! `\n`, `\r\n` and `\r` line endings, comments (`: keep-alive`), events split across
//! reads at any byte, and refuses an event larger than its limit instead of buffering
//! without end.

use bytes::{Bytes, BytesMut};

/// 16 MiB: far above any real chunk, small enough that a broken upstream cannot exhaust memory.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The event exactly as received, including its terminating blank line.
    pub raw: Bytes,
    /// The `event:` field, if any.
    pub name: Option<String>,
    /// The `data:` lines joined with `\n`; `None` for a comment-only event.
    pub data: Option<Bytes>,
}

impl SseEvent {
    /// Formats a `data:` event the way OpenAI sends them.
    pub fn data_bytes(json: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(json.len() + 8);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(json);
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an SSE event exceeded {0} bytes")]
pub struct EventTooLarge(pub usize);

/// What the decoder holds of events not yet complete. An upstream frame usually ends on an
/// event boundary: it is kept as received (`Shared`) and events are slices of it, never
/// copied. Only bytes of an event split across frames are gathered into a buffer of the
/// decoder's own (`Owned`), each byte once.
#[derive(Debug)]
enum Pending {
    Shared(Bytes),
    Owned(BytesMut),
}

impl Pending {
    fn as_slice(&self) -> &[u8] {
        match self {
            Pending::Shared(bytes) => bytes,
            Pending::Owned(bytes) => bytes,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    fn push(&mut self, more: Bytes) {
        if self.is_empty() {
            *self = Pending::Shared(more);
            return;
        }
        match self {
            Pending::Shared(held) => {
                let mut owned = BytesMut::with_capacity(held.len() + more.len());
                owned.extend_from_slice(held);
                owned.extend_from_slice(&more);
                *self = Pending::Owned(owned);
            }
            Pending::Owned(owned) => owned.extend_from_slice(&more),
        }
    }

    /// The first `at` bytes, removed.
    fn split_to(&mut self, at: usize) -> Bytes {
        match self {
            Pending::Shared(bytes) => bytes.split_to(at),
            Pending::Owned(bytes) => bytes.split_to(at).freeze(),
        }
    }
}

#[derive(Debug)]
pub struct SseDecoder {
    pending: Pending,
    /// Where the current line starts (bytes before it are complete lines of this event).
    scanned: usize,
    /// Bytes from `scanned` up to here hold no line ending: a line split across frames is
    /// not searched again when its next piece arrives.
    searched: usize,
    /// Start offsets and lengths (without terminator) of the complete lines of the current event.
    lines: Vec<(usize, usize)>,
    max_event_bytes: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> SseDecoder {
        SseDecoder {
            pending: Pending::Shared(Bytes::new()),
            scanned: 0,
            searched: 0,
            lines: Vec::new(),
            max_event_bytes,
        }
    }

    /// Takes the next piece of the stream; a piece that starts a new event is not copied.
    pub fn push(&mut self, bytes: Bytes) {
        self.pending.push(bytes);
    }

    /// True when bytes of an unfinished event are buffered.
    pub fn has_partial(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next complete event, if the buffered bytes hold one.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, EventTooLarge> {
        loop {
            let Some((line_len, terminator_len)) = self.next_line() else {
                if self.pending.len() > self.max_event_bytes {
                    return Err(EventTooLarge(self.max_event_bytes));
                }
                return Ok(None);
            };
            let start = self.scanned;
            self.scanned += line_len + terminator_len;
            self.searched = self.scanned;
            if line_len > 0 {
                self.lines.push((start, line_len));
                continue;
            }
            if self.lines.is_empty() {
                // Stray blank lines between events carry nothing: drop them.
                let _ = self.pending.split_to(self.scanned);
                self.scanned = 0;
                self.searched = 0;
                continue;
            }
            return Ok(Some(self.take_event()));
        }
    }

    /// At end of stream: an event whose blank line never came, if it has a data field.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.pending.is_empty() {
            return None;
        }
        let len = self.pending.len();
        if self.scanned < len {
            let start = self.scanned;
            self.lines.push((start, len - start));
            self.scanned = len;
        }
        let event = self.take_event();
        event.data.is_some().then_some(event)
    }

    /// Finds the next line ending at or after `scanned`: (line length, terminator length).
    /// Remembers how far it looked when there is none yet.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        let buffered = self.pending.as_slice();
        let from = self.searched;
        // memchr's vector search: a byte-at-a-time scan cost ~2,000 instructions an
        // event (the hottest function of a relayed stream; bench/RESULTS.md, addendum 24).
        let Some(found) = memchr::memchr2(b'\n', b'\r', &buffered[from..]) else {
            self.searched = buffered.len();
            return None;
        };
        let at = from + found;
        let line_len = at - self.scanned;
        if buffered[at] == b'\n' {
            return Some((line_len, 1));
        }
        match buffered.get(at + 1) {
            Some(b'\n') => Some((line_len, 2)),
            Some(_) => Some((line_len, 1)),
            // A `\r` at the end of what we have may be the first half of `\r\n`: look
            // at it again when more arrives.
            None => {
                self.searched = at;
                None
            }
        }
    }

    fn take_event(&mut self) -> SseEvent {
        let raw = self.pending.split_to(self.scanned);
        self.scanned = 0;
        self.searched = 0;
        let mut name = None;
        let mut data_lines: Vec<Bytes> = Vec::new();
        for (start, len) in self.lines.drain(..) {
            let line = raw.slice(start..start + len);
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(0) => continue, // comment
                Some(colon) => {
                    let value_start = if line.get(colon + 1) == Some(&b' ') {
                        colon + 2
                    } else {
                        colon + 1
                    };
                    (line.slice(..colon), line.slice(value_start..))
                }
                None => (line.clone(), Bytes::new()),
            };
            match &field[..] {
                b"data" => data_lines.push(value),
                b"event" => name = Some(String::from_utf8_lossy(&value).into_owned()),
                _ => {}
            }
        }
        let data = match data_lines.len() {
            0 => None,
            1 => data_lines.pop(),
            _ => Some(Bytes::from(data_lines.join(&b'\n'))),
        };
        SseEvent { raw, name, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        for piece in pieces {
            decoder.push(Bytes::copy_from_slice(piece));
            while let Some(event) = decoder.next_event().unwrap() {
                events.push(event);
            }
        }
        events.extend(decoder.finish());
        events
    }

    #[test]
    fn yields_events_with_their_exact_bytes() {
        let events = decode_all(&[b"data: {\"a\":1}\n\ndata: [DONE]\n\n"]);
        assert_eq!(events.len(), 2);
        assert_eq!(&events[0].raw[..], b"data: {\"a\":1}\n\n");
        assert_eq!(events[0].data.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(events[1].data.as_deref(), Some(&b"[DONE]"[..]));
    }

    #[test]
    fn survives_any_split_and_crlf() {
        let stream: &[u8] =
            b": keep-alive\r\n\r\nevent: message\r\ndata: {\"x\":\r\ndata: 2}\r\n\r\ndata: end\r\r";
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            let events = decode_all(&[a, b]);
            assert_eq!(events.len(), 3, "cut at {cut}");
            assert_eq!(events[0].data, None, "comment-only event");
            assert_eq!(events[1].name.as_deref(), Some("message"));
            assert_eq!(events[1].data.as_deref(), Some(&b"{\"x\":\n2}"[..]));
            assert_eq!(events[2].data.as_deref(), Some(&b"end"[..]));
        }
    }

    #[test]
    fn byte_by_byte_feeding_matches_whole_feeding() {
        let stream: &[u8] = b"data: one\n\n\n\ndata:two\n\n";
        let whole = decode_all(&[stream]);
        let pieces: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode_all(&pieces), whole);
        assert_eq!(whole[1].data.as_deref(), Some(&b"two"[..]));
    }

    #[test]
    fn unterminated_last_event_is_recovered_at_finish() {
        let events = decode_all(&[b"data: tail"]);
        assert_eq!(events[0].data.as_deref(), Some(&b"tail"[..]));
        assert!(decode_all(&[b": just a comment"]).is_empty());
    }

    #[test]
    fn events_of_a_whole_frame_are_slices_of_it_not_copies() {
        let frame = Bytes::from_static(b"data: {\"a\":1}\n\ndata: [DONE]\n\n");
        let mut decoder = SseDecoder::default();
        decoder.push(frame.clone());
        let first = decoder.next_event().unwrap().unwrap();
        let second = decoder.next_event().unwrap().unwrap();
        assert_eq!(first.raw.as_ptr(), frame.as_ptr());
        assert_eq!(second.raw.as_ptr(), frame[first.raw.len()..].as_ptr());
        assert!(!decoder.has_partial());
    }

    #[test]
    fn a_line_split_across_frames_is_not_searched_again() {
        let mut decoder = SseDecoder::default();
        decoder.push(Bytes::from_static(b"data: {\"long\":"));
        assert_eq!(decoder.next_event(), Ok(None));
        assert_eq!(decoder.searched, 14, "everything held was searched once");
        decoder.push(Bytes::from_static(b"true}\r"));
        assert_eq!(decoder.next_event(), Ok(None));
        assert_eq!(decoder.searched, 19, "a trailing CR is looked at again");
        decoder.push(Bytes::from_static(b"\n\r\n"));
        let event = decoder.next_event().unwrap().unwrap();
        assert_eq!(&event.raw[..], b"data: {\"long\":true}\r\n\r\n");
        assert_eq!(event.data.as_deref(), Some(&b"{\"long\":true}"[..]));
        assert_eq!(decoder.searched, 0);
    }

    #[test]
    fn refuses_oversized_events() {
        let mut decoder = SseDecoder::new(16);
        decoder.push(Bytes::from_static(b"data: 0123456789abcdefghij"));
        assert_eq!(decoder.next_event(), Err(EventTooLarge(16)));
    }
}
