//! Deterministic "tokenizer" and reply text.
//!
//! Real tokenizers differ per provider, so the mock uses a rule simple enough
//! that a test can compute the expected numbers by hand:
//!
//! * a token is a whitespace-separated word;
//! * `prompt_tokens` = for each entry of `messages`: the words of its text
//!   content (a string, or the `text` of every `{"type":"text"}` part of an
//!   array) plus 3 per message for the role/framing overhead;
//! * `completion_tokens` = the words of the reply, at least 1.
//! * Anthropic dialect: the prompt is counted the same way over `messages`, plus the
//!   words of `system` and 3 more when there is one (see [`anthropic_prompt_tokens`]).

use serde_json::Value;

/// Per-message overhead, mimicking the role/separator tokens of real models.
const PER_MESSAGE_TOKENS: u64 = 3;

/// Prefix of the default reply; the text of the last user message follows it.
pub const REPLY_PREFIX: &str = "Hello from mock-upstream! You said: ";

/// Prefix of the reply under the `echo_tool_result` knob; the last tool result follows.
pub const TOOL_REPLY_PREFIX: &str = "The tool said: ";

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Text parts of a message `content`: the string itself, or the `text` of each
/// `{"type":"text"}` part. Anything else (images, audio, null) has no text.
fn text_parts(content: &Value) -> Vec<&str> {
    match content {
        Value::String(s) => vec![s.as_str()],
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => Vec::new(),
    }
}

/// The text of a message's `content`, with text parts concatenated as-is.
pub fn content_text(content: &Value) -> String {
    text_parts(content).concat()
}

/// Prompt tokens of a chat request (see the module docs for the rule).
/// Counting words per part means parts are never glued into one word.
pub fn prompt_tokens(request: &Value) -> u64 {
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return 0;
    };
    messages
        .iter()
        .map(|m| {
            let content = m.get("content").unwrap_or(&Value::Null);
            let text: u64 = text_parts(content).into_iter().map(words).sum();
            text + PER_MESSAGE_TOKENS
        })
        .sum()
}

/// Prompt tokens of an Anthropic Messages request: [`prompt_tokens`] over `messages`
/// (text blocks only), plus the words of `system` (a string or text blocks) and 3 for
/// it when present. This is the whole prompt, cache reads and writes included.
pub fn anthropic_prompt_tokens(request: &Value) -> u64 {
    let system = match request.get("system") {
        None | Some(Value::Null) => 0,
        Some(system) => text_parts(system).into_iter().map(words).sum::<u64>() + PER_MESSAGE_TOKENS,
    };
    prompt_tokens(request) + system
}

/// Whitespace-separated words of `text` (the mock's token).
pub fn word_count(text: &str) -> u64 {
    words(text)
}

/// Completion tokens of a reply: its words, at least 1 (as real models
/// always bill for the stop token).
pub fn completion_tokens(text: &str) -> u64 {
    words(text).max(1)
}

/// Tokens of an embeddings `input` (a string or an array of strings).
pub fn input_tokens(inputs: &[String]) -> u64 {
    inputs.iter().map(|s| words(s)).sum()
}

/// The reply the mock gives to a chat request: the `mock.reply` knob if set; with the
/// `echo_tool_result` knob, [`TOOL_REPLY_PREFIX`] followed by the last tool result
/// (so a tool round trip shows that the result reached the upstream); else
/// [`REPLY_PREFIX`] followed by the text of the last user message.
pub fn reply_for(request: &Value) -> String {
    let knobs = request.get("mock");
    if let Some(reply) = knobs.and_then(|m| m.get("reply")).and_then(Value::as_str) {
        return reply.to_owned();
    }
    if knobs.and_then(|m| m.get("echo_tool_result")) == Some(&Value::Bool(true)) {
        return format!("{TOOL_REPLY_PREFIX}{}", last_tool_result(request));
    }
    let last_user = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|ms| {
            ms.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content"))
        .map(content_text)
        .unwrap_or_default();
    format!("{REPLY_PREFIX}{last_user}")
}

/// The text of the last tool result in `messages`: an OpenAI `tool` message, or the
/// `tool_result` blocks of an Anthropic user turn (their string or text-block content).
fn last_tool_result(request: &Value) -> String {
    let messages = request.get("messages").and_then(Value::as_array);
    for message in messages.into_iter().flatten().rev() {
        let content = message.get("content").unwrap_or(&Value::Null);
        match message.get("role").and_then(Value::as_str) {
            Some("tool") => return content_text(content),
            Some("user") => {
                let results: Vec<String> = content
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                    .map(|b| content_text(b.get("content").unwrap_or(&Value::Null)))
                    .collect();
                if !results.is_empty() {
                    return results.concat();
                }
            }
            _ => {}
        }
    }
    String::new()
}

/// Splits `reply` into at most `chunks` pieces on word boundaries, each word
/// keeping its trailing whitespace ("Hello " "from " ...), so the pieces
/// concatenate to exactly `reply`. Words are spread as evenly as possible,
/// earlier pieces taking the remainder. There are never more pieces than
/// words (a word is never cut), and always at least one piece, possibly empty,
/// so a stream has at least one content event.
pub fn split_reply(reply: &str, chunks: usize) -> Vec<String> {
    let words = split_words(reply);
    let pieces = chunks.clamp(1, words.len().max(1));
    if words.is_empty() {
        return vec![reply.to_owned()];
    }
    let (base, extra) = (words.len() / pieces, words.len() % pieces);
    let mut out = Vec::with_capacity(pieces);
    let mut rest = words.as_slice();
    for i in 0..pieces {
        let take = base + usize::from(i < extra);
        let (head, tail) = rest.split_at(take);
        out.push(head.concat());
        rest = tail;
    }
    out
}

/// `text` cut into `n` pieces of nearly equal length (in characters, earlier pieces
/// longer), never more pieces than characters, always at least one.
pub fn split_even(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    let (base, extra) = (chars.len() / n, chars.len() % n);
    let mut rest = chars.as_slice();
    (0..n)
        .map(|i| {
            let (head, tail) = rest.split_at(base + usize::from(i < extra));
            rest = tail;
            head.iter().collect()
        })
        .collect()
}

/// Words with their trailing whitespace; leading whitespace stays with the
/// first word. A whitespace-only string yields one "word" so no text is lost.
fn split_words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_ws = false;
    let mut seen_word = false;
    for (i, c) in text.char_indices() {
        let ws = c.is_whitespace();
        // A new word starts where non-whitespace follows whitespace.
        if !ws && prev_ws && seen_word {
            out.push(&text[start..i]);
            start = i;
        }
        seen_word |= !ws;
        prev_ws = ws;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn split_concatenates_exactly() {
        let reply = "  Hello from  mock-upstream!\n You said: hi  ";
        for n in 0..12 {
            let pieces = split_reply(reply, n);
            assert_eq!(pieces.concat(), reply, "chunks={n}");
            assert_eq!(pieces.len(), n.clamp(1, 6), "chunks={n}");
        }
    }

    #[test]
    fn split_is_even_on_word_boundaries() {
        let pieces = split_reply("a b c d e", 2);
        assert_eq!(pieces, vec!["a b c ", "d e"]);
        let pieces = split_reply("Hello from mock", 4);
        assert_eq!(pieces, vec!["Hello ", "from ", "mock"]);
    }

    #[test]
    fn split_degenerate_inputs() {
        assert_eq!(split_reply("", 4), vec![""]);
        assert_eq!(split_reply("   ", 4), vec!["   "]);
        assert_eq!(split_reply("héllo wörld", 2), vec!["héllo ", "wörld"]);
    }

    #[test]
    fn prompt_tokens_counts_words_plus_overhead() {
        let req = json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "one two"},
                {"type": "image_url", "image_url": {"url": "x y z"}},
                {"type": "text", "text": "three"}
            ]},
            {"role": "assistant", "content": null}
        ]});
        assert_eq!(prompt_tokens(&req), (2 + 3) + (3 + 3) + 3);
        assert_eq!(prompt_tokens(&json!({})), 0);
    }

    #[test]
    fn anthropic_prompt_adds_the_system_member() {
        let req = json!({"system": [{"type": "text", "text": "be brief"}],
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}]});
        assert_eq!(anthropic_prompt_tokens(&req), (2 + 3) + (2 + 3));
        let no_system = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(anthropic_prompt_tokens(&no_system), 4);
    }

    #[test]
    fn completion_tokens_min_one() {
        assert_eq!(completion_tokens(""), 1);
        assert_eq!(completion_tokens("a b  c"), 3);
    }

    #[test]
    fn reply_uses_last_user_message_or_knob() {
        let req = json!({"messages": [
            {"role": "user", "content": "first"},
            {"role": "user", "content": [{"type": "text", "text": "se"}, {"type": "text", "text": "cond"}]},
            {"role": "assistant", "content": "ignored"}
        ]});
        assert_eq!(reply_for(&req), format!("{REPLY_PREFIX}second"));
        let req = json!({"messages": [], "mock": {"reply": "fixed"}});
        assert_eq!(reply_for(&req), "fixed");
    }

    #[test]
    fn echo_tool_result_replies_with_the_last_result_in_either_dialect() {
        let openai = json!({"mock": {"echo_tool_result": true}, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "21 C"}
        ]});
        assert_eq!(reply_for(&openai), format!("{TOOL_REPLY_PREFIX}21 C"));
        let anthropic = json!({"mock": {"echo_tool_result": true}, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                "content": [{"type": "text", "text": "sunny"}]}]}
        ]});
        assert_eq!(reply_for(&anthropic), format!("{TOOL_REPLY_PREFIX}sunny"));
        let none = json!({"mock": {"echo_tool_result": true}, "messages": [{"role": "user", "content": "x"}]});
        assert_eq!(reply_for(&none), TOOL_REPLY_PREFIX);
    }

    #[test]
    fn split_even_concatenates_exactly() {
        let json = r#"{"city":"Paris"}"#;
        for n in 0..20 {
            let pieces = split_even(json, n);
            assert_eq!(pieces.concat(), json);
            assert_eq!(pieces.len(), n.clamp(1, json.len()));
        }
        assert_eq!(split_even("abcde", 2), ["abc", "de"]);
        assert_eq!(split_even("", 3), [""]);
    }
}
