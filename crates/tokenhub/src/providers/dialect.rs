//! The quirks of OpenAI-compatible vendors, so a request that works against OpenAI works
//! against every model in the catalogue. A channel's `type` names its dialect
//! (`deepseek`, `qwen`, `zhipu`, `doubao`, `moonshot`; `openai` for none); presets use
//! theirs. Every fix here is a pure function of the request or the answer.
//!
//! | dialect | request | answer |
//! |---|---|---|
//! | all vendors | `developer` messages become `system` (not accepted there) | — |
//! | all but qwen, and openai | `cache_control` markers dropped from messages, parts and tools (qwen keeps those on content parts: DashScope's explicit context cache) | — |
//! | moonshot | no `temperature`, `top_p`, `n`, `presence_penalty`, `frequency_penalty` for kimi-k2.5/k2.6, which fix them (kimi-k2-thinking keeps its temperature) | usage inside the choice is hoisted (relay) |
//! | qwen | `enable_thinking: false` on non-streaming chat unless the client chose (DashScope refuses thinking without streaming) | — |
//! | zhipu | — | business error codes → OpenAI statuses and retry decisions; `finish_reason` `sensitive` → `content_filter`, `model_context_window_exceeded` → `length`, `network_error` → an upstream error |
//! | deepseek | `reasoning_content` passes both ways untouched | `prompt_cache_hit_tokens` priced as cached (usage) |
//! | doubao | model aliases map to concrete Ark ids (presets) | — |

use serde::Deserialize;
use serde_json::Value;

use crate::protocol::openai::operation::Operation;
use crate::protocol::openai::request::{RawObject, RequestFacts, Rewrite};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI itself, or any host without known quirks.
    Generic,
    DeepSeek,
    Qwen,
    Zhipu,
    Doubao,
    Moonshot,
}

/// Models whose sampling Moonshot fixes: any other value of [`MOONSHOT_FIXED`] is a 400
/// ("cannot be modified" in https://platform.kimi.ai/docs/api/models-overview, read
/// 2026-12-05). kimi-k2-thinking is not one of them: its temperature may be set there.
const MOONSHOT_FIXED_SAMPLING: &[&str] = &["kimi-k2.5", "kimi-k2.6"];

/// The members those models fix. Removed rather than refused: the model answers with
/// its fixed values, as it would for a client that sent none.
const MOONSHOT_FIXED: &[&str] = &[
    "temperature",
    "top_p",
    "n",
    "presence_penalty",
    "frequency_penalty",
];

/// How the relay must treat a `finish_reason` of this dialect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishFix {
    Keep,
    Replace(&'static str),
    /// The "finish" is really an upstream failure.
    Fail(String),
}

impl Dialect {
    pub fn parse(kind: &str) -> Option<Dialect> {
        Some(match kind {
            "openai" => Dialect::Generic,
            "deepseek" => Dialect::DeepSeek,
            "qwen" => Dialect::Qwen,
            "zhipu" => Dialect::Zhipu,
            "doubao" => Dialect::Doubao,
            "moonshot" => Dialect::Moonshot,
            _ => return None,
        })
    }

    /// Request edits for this dialect, added to the relay's own (`model`, `stream_options`).
    pub fn adjust_request(
        self,
        facts: &RequestFacts,
        object: &RawObject<'_>,
        upstream_model: &str,
        rewrite: &mut Rewrite,
    ) {
        if facts.operation != Operation::Chat {
            return;
        }
        let mut messages = object.get("messages").and_then(|raw| {
            (self != Dialect::Generic)
                .then(|| developer_as_system(raw.get()))
                .flatten()
        });
        if let Some(raw) = object.get("messages")
            && let Some(stripped) = self.cache_hints_kept(messages.as_deref().unwrap_or(raw.get()))
        {
            messages = Some(stripped);
        }
        if let Some(messages) = messages {
            rewrite.set("messages", messages);
        }
        if let Some(tools) = object
            .get("tools")
            .and_then(|raw| without_cache_control(raw.get()))
        {
            rewrite.set("tools", tools);
        }
        if self == Dialect::Generic {
            return;
        }
        match self {
            Dialect::Moonshot
                if MOONSHOT_FIXED_SAMPLING
                    .iter()
                    .any(|m| upstream_model.starts_with(m)) =>
            {
                for member in MOONSHOT_FIXED {
                    rewrite.remove(member);
                }
            }
            Dialect::Qwen if !facts.stream && object.get("enable_thinking").is_none() => {
                rewrite.set("enable_thinking", "false".to_string());
            }
            _ => {}
        }
    }

    /// The status an upstream error really means. Zhipu sends business codes whose HTTP
    /// status does not tell a client mistake from a channel problem; DeepSeek answers an
    /// unknown or retired model with a 400.
    pub fn effective_status(self, status: u16, body: &[u8]) -> u16 {
        match self {
            Dialect::Zhipu => zhipu_status(status, body),
            Dialect::DeepSeek if status == 400 && deepseek_model_missing(body) => 404,
            _ => status,
        }
    }

    pub fn finish_fix(self, reason: &str) -> FinishFix {
        match (self, reason) {
            (Dialect::Zhipu, "sensitive") => FinishFix::Replace("content_filter"),
            (Dialect::Zhipu, "model_context_window_exceeded") => FinishFix::Replace("length"),
            (Dialect::Zhipu, "network_error") => {
                FinishFix::Fail("the upstream reported a network error while generating".into())
            }
            _ => FinishFix::Keep,
        }
    }
}

/// Zhipu's business codes (https://docs.bigmodel.cn/cn/api/api-code, read 2026-12-05).
fn zhipu_status(status: u16, body: &[u8]) -> u16 {
    #[derive(Deserialize)]
    struct Body {
        error: Code,
    }
    #[derive(Deserialize)]
    struct Code {
        code: Value,
    }
    let Ok(parsed) = serde_json::from_slice::<Body>(body) else {
        return status;
    };
    let code = match &parsed.error.code {
        Value::String(text) => text.parse::<u32>().unwrap_or(0),
        // A number beyond u32 is no code of theirs; cut to 32 bits it could pose as one
        // (2^32 + 1000 as 1000, a rejected key).
        Value::Number(number) => number
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        _ => 0,
    };
    match code {
        1000..=1004 => 401,               // the channel's key
        1113 | 1308..=1311 | 1313 => 402, // the channel's account is out of quota
        1211 => 404,                      // model unknown on this channel
        1210 | 1214 | 1261 | 1301 => 400, // the request itself: parameters, length, content
        1302 | 1303 | 1305 => 429,        // concurrency or frequency limits
        1312 => 503, // "model overloaded, try later": another channel may serve it
        _ => status,
    }
}

/// DeepSeek's unknown-model answer carries no code of its own, only this message
/// (`{"error":{"message":"Model Not Exist","code":"invalid_request_error"}}`): it is
/// the channel's mapping that is wrong, not the client's request.
fn deepseek_model_missing(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
        .is_some_and(|message| message == "Model Not Exist")
}

/// The messages with `developer` roles downgraded to `system`, or `None` when there are
/// none (the common case costs one substring search, no parse).
impl Dialect {
    /// The messages without the `cache_control` markers the vendor has no use for, when
    /// there are any. Qwen (DashScope) takes them on content parts as its explicit
    /// context cache; the others would refuse or ignore them. Markers arrive from
    /// `/v1/messages` clients (Anthropic's prompt caching) or LiteLLM-style chat clients.
    fn cache_hints_kept(self, messages: &str) -> Option<String> {
        if self == Dialect::Qwen {
            return None;
        }
        without_cache_control(messages)
    }
}

/// A JSON array (messages or tools) without any `cache_control` member in its items or
/// their content parts; `None` when it has none (the common case: one substring search).
fn without_cache_control(array: &str) -> Option<String> {
    memchr::memmem::find(array.as_bytes(), b"\"cache_control\"")?;
    let mut parsed: Vec<Value> = serde_json::from_str(array).ok()?;
    for item in &mut parsed {
        if let Some(object) = item.as_object_mut() {
            object.remove("cache_control");
        }
        let parts = item.get_mut("content").and_then(Value::as_array_mut);
        for part in parts.into_iter().flatten() {
            if let Some(part) = part.as_object_mut() {
                part.remove("cache_control");
            }
        }
    }
    Some(Value::from(parsed).to_string())
}

fn developer_as_system(messages: &str) -> Option<String> {
    if !messages.contains("\"developer\"") {
        return None;
    }
    let mut parsed: Vec<Value> = serde_json::from_str(messages).ok()?;
    let mut changed = false;
    for message in &mut parsed {
        if message.get("role").and_then(Value::as_str) == Some("developer") {
            message["role"] = Value::from("system");
            changed = true;
        }
    }
    changed.then(|| Value::from(parsed).to_string())
}

/// Applies `finish_fix` to every choice of a completion or chunk JSON. Returns the new
/// JSON when something was replaced, or the failure it reveals.
pub fn fix_finish_reasons(dialect: Dialect, json: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if dialect != Dialect::Zhipu {
        return Ok(None);
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(json) else {
        return Ok(None);
    };
    let mut changed = false;
    if let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) {
        for choice in choices {
            let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) else {
                continue;
            };
            match dialect.finish_fix(reason) {
                FinishFix::Keep => {}
                FinishFix::Replace(new) => {
                    choice["finish_reason"] = Value::from(new);
                    changed = true;
                }
                FinishFix::Fail(message) => return Err(message),
            }
        }
    }
    Ok(changed.then(|| value.to_string().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(dialect: Dialect, body: &str, model: &str) -> String {
        let object = RawObject::parse(body.as_bytes()).unwrap();
        let facts = object.facts(Operation::Chat).unwrap();
        let mut rewrite = Rewrite::default();
        dialect.adjust_request(&facts, &object, model, &mut rewrite);
        String::from_utf8(object.write_with(&rewrite)).unwrap()
    }

    #[test]
    fn cache_markers_stay_only_where_the_vendor_caches_explicitly() {
        let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}],"tools":[{"type":"function","function":{"name":"f"},"cache_control":{"type":"ephemeral"}}]}"#;
        let parts = r#"[{"role":"user","content":[{"type":"text","text":"hi"}]}]"#;
        let tools = r#"[{"type":"function","function":{"name":"f"}}]"#;
        let stripped =
            format!(r#"{{"model":"m","stream":true,"messages":{parts},"tools":{tools}}}"#);
        assert_eq!(rewritten(Dialect::Generic, body, "m"), stripped);
        assert_eq!(rewritten(Dialect::DeepSeek, body, "m"), stripped);
        // DashScope's explicit context cache reads the markers on content parts.
        let qwen = rewritten(Dialect::Qwen, body, "m");
        assert!(
            qwen.contains(r#""text":"hi","cache_control":{"type":"ephemeral"}"#),
            "{qwen}"
        );
        assert!(qwen.ends_with(&format!(r#""tools":{tools}}}"#)), "{qwen}");
        let plain = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(rewritten(Dialect::Generic, plain, "m"), plain);
    }

    #[test]
    fn moonshot_fixed_sampling_models_get_none_of_the_fixed_members() {
        let body = r#"{"model":"kimi-k2.5","messages":[],"temperature":0.3,"top_p":0.9,"n":2,"presence_penalty":0.5,"frequency_penalty":0.5,"max_tokens":5}"#;
        assert_eq!(
            rewritten(Dialect::Moonshot, body, "kimi-k2.5"),
            r#"{"model":"kimi-k2.5","messages":[],"max_tokens":5}"#
        );
        assert_eq!(rewritten(Dialect::Moonshot, body, "kimi-k2-thinking"), body);
        assert_eq!(rewritten(Dialect::Moonshot, body, "moonshot-v1-8k"), body);
        assert_eq!(rewritten(Dialect::Generic, body, "kimi-k2.5"), body);
    }

    #[test]
    fn qwen_non_streaming_calls_turn_thinking_off_unless_chosen() {
        let body = r#"{"model":"qwen-plus","messages":[]}"#;
        assert_eq!(
            rewritten(Dialect::Qwen, body, "qwen-plus"),
            r#"{"model":"qwen-plus","messages":[],"enable_thinking":false}"#
        );
        let chosen = r#"{"model":"qwen-plus","messages":[],"enable_thinking":true}"#;
        assert_eq!(rewritten(Dialect::Qwen, chosen, "qwen-plus"), chosen);
        let streamed = r#"{"model":"qwen-plus","messages":[],"stream":true}"#;
        assert_eq!(rewritten(Dialect::Qwen, streamed, "qwen-plus"), streamed);
    }

    #[test]
    fn developer_messages_become_system_for_vendors() {
        let body = r#"{"model":"m","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":"developer"}]}"#;
        let out: Value = serde_json::from_str(&rewritten(Dialect::DeepSeek, body, "m")).unwrap();
        assert_eq!(out["messages"][0]["role"], "system");
        assert_eq!(out["messages"][1]["content"], "developer");
        assert_eq!(
            rewritten(Dialect::Generic, body, "m"),
            body,
            "OpenAI understands developer"
        );
    }

    #[test]
    fn zhipu_business_codes_decide_status() {
        let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"x"}}}}"#);
        assert_eq!(
            Dialect::Zhipu.effective_status(400, body("1301").as_bytes()),
            400
        );
        assert_eq!(
            Dialect::Zhipu.effective_status(429, body("1113").as_bytes()),
            402
        );
        assert_eq!(
            Dialect::Zhipu.effective_status(429, body("1302").as_bytes()),
            429
        );
        assert_eq!(
            Dialect::Zhipu.effective_status(400, body("1211").as_bytes()),
            404
        );
        assert_eq!(
            Dialect::Zhipu.effective_status(429, body("1312").as_bytes()),
            503,
            "overloaded, not out of quota"
        );
        assert_eq!(Dialect::Zhipu.effective_status(500, b"not json"), 500);
        let beyond_u32 = format!(
            r#"{{"error":{{"code":{},"message":"x"}}}}"#,
            (1u64 << 32) + 1000
        );
        assert_eq!(
            Dialect::Zhipu.effective_status(500, beyond_u32.as_bytes()),
            500,
            "not taken for code 1000 (a rejected key)"
        );
        let missing = br#"{"error":{"message":"Model Not Exist","type":"invalid_request_error"}}"#;
        assert_eq!(Dialect::DeepSeek.effective_status(400, missing), 404);
        assert_eq!(
            Dialect::Generic.effective_status(400, body("1113").as_bytes()),
            400
        );
    }

    #[test]
    fn zhipu_finish_reasons_are_mapped_or_failed() {
        let chunk = br#"{"choices":[{"index":0,"delta":{},"finish_reason":"sensitive"}]}"#;
        let fixed = fix_finish_reasons(Dialect::Zhipu, chunk).unwrap().unwrap();
        assert!(
            String::from_utf8(fixed)
                .unwrap()
                .contains(r#""finish_reason":"content_filter""#)
        );
        let failed = br#"{"choices":[{"index":0,"delta":{},"finish_reason":"network_error"}]}"#;
        assert!(fix_finish_reasons(Dialect::Zhipu, failed).is_err());
        assert_eq!(
            fix_finish_reasons(Dialect::Zhipu, br#"{"choices":[{"finish_reason":"stop"}]}"#),
            Ok(None)
        );
        assert_eq!(fix_finish_reasons(Dialect::Generic, chunk), Ok(None));
    }
}
