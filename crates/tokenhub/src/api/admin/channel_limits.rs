//! The per-channel limits of the channel views: upstream timeout overrides and the
//! concurrency cap, as the management API shows and takes them (`0` clears one).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::ChannelLimits;

/// Per-channel overrides. A timeout in milliseconds replaces the global
/// `upstream_*_timeout_ms` for this channel; absent (`null`) = the global default.
/// `max_concurrency` caps the requests in flight; when every channel of a model is at its
/// cap the client gets `429 channel_saturated`. In a create or an edit, `0` means "none".
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, Default)]
pub struct ChannelLimitsView {
    pub connect_timeout_ms: Option<u64>,
    /// Until the response headers and the first data event (keep-alive comments do not count).
    pub first_token_timeout_ms: Option<u64>,
    /// Longest silence between two data events of a stream.
    pub idle_timeout_ms: Option<u64>,
    /// A whole answer.
    pub total_timeout_ms: Option<u64>,
    pub max_concurrency: Option<u64>,
}

impl ChannelLimitsView {
    pub fn from_row(limits: &ChannelLimits) -> Self {
        let positive = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0);
        ChannelLimitsView {
            connect_timeout_ms: positive(limits.connect_timeout_ms),
            first_token_timeout_ms: positive(limits.first_token_timeout_ms),
            idle_timeout_ms: positive(limits.idle_timeout_ms),
            total_timeout_ms: positive(limits.total_timeout_ms),
            max_concurrency: positive(limits.max_concurrency),
        }
    }

    /// Members present in `patch` replace these; `0` clears one.
    pub fn merged(self, patch: ChannelLimitsPatch) -> ChannelLimits {
        let pick = |new: Option<u64>, old: Option<u64>| {
            new.or(old)
                .filter(|v| *v > 0)
                .and_then(|v| i64::try_from(v).ok())
        };
        ChannelLimits {
            connect_timeout_ms: pick(patch.connect_timeout_ms, self.connect_timeout_ms),
            first_token_timeout_ms: pick(patch.first_token_timeout_ms, self.first_token_timeout_ms),
            idle_timeout_ms: pick(patch.idle_timeout_ms, self.idle_timeout_ms),
            total_timeout_ms: pick(patch.total_timeout_ms, self.total_timeout_ms),
            max_concurrency: pick(patch.max_concurrency, self.max_concurrency),
        }
    }
}

/// The same members as `ChannelLimitsView`, as input: omitted = unchanged (or none).
#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
pub struct ChannelLimitsPatch {
    pub connect_timeout_ms: Option<u64>,
    pub first_token_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub total_timeout_ms: Option<u64>,
    pub max_concurrency: Option<u64>,
}
