//! A channel's upstream keys and per-channel timeouts, as the snapshot holds them.
//!
//! Several keys of one channel are stored in its `api_key` text (and may come from its
//! `api_key_env` variable), one per line or separated by commas: a single key is the
//! one-element case, so channels written before multi-key support read unchanged.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::store::ChannelRow;

/// More keys than this on one channel are ignored (routing tracks tried keys in a `u64`).
pub const MAX_KEYS_PER_CHANNEL: usize = 64;

/// One upstream credential of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamKey {
    /// Stable while the key's text is unchanged, so health survives reloads and edits of
    /// the channel's other keys (a position would shift when a key is removed).
    pub id: u64,
    pub secret: String,
    /// `sk-…abcd`, precomputed for operators' views.
    pub masked: String,
}

/// The keys of a stored `api_key` text: split on newlines and commas, trimmed, no empties.
pub fn split_keys(text: &str) -> Vec<String> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_string)
        .collect()
}

/// The stored form of several keys: one per line.
pub fn join_keys(keys: &[String]) -> Option<String> {
    let kept: Vec<&str> = keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect();
    (!kept.is_empty()).then(|| kept.join("\n"))
}

pub fn upstream_keys(channel: &str, secrets: Vec<String>) -> Vec<UpstreamKey> {
    if secrets.len() > MAX_KEYS_PER_CHANNEL {
        tracing::warn!(
            channel,
            keys = secrets.len(),
            "only the first {MAX_KEYS_PER_CHANNEL} keys of the channel are used"
        );
    }
    secrets
        .into_iter()
        .take(MAX_KEYS_PER_CHANNEL)
        .map(|secret| UpstreamKey {
            id: fingerprint(&secret),
            masked: mask_secret(&secret),
            secret,
        })
        .collect()
}

/// `sk-…abcd`: enough to tell two keys apart, useless to an attacker.
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// A process-local identity of a key's text (never shown, never stored).
fn fingerprint(secret: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    secret.hash(&mut hasher);
    hasher.finish()
}

/// Per-channel overrides of the global upstream timeouts; `None` keeps the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelTimeouts {
    pub connect: Option<Duration>,
    /// Until the response headers and the first data event.
    pub first_token: Option<Duration>,
    /// Longest silence between two data events of a stream.
    pub idle: Option<Duration>,
    /// A whole answer.
    pub total: Option<Duration>,
}

impl ChannelTimeouts {
    pub fn from_row(row: &ChannelRow) -> ChannelTimeouts {
        let ms = |value: Option<i64>| {
            value
                .and_then(|v| u64::try_from(v).ok())
                .filter(|v| *v > 0)
                .map(Duration::from_millis)
        };
        let limits = &row.limits;
        ChannelTimeouts {
            connect: ms(limits.connect_timeout_ms),
            first_token: ms(limits.first_token_timeout_ms),
            idle: ms(limits.idle_timeout_ms),
            total: ms(limits.total_timeout_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_or_many_read_the_same_way() {
        assert_eq!(split_keys("sk-one"), ["sk-one"]);
        assert_eq!(split_keys(" a \n\nb,c\r\n"), ["a", "b", "c"]);
        assert!(split_keys(" \n ").is_empty());
        assert_eq!(
            join_keys(&["a".into(), " ".into(), "b".into()]).as_deref(),
            Some("a\nb")
        );
        assert_eq!(join_keys(&[]), None);
    }

    #[test]
    fn key_ids_follow_the_text_not_the_position() {
        let first = upstream_keys("c", vec!["k-aaaaaaaaaaaa".into(), "k-bbbbbbbbbbbb".into()]);
        let second = upstream_keys("c", vec!["k-bbbbbbbbbbbb".into()]);
        assert_eq!(first[1].id, second[0].id);
        assert_ne!(first[0].id, first[1].id);
        assert_eq!(first[1].masked, "k-b…bbbb");
        let many = upstream_keys("c", (0..70).map(|i| format!("key-{i}")).collect());
        assert_eq!(many.len(), MAX_KEYS_PER_CHANNEL);
    }
}
