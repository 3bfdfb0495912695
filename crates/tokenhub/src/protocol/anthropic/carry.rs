//! Thinking blocks carried through OpenAI tool call ids.
//!
//! With thinking on, Anthropic refuses a tool loop's next turn unless the assistant turn
//! that made the calls comes back starting with its `thinking` (or `redacted_thinking`)
//! blocks, complete and with their signatures (platform.claude.com/docs/en/build-with-claude/extended-thinking,
//! "Preserving thinking blocks", checked 2026-12-05). OpenAI messages have no place for
//! them, but every client echoes a tool call's `id` back exactly, streamed or not. So the
//! thinking blocks that come before a `tool_use` block ride in its id:
//! `<tool_use id>_th_<base64url of the blocks' JSON>`; a call without thinking before it
//! keeps its id. A request that replays the id gets the blocks back in front of the call,
//! and the `tool_use` (and its `tool_result`) the original id. This is how Gemini's thought
//! signatures travel (`protocol::gemini::signature`): the state lives in the client's
//! conversation, the translators stay pure and the gateway stores nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::wire::ContentBlock;

/// What comes between the upstream's id and the carried blocks. Anthropic's ids
/// (`toolu_` + letters and digits) never contain it.
const MARKER: &str = "_th_";

/// The OpenAI id of a tool call whose `tool_use` block came after `thinking` blocks.
pub fn tool_call_id(tool_use_id: &str, thinking: &[ContentBlock]) -> String {
    if thinking.is_empty() {
        return tool_use_id.to_string();
    }
    let json = serde_json::to_vec(thinking).unwrap_or_default();
    format!("{tool_use_id}{MARKER}{}", URL_SAFE_NO_PAD.encode(json))
}

/// The upstream's id and the thinking blocks an id made by [`tool_call_id`] carries. Ids
/// from elsewhere carry none; only thinking and redacted thinking blocks are read back.
pub fn split(id: &str) -> (&str, Vec<ContentBlock>) {
    let Some((tool_use_id, encoded)) = id.split_once(MARKER) else {
        return (id, Vec::new());
    };
    let blocks = URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|json| serde_json::from_slice::<Vec<ContentBlock>>(&json).ok());
    match blocks {
        Some(blocks) if !blocks.is_empty() && blocks.iter().all(is_thinking) => {
            (tool_use_id, blocks)
        }
        _ => (id, Vec::new()),
    }
}

pub fn is_thinking(block: &ContentBlock) -> bool {
    matches!(
        block,
        ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thought(text: &str, signature: &str) -> ContentBlock {
        ContentBlock::Thinking {
            thinking: text.into(),
            signature: Some(signature.into()),
        }
    }

    #[test]
    fn thinking_blocks_survive_the_round_trip_through_an_id() {
        let blocks = vec![
            thought("Two plus two: \"four\" ✓", "EqQBCkYIBxgC+/=="),
            ContentBlock::RedactedThinking {
                data: "EmwKAhgBEgy".into(),
            },
        ];
        let id = tool_call_id("toolu_01A", &blocks);
        assert!(id.starts_with("toolu_01A_th_"), "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id} is id-safe"
        );
        assert_eq!(split(&id), ("toolu_01A", blocks));
    }

    #[test]
    fn plain_and_foreign_ids_carry_nothing() {
        assert_eq!(tool_call_id("toolu_01A", &[]), "toolu_01A");
        for id in [
            "toolu_01A",
            "call_0_ts_abc",
            "toolu_01A_th_",
            "toolu_01A_th_!!",
            "toolu_01A_th_e30",
        ] {
            assert_eq!(split(id), (id, Vec::new()), "{id}");
        }
        let text = ContentBlock::text("not thinking");
        let smuggled = tool_call_id("toolu_01A", &[text]);
        assert_eq!(split(&smuggled), (smuggled.as_str(), Vec::new()));
    }
}
