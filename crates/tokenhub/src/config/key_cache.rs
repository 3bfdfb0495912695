//! The `[key_cache]` settings: how many keys a gateway keeps in memory, how long it
//! remembers that a key does not exist, and how many database lookups unknown keys may
//! cause.
//!
//! | setting | env | default |
//! |---|---|---|
//! | `key_cache.capacity` | `TOKENHUB_KEY_CACHE_CAPACITY` | `100000` keys (and as many users) |
//! | `key_cache.negative_ttl_ms` | `TOKENHUB_KEY_CACHE_NEGATIVE_TTL_MS` | `30000`: an unknown key is not looked up again for 30 s (unless it is created) |
//! | `key_cache.lookups_per_address_per_s` | `TOKENHUB_KEY_LOOKUPS_PER_ADDRESS_PER_S` | `5` (bursts of 4× that) |
//! | `key_cache.lookups_per_s` | `TOKENHUB_KEY_LOOKUPS_PER_S` | `500`: database lookups of uncached keys, all addresses together |
//! | `key_cache.balance_refresh_ms` | `TOKENHUB_BALANCE_REFRESH_MS` | `5000`: how often balances held in memory are re-read (other instances' debits) |

use serde::Deserialize;

use super::ConfigError;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct KeyCacheSettings {
    pub capacity: u64,
    pub negative_ttl_ms: u64,
    pub lookups_per_address_per_s: u32,
    pub lookups_per_s: u32,
    pub balance_refresh_ms: u64,
}

impl Default for KeyCacheSettings {
    fn default() -> Self {
        KeyCacheSettings {
            capacity: 100_000,
            negative_ttl_ms: 30_000,
            lookups_per_address_per_s: 5,
            lookups_per_s: 500,
            balance_refresh_ms: 5_000,
        }
    }
}

impl KeyCacheSettings {
    pub(super) fn apply_env(
        &mut self,
        var: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        use super::set;
        set(var, "TOKENHUB_KEY_CACHE_CAPACITY", &mut self.capacity)?;
        set(
            var,
            "TOKENHUB_KEY_CACHE_NEGATIVE_TTL_MS",
            &mut self.negative_ttl_ms,
        )?;
        set(
            var,
            "TOKENHUB_KEY_LOOKUPS_PER_ADDRESS_PER_S",
            &mut self.lookups_per_address_per_s,
        )?;
        set(var, "TOKENHUB_KEY_LOOKUPS_PER_S", &mut self.lookups_per_s)?;
        set(
            var,
            "TOKENHUB_BALANCE_REFRESH_MS",
            &mut self.balance_refresh_ms,
        )?;
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name: &str, message: &str| {
            Err(ConfigError::Invalid {
                name: format!("key_cache.{name}"),
                message: message.into(),
            })
        };
        if self.capacity == 0 {
            return invalid("capacity", "must be at least 1");
        }
        if self.lookups_per_address_per_s == 0 || self.lookups_per_s == 0 {
            return invalid(
                "lookups_per_s",
                "must be at least 1 (a new key could never be looked up)",
            );
        }
        if self.balance_refresh_ms == 0 {
            return invalid("balance_refresh_ms", "must be at least 1 ms");
        }
        Ok(())
    }
}
