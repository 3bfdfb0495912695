//! The `[usage]` settings: how long raw usage records are kept.
//!
//! | setting | env | default |
//! |---|---|---|
//! | `usage.retention_days` | `TOKENHUB_USAGE_RETENTION_DAYS` | `90`: records older than this are deleted (hourly, in batches); the hourly rollups that summaries, charts and billing read are kept. `0` keeps records forever |

use serde::Deserialize;

use super::ConfigError;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct UsageSettings {
    pub retention_days: u64,
}

impl Default for UsageSettings {
    fn default() -> Self {
        UsageSettings { retention_days: 90 }
    }
}

impl UsageSettings {
    pub(super) fn apply_env(
        &mut self,
        var: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        super::set(
            var,
            "TOKENHUB_USAGE_RETENTION_DAYS",
            &mut self.retention_days,
        )
    }

    /// How long records are kept; `None`: forever.
    pub fn retention(&self) -> Option<std::time::Duration> {
        (self.retention_days > 0)
            .then(|| std::time::Duration::from_secs(self.retention_days.saturating_mul(86_400)))
    }
}
