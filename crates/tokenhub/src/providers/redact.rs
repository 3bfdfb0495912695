//! Credentials out of upstream text. An upstream may echo the key it received (or
//! another one) in an error message; that text goes on to the client, the usage record,
//! the channel health view and the log, so every failure message is passed through
//! [`redact`] when it is built (`UpstreamFailure::new`, `UpstreamFailure::without_keys`).

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What a credential is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Channel keys shorter than this are not searched for as text: replacing every
/// occurrence of a 3-letter "key" would garble messages and protect nothing.
pub const MIN_KEY_LEN: usize = 8;

/// A name that announces a credential, then the value: `Bearer x`, `x-goog-api-key: x`,
/// `"api_key":"x"`, `?key=x`. The name is kept, the value goes.
static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"(?i)(?P<label>\bbearer\s+"#,
        r#"|\b(?:x-goog-api-key|x-api-key|api[-_]?key|access[-_]?token|authorization|secret[-_]?key)["']?\s*[:=]\s*["']?(?:bearer\s+)?"#,
        r#"|[?&;](?:key|api[-_]?key|access_token|token)=)"#,
        r#"(?P<secret>[A-Za-z0-9._~+/=\-]{4,})"#,
    ))
    .expect("static pattern")
});

/// Shapes of vendors' keys, recognisable without a label.
static SHAPED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:",
        r"sk-[A-Za-z0-9_\-]{8,}", // OpenAI, Anthropic, DeepSeek, Moonshot, Qwen
        r"|AIza[0-9A-Za-z_\-]{20,}", // Google (Gemini)
        r"|(?:xai|pplx)-[A-Za-z0-9]{16,}", // xAI, Perplexity
        r"|(?:gsk|hf|ghp|gho|ghs|github_pat|r8)_[A-Za-z0-9_]{16,}", // Groq, Hugging Face, GitHub, Replicate
        r"|AKIA[0-9A-Z]{16}",                                       // AWS access key id
        r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", // JWT
        r"|[0-9a-f]{32}\.[A-Za-z0-9]{16}",                          // Zhipu `id.secret`
        r")",
    ))
    .expect("static pattern")
});

/// `text` without any of `keys` (exact text, longest first) and without anything shaped
/// like a credential.
pub fn redact<'a>(text: &str, keys: impl IntoIterator<Item = &'a str>) -> String {
    let mut keys: Vec<&str> = keys
        .into_iter()
        .filter(|key| key.len() >= MIN_KEY_LEN)
        .collect();
    // A key that contains another must go first, or the other would leave its remains.
    keys.sort_unstable_by_key(|key| std::cmp::Reverse(key.len()));
    let mut text = text.to_string();
    for key in keys {
        if text.contains(key) {
            text = text.replace(key, REDACTED);
        }
    }
    let text = LABELLED.replace_all(&text, |caps: &Captures<'_>| {
        let secret = &caps["secret"];
        // `Authorization: Bearer [redacted]`: the scheme is not the secret.
        if secret.eq_ignore_ascii_case("bearer") || secret.eq_ignore_ascii_case("basic") {
            return caps[0].to_string();
        }
        format!("{}{REDACTED}", &caps["label"])
    });
    SHAPED.replace_all(&text, REDACTED).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(text: &str) -> String {
        redact(text, [])
    }

    #[test]
    fn channel_keys_go_whatever_their_shape() {
        let keys = ["opaque-key-0123456789", "opaque-key-0123456789-longer"];
        let message = "bad key opaque-key-0123456789-longer; also opaque-key-0123456789.";
        assert_eq!(
            redact(message, keys),
            "bad key [redacted]; also [redacted]."
        );
    }

    #[test]
    fn short_channel_keys_are_not_searched_for() {
        assert_eq!(redact("a bad request", ["bad"]), "a bad request");
    }

    #[test]
    fn bearer_tokens_go_and_the_word_stays() {
        assert_eq!(
            clean("invalid header Authorization: Bearer abc.DEF-123_x"),
            "invalid header Authorization: Bearer [redacted]"
        );
        assert_eq!(clean("got bearer zzzzzzzzzz!"), "got bearer [redacted]!");
    }

    #[test]
    fn vendor_key_shapes_go() {
        for key in [
            "sk-proj-AbCdEf0123456789",
            "sk-ant-api03-AbCdEf0123456789",
            "AIzaSyA1234567890abcdefghijklmnopqrs",
            "xai-AbCdEf0123456789AbCd",
            "gsk_AbCdEf0123456789AbCd",
            "hf_AbCdEf0123456789AbCd",
            "AKIAABCDEFGHIJKLMNOP",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig-nature",
            "0123456789abcdef0123456789abcdef.AbCdEf0123456789",
        ] {
            let message = format!("Incorrect API key provided: {key}. See docs.");
            assert_eq!(
                clean(&message),
                "Incorrect API key provided: [redacted]. See docs.",
                "{key}"
            );
        }
    }

    #[test]
    fn labelled_values_go() {
        assert_eq!(
            clean(r#"{"x-goog-api-key": "my-google-key-value"}"#),
            r#"{"x-goog-api-key": "[redacted]"}"#
        );
        assert_eq!(
            clean("GET /v1beta/models?alt=sse&key=my-google-key-value failed"),
            "GET /v1beta/models?alt=sse&key=[redacted] failed"
        );
        assert_eq!(
            clean("x-api-key=some-anthropic-value"),
            "x-api-key=[redacted]"
        );
        assert_eq!(clean("api_key: 'secret-value'"), "api_key: '[redacted]'");
    }

    #[test]
    fn ordinary_messages_are_unchanged() {
        for message in [
            "Rate limit reached for gpt-4o in organization org-abc on tokens per min.",
            "The model `gpt-4o-mini` does not exist or you do not have access to it.",
            "upstream returned HTTP 500",
            "This task-oriented request is too long: 10000 tokens",
            "max_tokens: must be at most 8192",
        ] {
            assert_eq!(clean(message), message);
        }
    }

    #[test]
    fn a_key_inside_a_labelled_value_is_redacted_once() {
        assert_eq!(
            redact(
                "Authorization: Bearer opaque-key-0123456789",
                ["opaque-key-0123456789"]
            ),
            "Authorization: Bearer [redacted]"
        );
    }
}
