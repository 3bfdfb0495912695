//! Local token counting, used when an upstream reports no usage (the record is then
//! marked `estimated`), by the built-in demo model and by `/v1/messages/count_tokens`.
//!
//! The count uses OpenAI's `o200k_base` encoding. For Qwen, GLM, DeepSeek or Doubao
//! tokenizers it is an estimate, which is why records say so.
//!
//! Counting is linear in the text and bounded, whatever the text:
//! - BPE is quadratic in the length of a piece, and a run without whitespace is one
//!   piece (a million `x` overflowed the tokenizer's stack). So text is cut into
//!   segments of at most `SEGMENT_BYTES`, before a whitespace character where there is
//!   one, and each segment is encoded on its own. For ordinary text the count is the
//!   same; for long runs it differs by a token per segment at most.
//! - A count is exact for its first `Budget` bytes of text; the bytes beyond are
//!   estimated at the tokens-per-byte ratio measured on the exact part (rounded up).
//!   `Budget::SERVING_THREAD` keeps a count under about 2 ms of a serving thread;
//!   `Budget::BLOCKING_POOL` is for counts run with `spawn_blocking`.
//! - A count the tokenizer gives up on (its pattern matcher's backtracking limit) or
//!   panics in is estimated at `FALLBACK_BYTES_PER_TOKEN` instead.
//!
//! The encoding is held compactly (`o200k.rs`: 4.2 MB of read-only tables in the binary
//! instead of tiktoken-rs's 47 MB of heap), with the same counts.

mod o200k;
mod o200k_table;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::protocol::openai::operation::Operation;
use serde_json::value::RawValue;

/// Tokens OpenAI adds around every chat message, and once to prime the reply.
const PER_MESSAGE_OVERHEAD: u64 = 3;
const REPLY_PRIMING: u64 = 3;

/// Longest text handed to the BPE encoder at once (see the module docs).
const SEGMENT_BYTES: usize = 128;

/// Used only when the encoder fails: about right for English text.
const FALLBACK_BYTES_PER_TOKEN: u64 = 4;

/// Bytes of text one count encodes exactly; the rest is extrapolated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget(usize);

impl Budget {
    /// About 1 ms of o200k work on ordinary text, 2 ms on the slowest shapes measured.
    pub const SERVING_THREAD: Budget = Budget(8 * 1024);
    /// Any realistic prompt (about 250,000 tokens), for counts off the serving threads.
    pub const BLOCKING_POOL: Budget = Budget(1024 * 1024);
}

/// Compiles the encoding's splitting pattern so no request pays for it on a serving thread.
pub fn warm_up() {
    encoding();
}

fn encoding() -> &'static o200k::O200k {
    static ENCODING: OnceLock<o200k::O200k> = OnceLock::new();
    ENCODING.get_or_init(o200k::O200k::load)
}

/// A running count over several texts sharing one budget.
#[derive(Debug)]
pub struct Tally {
    exact_left: usize,
    exact_bytes: u64,
    exact_tokens: u64,
    estimated_bytes: u64,
    /// Tokens known without encoding (overheads, token-id arrays).
    fixed_tokens: u64,
}

impl Tally {
    pub fn new(budget: Budget) -> Tally {
        Tally {
            exact_left: budget.0,
            exact_bytes: 0,
            exact_tokens: 0,
            estimated_bytes: 0,
            fixed_tokens: 0,
        }
    }

    pub fn text(&mut self, text: &str) {
        let (exact, rest) = split_at_budget(text, self.exact_left);
        self.exact_left -= exact.len();
        self.exact_bytes += exact.len() as u64;
        self.exact_tokens += encode_len(exact);
        self.estimated_bytes += rest.len() as u64;
    }

    /// Text known only by its length (what was kept of it went through `text`).
    pub fn uncounted_bytes(&mut self, bytes: u64) {
        self.estimated_bytes = self.estimated_bytes.saturating_add(bytes);
    }

    pub fn tokens(&mut self, tokens: u64) {
        self.fixed_tokens = self.fixed_tokens.saturating_add(tokens);
    }

    pub fn total(&self) -> u64 {
        let estimated = if self.estimated_bytes == 0 {
            0
        } else if self.exact_bytes == 0 || self.exact_tokens == 0 {
            self.estimated_bytes.div_ceil(FALLBACK_BYTES_PER_TOKEN)
        } else {
            let scaled = u128::from(self.estimated_bytes) * u128::from(self.exact_tokens);
            u64::try_from(scaled.div_ceil(u128::from(self.exact_bytes))).unwrap_or(u64::MAX)
        };
        self.exact_tokens
            .saturating_add(estimated)
            .saturating_add(self.fixed_tokens)
    }
}

/// The longest prefix of `text` within `budget` bytes that ends on a character boundary.
fn split_at_budget(text: &str, budget: usize) -> (&str, &str) {
    if text.len() <= budget {
        return (text, "");
    }
    text.split_at(floor_char_boundary(text, budget))
}

/// `str::floor_char_boundary`, which is newer than this crate's minimum Rust.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn encode_len(text: &str) -> u64 {
    encode_len_with(encoding(), text)
}

fn encode_len_with(encoding: &o200k::O200k, text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let counted = catch_unwind(AssertUnwindSafe(|| {
        segments(text)
            .map(|segment| encoding.count(segment))
            .sum::<Option<u64>>()
    }));
    counted.ok().flatten().unwrap_or_else(|| {
        tracing::error!(bytes = text.len(), "the tokenizer failed; text estimated");
        (text.len() as u64).div_ceil(FALLBACK_BYTES_PER_TOKEN)
    })
}

/// Consecutive pieces of `text` of at most `SEGMENT_BYTES`, each cut just before a
/// whitespace character when the window has one (where o200k starts a new piece anyway).
fn segments(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = if rest.len() <= SEGMENT_BYTES {
            rest.len()
        } else {
            let window = &rest[..floor_char_boundary(rest, SEGMENT_BYTES)];
            window
                .rfind(char::is_whitespace)
                .filter(|&at| at > 0)
                .unwrap_or(window.len())
        };
        let (segment, after) = rest.split_at(end);
        rest = after;
        Some(segment)
    })
}

pub fn count_text(text: &str) -> u64 {
    let mut tally = Tally::new(Budget::SERVING_THREAD);
    tally.text(text);
    tally.total()
}

/// Generated text kept for a local count: the first `Budget::SERVING_THREAD` bytes, and
/// the length of the rest (memory stays bounded however long the answer).
#[derive(Debug, Default)]
pub struct TextSample {
    head: String,
    rest_bytes: u64,
}

impl TextSample {
    pub fn push(&mut self, text: &str) {
        let room = Budget::SERVING_THREAD.0 - self.head.len();
        let (kept, rest) = split_at_budget(text, room);
        self.head.push_str(kept);
        self.rest_bytes = self.rest_bytes.saturating_add(rest.len() as u64);
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.rest_bytes == 0
    }

    pub fn count(&self) -> u64 {
        let mut tally = Tally::new(Budget::SERVING_THREAD);
        tally.text(&self.head);
        tally.uncounted_bytes(self.rest_bytes);
        tally.total()
    }
}

#[derive(Deserialize)]
struct MessagesOnly<'a> {
    #[serde(borrow, default)]
    messages: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

/// Estimated input tokens of a request body of any operation, within `budget`.
pub fn count_prompt(operation: Operation, body: &[u8], budget: Budget) -> u64 {
    let mut tally = Tally::new(budget);
    match operation {
        Operation::Chat => tally_chat_prompt(&mut tally, body),
        Operation::Completions | Operation::Embeddings => {
            tally_input_texts(&mut tally, body, operation.input_field())
        }
        Operation::Responses => tally_responses_prompt(&mut tally, body),
    }
    tally.total()
}

/// A native Responses request's `instructions` and the texts of its `input` (a string,
/// or items whose `text`, `content`, `output` and `arguments` hold the words).
fn tally_responses_prompt(tally: &mut Tally, body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    fn add(tally: &mut Tally, value: &serde_json::Value) {
        match value {
            serde_json::Value::String(text) => tally.text(text),
            serde_json::Value::Array(items) => items.iter().for_each(|item| add(tally, item)),
            serde_json::Value::Object(members) => ["text", "content", "output", "arguments"]
                .iter()
                .filter_map(|name| members.get(*name))
                .for_each(|member| add(tally, member)),
            _ => {}
        }
    }
    for member in ["instructions", "input"] {
        if let Some(value) = value.get(member) {
            add(tally, value);
        }
    }
}

/// The strings of a `prompt`/`input` member (a string or an array of strings); token-id
/// arrays count one token per id.
fn tally_input_texts(tally: &mut Tally, body: &[u8], field: &str) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    fn add(tally: &mut Tally, value: &serde_json::Value) {
        match value {
            serde_json::Value::String(text) => tally.text(text),
            serde_json::Value::Number(_) => tally.tokens(1),
            serde_json::Value::Array(items) => items.iter().for_each(|item| add(tally, item)),
            _ => {}
        }
    }
    if let Some(value) = value.get(field) {
        add(tally, value);
    }
}

/// Estimated prompt tokens of an OpenAI chat request body: role, name, text content and
/// tool calls of each message plus OpenAI's fixed per-message overhead.
pub fn count_chat_prompt(body: &[u8], budget: Budget) -> u64 {
    let mut tally = Tally::new(budget);
    tally_chat_prompt(&mut tally, body);
    tally.total()
}

fn tally_chat_prompt(tally: &mut Tally, body: &[u8]) {
    let Ok(request) = serde_json::from_slice::<MessagesOnly>(body) else {
        return;
    };
    tally.tokens(REPLY_PRIMING);
    for raw in request.messages {
        let Ok(message) = serde_json::from_str::<Message>(raw.get()) else {
            continue;
        };
        tally.tokens(PER_MESSAGE_OVERHEAD);
        tally.text(&message.role);
        if let Some(name) = &message.name {
            tally.text(name);
        }
        match &message.content {
            Some(Content::Text(text)) => tally.text(text),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .for_each(|text| tally.text(text)),
            None => {}
        }
        if let Some(calls) = &message.tool_calls {
            tally.text(calls.get());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_text_with_o200k() {
        assert_eq!(count_text(""), 0);
        assert_eq!(count_text("Hello world"), 2);
    }

    #[test]
    fn counts_chat_messages_with_overhead() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"Hello world"}]}"#;
        // priming 3 + overhead 3 + "user" 1 + "Hello world" 2
        assert_eq!(count_chat_prompt(body, Budget::SERVING_THREAD), 9);
        let parts = br#"{"messages":[{"role":"user","content":[{"type":"text","text":"Hello world"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(count_chat_prompt(parts, Budget::SERVING_THREAD), 9);
    }

    #[test]
    fn counts_prompts_and_inputs_of_other_operations() {
        let completions = br#"{"model":"m","prompt":["Hello world","Hello world"]}"#;
        assert_eq!(
            count_prompt(Operation::Completions, completions, Budget::SERVING_THREAD),
            4
        );
        let embeddings = br#"{"model":"m","input":[[1,2,3],[4]]}"#;
        assert_eq!(
            count_prompt(Operation::Embeddings, embeddings, Budget::SERVING_THREAD),
            4
        );
        assert_eq!(
            count_prompt(
                Operation::Embeddings,
                br#"{"input":"Hello world"}"#,
                Budget::SERVING_THREAD
            ),
            2
        );
    }

    #[test]
    fn tolerates_garbage() {
        assert_eq!(count_chat_prompt(b"not json", Budget::SERVING_THREAD), 0);
        assert_eq!(
            count_chat_prompt(
                br#"{"messages":[42,{"role":"user","content":null}]}"#,
                Budget::SERVING_THREAD
            ),
            3 + 3 + 1
        );
    }

    /// Ordinary prose, longer than a segment.
    fn prose(sentences: usize) -> String {
        "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun. "
            .repeat(sentences)
    }

    #[test]
    fn segments_leave_ordinary_text_counts_unchanged() {
        let text = prose(60);
        assert!(text.len() > 10 * SEGMENT_BYTES && text.len() < Budget::SERVING_THREAD.0);
        let whole = tiktoken_rs::o200k_base_singleton()
            .encode_ordinary(&text)
            .len() as u64;
        assert_eq!(count_text(&text), whole);
        assert_eq!(segments(&text).collect::<String>(), text);
        assert!(segments(&text).all(|s| s.len() <= SEGMENT_BYTES));
        let multibyte = "漢字のテキスト😀".repeat(100);
        assert_eq!(segments(&multibyte).collect::<String>(), multibyte);
    }

    #[test]
    fn text_the_matcher_gives_up_on_is_estimated_by_its_length() {
        let text = "  spaces before a word, twice:  then  more";
        let impatient = o200k::O200k::with_backtrack_limit(1);
        assert_eq!(impatient.count(text), None, "the matcher gives up");
        assert_eq!(
            encode_len_with(&impatient, text),
            (text.len() as u64).div_ceil(FALLBACK_BYTES_PER_TOKEN)
        );
        assert_eq!(encode_len_with(encoding(), text), count_text(text));
        assert_ne!(count_text(text), encode_len_with(&impatient, text));
    }

    #[test]
    fn a_million_letter_run_is_counted_quickly_and_without_panicking() {
        warm_up();
        for run in [
            "x".repeat(1_000_000),
            " ".repeat(1_000_000),
            "aB1!".repeat(250_000),
        ] {
            let started = std::time::Instant::now();
            let tokens = count_text(&run);
            let took = started.elapsed();
            assert!(tokens > 0 && tokens <= 1_000_000, "{tokens}");
            // Debug build on a shared machine: the point is "not seconds" (it was 3.6 s at 100 KB).
            assert!(took < std::time::Duration::from_millis(250), "{took:?}");
        }
    }

    #[test]
    fn text_beyond_the_budget_is_extrapolated_at_the_measured_ratio() {
        let sample = prose(90);
        let sample = &sample[..floor_char_boundary(&sample, Budget::SERVING_THREAD.0)];
        let per_budget = count_text(sample);
        let long = prose(900);
        let estimated = count_text(&long);
        let exact = tiktoken_rs::o200k_base_singleton()
            .encode_ordinary(&long)
            .len() as u64;
        assert!(
            estimated.abs_diff(exact) * 100 <= exact,
            "{estimated} vs {exact}"
        );
        assert!(estimated > 9 * per_budget);
        let mut wide = Tally::new(Budget::BLOCKING_POOL);
        wide.text(&long);
        assert_eq!(wide.total(), exact, "within the budget the count is exact");
    }

    #[test]
    fn a_text_sample_keeps_bounded_memory_and_counts_the_rest() {
        let mut sample = TextSample::default();
        assert!(sample.is_empty());
        for _ in 0..1000 {
            sample.push(&prose(20));
        }
        assert!(sample.head.len() <= Budget::SERVING_THREAD.0);
        let exact = tiktoken_rs::o200k_base_singleton()
            .encode_ordinary(&prose(20_000))
            .len() as u64;
        assert!(sample.count().abs_diff(exact) * 100 <= exact);
    }

    #[test]
    fn a_budget_is_shared_by_the_texts_of_one_request() {
        let message = prose(5);
        let messages: Vec<_> = (0..2000)
            .map(|_| serde_json::json!({"role": "user", "content": message}))
            .collect();
        let body = serde_json::json!({"messages": messages}).to_string();
        warm_up();
        let started = std::time::Instant::now();
        let tokens = count_chat_prompt(body.as_bytes(), Budget::SERVING_THREAD);
        assert!(started.elapsed() < std::time::Duration::from_millis(250));
        let per_message = count_text(&message) + 1 + PER_MESSAGE_OVERHEAD;
        assert!(
            tokens.abs_diff(3 + 2000 * per_message) * 50 <= tokens,
            "{tokens}"
        );
    }
}
