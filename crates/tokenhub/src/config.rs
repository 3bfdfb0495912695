//! Typed settings: defaults, then the optional TOML file, then environment variables.
//!
//! | setting | env | default |
//! |---|---|---|
//! | `listen` | `TOKENHUB_LISTEN` | `127.0.0.1:3000` |
//! | `database_url` | `TOKENHUB_DATABASE_URL` | `sqlite://data/tokenhub.db` |
//! | `reload_interval_ms` | `TOKENHUB_RELOAD_INTERVAL_MS` | `100`: how often the change feed is read |
//! | `default_output_reserve_tokens` | `TOKENHUB_DEFAULT_OUTPUT_RESERVE_TOKENS` | `1024` |
//! | `upstream_connect_timeout_ms` | `TOKENHUB_UPSTREAM_CONNECT_TIMEOUT_MS` | `10000` |
//! | `upstream_first_byte_timeout_ms` | `TOKENHUB_UPSTREAM_FIRST_BYTE_TIMEOUT_MS` | `120000` |
//! | `upstream_idle_timeout_ms` | `TOKENHUB_UPSTREAM_IDLE_TIMEOUT_MS` | `120000` |
//! | `upstream_total_timeout_ms` | `TOKENHUB_UPSTREAM_TOTAL_TIMEOUT_MS` | `900000` |
//! | `max_attempts` | `TOKENHUB_MAX_ATTEMPTS` | `3` |
//! | `breaker_threshold` | `TOKENHUB_BREAKER_THRESHOLD` | `5` |
//! | `breaker_window_ms` | `TOKENHUB_BREAKER_WINDOW_MS` | `60000` |
//! | `breaker_cooldown_ms` | `TOKENHUB_BREAKER_COOLDOWN_MS` | `30000` |
//! | `shutdown_grace_ms` | `TOKENHUB_SHUTDOWN_GRACE_MS` | `30000` |
//! | `startup_model_check` | `TOKENHUB_STARTUP_MODEL_CHECK` | `true`: ping every mapping of every keyed channel once at start-up, in the background, and log the ones the upstream rejects |
//! | `trusted_proxies` | `TOKENHUB_TRUSTED_PROXIES` (comma-separated) | none |
//! | `cors_allowed_origins` | `TOKENHUB_CORS_ALLOWED_ORIGINS` (comma-separated; empty: off) | `["*"]`: any origin may call `/v1/` with a key (never `/api/`) |
//! | `max_body_bytes` | `TOKENHUB_MAX_BODY_BYTES` | `33554432` (32 MiB) |
//! | `header_read_timeout_ms` | `TOKENHUB_HEADER_READ_TIMEOUT_MS` | `30000` |
//! | `body_read_timeout_ms` | `TOKENHUB_BODY_READ_TIMEOUT_MS` | `60000` |
//! | `first_bytes_timeout_ms` | `TOKENHUB_FIRST_BYTES_TIMEOUT_MS` | `10000` |
//! | `max_connections` | `TOKENHUB_MAX_CONNECTIONS` | `10000` |
//! | `log_format` | `TOKENHUB_LOG_FORMAT` (`text`/`json`) | `text` |
//! | `redis_url` | `TOKENHUB_REDIS_URL` | none: limits, slots, health and reservations are per process (see docs/redis.md) |
//! | `redis_prefix` | `TOKENHUB_REDIS_PREFIX` | `th:`: the namespace of every Redis key and channel |
//! | `public_url` | `TOKENHUB_PUBLIC_URL` | none: the docs page uses the request's `Host` |
//! | `metrics_token` | `TOKENHUB_METRICS_TOKEN` | none: `/metrics` is open |
//! | `responses_retention_days` | `TOKENHUB_RESPONSES_RETENTION_DAYS` | `30`: how long `/v1/responses` keeps stored responses (`store`) |
//!
//! The `[database]` (pool size, timeouts) and `[ledger]` (spill file) sections are in
//! `config/operations.rs`.
//!
//! The root password is never read from the file: only `TOKENHUB_ROOT_PASSWORD`; nor is
//! the key that seals upstream keys in the database: only `TOKENHUB_SECRET_KEY`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ledger::money::{MoneyError, Nanos};
use crate::ledger::price_tiers::PriceRules;
use crate::providers::urls::http_uri;
use crate::store::SecretKey;

pub mod accounts;
pub mod key_cache;
pub mod operations;
pub mod secret;
pub mod usage;
pub use accounts::{AccountSettings, SignupMode};
pub use key_cache::KeyCacheSettings;
pub use operations::{DatabaseSettings, LedgerSettings};
pub use secret::Secret;
pub use usage::UsageSettings;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value for {name}: {message}")]
    Invalid { name: String, message: String },
}

/// A shorter `metrics_token` is refused at start: it would be guessable.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    /// May hold the database's password.
    pub database_url: Secret,
    pub reload_interval_ms: u64,
    pub default_output_reserve_tokens: u64,
    pub upstream_connect_timeout_ms: u64,
    pub upstream_first_byte_timeout_ms: u64,
    pub upstream_idle_timeout_ms: u64,
    pub upstream_total_timeout_ms: u64,
    pub max_attempts: usize,
    pub breaker_threshold: usize,
    pub breaker_window_ms: u64,
    pub breaker_cooldown_ms: u64,
    pub shutdown_grace_ms: u64,
    pub startup_model_check: bool,
    pub max_body_bytes: usize,
    /// A client must send its request headers within this time (also the longest an idle
    /// keep-alive connection stays open).
    pub header_read_timeout_ms: u64,
    /// A client must send its whole request body within this time after its headers.
    pub body_read_timeout_ms: u64,
    /// A client must send its first bytes within this time after connecting.
    pub first_bytes_timeout_ms: u64,
    /// Open client connections at most; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// Proxies (IPs or CIDRs) whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<String>,
    /// Origins a browser page may call `/v1/` from (`api::cors`); `*` is any, none is off.
    pub cors_allowed_origins: Vec<String>,
    pub log_format: LogFormat,
    /// How clients reach this gateway (e.g. `https://llm.example.com`), for the docs page.
    pub public_url: Option<String>,
    /// Shared state across instances (docs/redis.md); none = this process only.
    pub redis_url: Option<Secret>,
    pub redis_prefix: String,
    /// When set, `/metrics` requires `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<Secret>,
    /// Days a stored Response (`store: true`) is kept for `GET` and `previous_response_id`.
    pub responses_retention_days: u64,
    pub channels: Vec<ChannelConfig>,
    pub models: Vec<ModelConfig>,
    /// Sign-up, trial credit and sessions (`[accounts]`; see `config/accounts.rs`).
    pub accounts: AccountSettings,
    /// Keys and users in memory, and lookups of unknown keys (`[key_cache]`).
    pub key_cache: KeyCacheSettings,
    /// How long raw usage records are kept (`[usage]`; see `config/usage.rs`).
    pub usage: UsageSettings,
    /// The connection pool and database timeouts (`[database]`; see `config/operations.rs`).
    pub database: DatabaseSettings,
    /// Where usage records wait while the database is unreachable (`[ledger]`).
    pub ledger: LedgerSettings,
    #[serde(skip)]
    pub root_password: Option<Secret>,
    /// Seals upstream channel keys in the database; only from `TOKENHUB_SECRET_KEY`.
    #[serde(skip)]
    pub secret_key: Option<Secret>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            other => Err(format!("'{other}' is not 'text' or 'json'")),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            database_url: Secret::from("sqlite://data/tokenhub.db"),
            reload_interval_ms: 100,
            default_output_reserve_tokens: 1024,
            upstream_connect_timeout_ms: 10_000,
            upstream_first_byte_timeout_ms: 120_000,
            upstream_idle_timeout_ms: 120_000,
            upstream_total_timeout_ms: 900_000,
            max_attempts: 3,
            breaker_threshold: 5,
            breaker_window_ms: 60_000,
            breaker_cooldown_ms: 30_000,
            shutdown_grace_ms: 30_000,
            startup_model_check: true,
            max_body_bytes: 32 * 1024 * 1024,
            header_read_timeout_ms: 30_000,
            body_read_timeout_ms: 60_000,
            first_bytes_timeout_ms: 10_000,
            max_connections: 10_000,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: vec!["*".to_string()],
            log_format: LogFormat::Text,
            public_url: None,
            redis_url: None,
            redis_prefix: "th:".into(),
            metrics_token: None,
            responses_retention_days: 30,
            channels: Vec::new(),
            models: Vec::new(),
            accounts: AccountSettings::default(),
            key_cache: KeyCacheSettings::default(),
            usage: UsageSettings::default(),
            database: DatabaseSettings::default(),
            ledger: LedgerSettings::default(),
            root_password: None,
            secret_key: None,
        }
    }
}

/// A `[[channels]]` entry: one upstream account.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub base_url: String,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub model_map: BTreeMap<String, String>,
    #[serde(default)]
    pub priority: i64,
    #[serde(default = "one")]
    pub weight: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Several upstream keys, used in turn (each with its own health); added to `api_key`.
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    /// Overrides of the global `upstream_*_timeout_ms` for this channel only.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default)]
    pub first_token_timeout_ms: Option<u64>,
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    #[serde(default)]
    pub total_timeout_ms: Option<u64>,
    /// Requests in flight on this channel at most; beyond it the router skips the channel.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// The upstream serves OpenAI's Responses API itself (OpenAI's own API):
    /// `/v1/responses` is passed through instead of translated to chat completions.
    #[serde(default)]
    pub responses_native: bool,
}

impl ChannelConfig {
    /// Every key the entry declares, `api_key` first.
    pub fn keys(&self) -> Vec<String> {
        self.api_key
            .iter()
            .flat_map(|text| crate::catalog::keys::split_keys(text.expose()))
            .chain(self.api_keys.iter().map(|key| key.expose().to_string()))
            .collect()
    }

    pub fn limits(&self) -> crate::store::ChannelLimits {
        let ms = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
        crate::store::ChannelLimits {
            connect_timeout_ms: ms(self.connect_timeout_ms),
            first_token_timeout_ms: ms(self.first_token_timeout_ms),
            idle_timeout_ms: ms(self.idle_timeout_ms),
            total_timeout_ms: ms(self.total_timeout_ms),
            max_concurrency: self.max_concurrency.map(i64::from),
        }
    }
}

fn one() -> i64 {
    1
}

fn yes() -> bool {
    true
}

/// A `[[models]]` entry: one public model of the catalogue. Prices are decimal USD per 1M tokens.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub id: String,
    pub provider: String,
    #[serde(default)]
    pub context: i64,
    pub input_usd_per_mtok: String,
    pub output_usd_per_mtok: String,
    #[serde(default)]
    pub cached_input_usd_per_mtok: Option<String>,
    /// Prompt tokens written to the provider's cache (Anthropic: 1.25× input); absent =
    /// the input price.
    #[serde(default)]
    pub cache_write_usd_per_mtok: Option<String>,
    /// Prompt tokens written to a 1-hour cache; absent = 2× the input price for a model an
    /// Anthropic channel serves, else the cache-write price.
    #[serde(default)]
    pub cache_write_1h_usd_per_mtok: Option<String>,
    /// Hits of an explicit cache (DashScope: 10 % of input); absent = the cache-read price.
    #[serde(default)]
    pub explicit_cached_input_usd_per_mtok: Option<String>,
    /// `[[models.price_tiers]]`: prices by service tier or UTC window (see docs/billing.md).
    #[serde(default)]
    pub price_tiers: Vec<crate::ledger::price_tiers::PriceTier>,
    /// Models to try, in order, when every channel of this one fails; absent = leave
    /// whatever the database has.
    #[serde(default)]
    pub fallbacks: Option<Vec<String>>,
}

/// A `[[models]]` entry's prices, parsed; the optional cache prices stay `None` when unset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPrices {
    pub input: Nanos,
    pub output: Nanos,
    pub cache_read: Option<Nanos>,
    pub cache_write: Option<Nanos>,
    pub rules: PriceRules,
}

impl ModelPrices {
    fn any_negative(&self) -> bool {
        [
            Some(self.input),
            Some(self.output),
            self.cache_read,
            self.cache_write,
        ]
        .into_iter()
        .flatten()
        .any(|p| p < Nanos::ZERO)
            || self.rules.any_negative()
    }
}

impl ModelConfig {
    pub fn prices(&self) -> Result<ModelPrices, MoneyError> {
        let optional = |price: &Option<String>| price.as_deref().map(str::parse).transpose();
        Ok(ModelPrices {
            input: self.input_usd_per_mtok.parse()?,
            output: self.output_usd_per_mtok.parse()?,
            cache_read: optional(&self.cached_input_usd_per_mtok)?,
            cache_write: optional(&self.cache_write_usd_per_mtok)?,
            rules: PriceRules {
                cache_write_1h: optional(&self.cache_write_1h_usd_per_mtok)?,
                explicit_cached_input: optional(&self.explicit_cached_input_usd_per_mtok)?,
                tiers: self.price_tiers.clone(),
            },
        })
    }
}

impl Settings {
    /// Loads settings: `explicit` path, else `./tokenhub.toml` if present, then env overrides.
    pub fn load(explicit: Option<&Path>) -> Result<Settings, ConfigError> {
        let default_file = Path::new("tokenhub.toml");
        let file = explicit.or(default_file.exists().then_some(default_file));
        let mut settings = match file {
            Some(path) => Self::from_file(path)?,
            None => Settings::default(),
        };
        settings.apply_env(|name| std::env::var(name).ok())?;
        settings.validate()?;
        Ok(settings)
    }

    fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        set(&var, "TOKENHUB_LISTEN", &mut self.listen)?;
        set(&var, "TOKENHUB_DATABASE_URL", &mut self.database_url)?;
        if let Some(url) = var("TOKENHUB_REDIS_URL") {
            self.redis_url = Some(url.trim()).filter(|u| !u.is_empty()).map(Secret::from);
        }
        set(&var, "TOKENHUB_REDIS_PREFIX", &mut self.redis_prefix)?;
        if let Some(url) = var("TOKENHUB_PUBLIC_URL") {
            self.public_url = Some(url.trim().to_string()).filter(|u| !u.is_empty());
        }

        set(
            &var,
            "TOKENHUB_RELOAD_INTERVAL_MS",
            &mut self.reload_interval_ms,
        )?;
        set(
            &var,
            "TOKENHUB_DEFAULT_OUTPUT_RESERVE_TOKENS",
            &mut self.default_output_reserve_tokens,
        )?;
        set(
            &var,
            "TOKENHUB_UPSTREAM_CONNECT_TIMEOUT_MS",
            &mut self.upstream_connect_timeout_ms,
        )?;
        set(
            &var,
            "TOKENHUB_UPSTREAM_FIRST_BYTE_TIMEOUT_MS",
            &mut self.upstream_first_byte_timeout_ms,
        )?;
        set(
            &var,
            "TOKENHUB_UPSTREAM_IDLE_TIMEOUT_MS",
            &mut self.upstream_idle_timeout_ms,
        )?;
        set(
            &var,
            "TOKENHUB_UPSTREAM_TOTAL_TIMEOUT_MS",
            &mut self.upstream_total_timeout_ms,
        )?;
        set(&var, "TOKENHUB_MAX_ATTEMPTS", &mut self.max_attempts)?;
        set(
            &var,
            "TOKENHUB_BREAKER_THRESHOLD",
            &mut self.breaker_threshold,
        )?;
        set(
            &var,
            "TOKENHUB_BREAKER_WINDOW_MS",
            &mut self.breaker_window_ms,
        )?;
        set(
            &var,
            "TOKENHUB_BREAKER_COOLDOWN_MS",
            &mut self.breaker_cooldown_ms,
        )?;
        set(
            &var,
            "TOKENHUB_SHUTDOWN_GRACE_MS",
            &mut self.shutdown_grace_ms,
        )?;
        set(
            &var,
            "TOKENHUB_STARTUP_MODEL_CHECK",
            &mut self.startup_model_check,
        )?;
        set(&var, "TOKENHUB_MAX_BODY_BYTES", &mut self.max_body_bytes)?;
        set(
            &var,
            "TOKENHUB_HEADER_READ_TIMEOUT_MS",
            &mut self.header_read_timeout_ms,
        )?;
        set(
            &var,
            "TOKENHUB_BODY_READ_TIMEOUT_MS",
            &mut self.body_read_timeout_ms,
        )?;
        set(
            &var,
            "TOKENHUB_FIRST_BYTES_TIMEOUT_MS",
            &mut self.first_bytes_timeout_ms,
        )?;
        set(&var, "TOKENHUB_MAX_CONNECTIONS", &mut self.max_connections)?;
        set(
            &var,
            "TOKENHUB_RESPONSES_RETENTION_DAYS",
            &mut self.responses_retention_days,
        )?;
        if let Some(list) = var("TOKENHUB_TRUSTED_PROXIES") {
            self.trusted_proxies = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(list) = var("TOKENHUB_CORS_ALLOWED_ORIGINS") {
            self.cors_allowed_origins = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        set(&var, "TOKENHUB_LOG_FORMAT", &mut self.log_format)?;
        if let Some(token) = var("TOKENHUB_METRICS_TOKEN") {
            self.metrics_token = Some(Secret::from(token));
        }
        self.accounts.apply_env(&var)?;
        self.key_cache.apply_env(&var)?;
        self.usage.apply_env(&var)?;
        self.database.apply_env(&var)?;
        self.ledger.apply_env(&var)?;
        self.root_password = var("TOKENHUB_ROOT_PASSWORD")
            .filter(|p| !p.is_empty())
            .map(Secret::from);
        self.secret_key = var("TOKENHUB_SECRET_KEY")
            .filter(|k| !k.trim().is_empty())
            .map(Secret::from);
        Ok(())
    }

    /// The start-up checks; public for the fuzz targets (`fuzz/`), which parse the file
    /// without `load`'s file and environment reads.
    #[doc(hidden)]
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name: String, message: String| Err(ConfigError::Invalid { name, message });
        for (name, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("first_bytes_timeout_ms", self.first_bytes_timeout_ms),
        ] {
            if value == 0 {
                return invalid(name.into(), "must be at least 1 ms".into());
            }
        }
        if self.max_connections == 0 {
            return invalid("max_connections".into(), "must be at least 1".into());
        }
        self.accounts.trial_credit()?;
        self.key_cache.validate()?;
        self.database.validate()?;
        let rpm = self.accounts.anonymous_chat_rpm;
        if let Err(reason) = crate::accounts::site_settings::check_anonymous_chat_rpm(rpm) {
            return invalid(
                "accounts.anonymous_chat_rpm".into(),
                format!("{rpm} {reason}"),
            );
        }
        for origin in &self.cors_allowed_origins {
            crate::api::cors::check_origin(origin).or_else(|why| {
                invalid(
                    "cors_allowed_origins (TOKENHUB_CORS_ALLOWED_ORIGINS)".into(),
                    why,
                )
            })?;
        }
        if let Some(Err(why)) = self.public_url.as_deref().map(http_uri) {
            return invalid("public_url".into(), why);
        }
        if let Some(Err(why)) = self
            .secret_key
            .as_ref()
            .map(|k| SecretKey::parse(k.expose()))
        {
            return invalid("TOKENHUB_SECRET_KEY".into(), why);
        }
        if let Some(token) = self.metrics_token.as_ref().map(Secret::expose)
            && (token.len() < MIN_METRICS_TOKEN_LEN || token.trim() != token)
        {
            return invalid(
                "metrics_token".into(),
                format!(
                    "must be at least {MIN_METRICS_TOKEN_LEN} characters, without surrounding spaces"
                ),
            );
        }
        for model in &self.models {
            if let Err(e) = model.prices() {
                return invalid(format!("models.{}", model.id), e.to_string());
            }
            if model.prices().is_ok_and(|p| p.any_negative()) {
                return invalid(
                    format!("models.{}", model.id),
                    "prices must not be negative".into(),
                );
            }
            if let Err(why) = crate::ledger::price_tiers::validate(&model.price_tiers) {
                return invalid(format!("models.{}", model.id), why);
            }
        }
        for channel in &self.channels {
            let name = format!("channels.{}", channel.name);
            if channel.weight < 0 {
                return invalid(name, "weight must not be negative".into());
            }
            let keys = channel.keys();
            if keys.len() > crate::catalog::MAX_KEYS_PER_CHANNEL {
                return invalid(
                    name,
                    format!("at most {} keys", crate::catalog::MAX_KEYS_PER_CHANNEL),
                );
            }
            if keys.len() != keys.iter().collect::<std::collections::BTreeSet<_>>().len() {
                return invalid(name, "a key is listed twice".into());
            }
            if channel.max_concurrency == Some(0) {
                return invalid(
                    name,
                    "max_concurrency must be at least 1 (omit it for no cap)".into(),
                );
            }
            let timeouts = [
                channel.connect_timeout_ms,
                channel.first_token_timeout_ms,
                channel.idle_timeout_ms,
                channel.total_timeout_ms,
            ];
            if timeouts.contains(&Some(0)) {
                return invalid(
                    name,
                    "a timeout must be at least 1 ms (omit it for the default)".into(),
                );
            }
            if crate::catalog::ChannelKind::parse(&channel.kind).is_none() {
                return invalid(
                    name,
                    format!(
                        "unknown channel type '{}' (expected one of {})",
                        channel.kind,
                        crate::catalog::CHANNEL_TYPES.join(", ")
                    ),
                );
            }
            // An anthropic or gemini channel may leave base_url empty: its adapter has a
            // default (https://api.anthropic.com, https://generativelanguage.googleapis.com).
            let default_url = matches!(channel.kind.as_str(), "anthropic" | "gemini")
                && channel.base_url.is_empty();
            if channel.kind != "demo" && !default_url {
                // The URL is not repeated: it may hold a credential, and this goes to the log.
                if let Err(why) = http_uri(&channel.base_url) {
                    return invalid(name, format!("base_url: {why}"));
                }
            }
        }
        Ok(())
    }
}

/// Sets `field` from the environment variable `name`, when it is set.
fn set<T: std::str::FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    field: &mut T,
) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(value) = var(name) {
        *field = value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name: name.into(),
                message: e.to_string(),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults() {
        let mut settings = Settings::default();
        let env = |name: &str| match name {
            "TOKENHUB_LISTEN" => Some("127.0.0.1:0".to_string()),
            "TOKENHUB_DATABASE_URL" => Some("sqlite::memory:".to_string()),
            "TOKENHUB_ROOT_PASSWORD" => Some("hunter2".to_string()),
            _ => None,
        };
        settings.apply_env(env).unwrap();
        assert_eq!(settings.listen.port(), 0);
        assert_eq!(settings.database_url.expose(), "sqlite::memory:");
        assert_eq!(
            settings.root_password.as_ref().map(Secret::expose),
            Some("hunter2")
        );
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let mut settings = Settings::default();
        let err = settings
            .apply_env(|n| (n == "TOKENHUB_LISTEN").then(|| "nope".into()))
            .unwrap_err();
        assert!(err.to_string().contains("TOKENHUB_LISTEN"), "{err}");
    }

    #[test]
    fn parses_the_documented_toml() {
        let text = r#"
            [[channels]]
            name = "deepseek-main"
            type = "openai"
            base_url = "https://api.deepseek.com"
            api_key_env = "DEEPSEEK_API_KEY"
            models = ["deepseek-chat", "deepseek-r1"]
            model_map = { "deepseek-r1" = "deepseek-reasoner" }
            priority = 0
            weight = 1

            [[channels]]
            name = "openai-pool"
            type = "openai"
            base_url = "https://api.openai.com"
            api_keys = ["sk-first", "sk-second"]
            models = ["gpt-4o"]
            first_token_timeout_ms = 20000
            idle_timeout_ms = 30000
            max_concurrency = 8

            [[models]]
            id = "deepseek-chat"
            provider = "DeepSeek"
            context = 65536
            input_usd_per_mtok = "0.27"
            output_usd_per_mtok = "0.27"
            cached_input_usd_per_mtok = "0.07"

            [[models]]
            id = "claude-sonnet-4"
            provider = "Anthropic"
            input_usd_per_mtok = "3"
            output_usd_per_mtok = "15"
            cache_write_usd_per_mtok = "3.75"
        "#;
        let settings: Settings = toml::from_str(text).unwrap();
        settings.validate().unwrap();
        assert_eq!(
            settings.channels[0].model_map["deepseek-r1"],
            "deepseek-reasoner"
        );
        let pool = &settings.channels[1];
        assert_eq!(pool.keys(), ["sk-first", "sk-second"]);
        let limits = pool.limits();
        assert_eq!(
            (limits.first_token_timeout_ms, limits.idle_timeout_ms),
            (Some(20000), Some(30000))
        );
        assert_eq!(
            (limits.connect_timeout_ms, limits.max_concurrency),
            (None, Some(8))
        );
        let deepseek = settings.models[0].prices().unwrap();
        assert_eq!(deepseek.input, Nanos(270_000_000));
        assert_eq!(deepseek.cache_read, Some(Nanos(70_000_000)));
        assert_eq!(
            deepseek.cache_write, None,
            "unset: billed at the input price"
        );
        let claude = settings.models[1].prices().unwrap();
        assert_eq!(claude.cache_write, Some(Nanos(3_750_000_000)));
        assert_eq!(claude.cache_read, None);
    }

    #[test]
    fn rejects_a_bad_public_url_and_anonymous_chat_rate() {
        let mut settings = Settings::default();
        settings.validate().unwrap();
        settings.public_url = Some("javascript:alert(1)".into());
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("public_url"), "{error}");
        settings.public_url = Some("https://llm.example.com".into());
        settings.validate().unwrap();
        for rpm in [0, 601] {
            settings.accounts.anonymous_chat_rpm = rpm;
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains("anonymous_chat_rpm"), "{error}");
        }
    }

    #[test]
    fn price_tiers_are_read_from_models_and_validated() {
        let text = r#"
            [[models]]
            id = "deepseek-chat"
            provider = "DeepSeek"
            input_usd_per_mtok = "0.15"
            output_usd_per_mtok = "0.6"
            cache_write_1h_usd_per_mtok = "0.3"
            explicit_cached_input_usd_per_mtok = "0.01"

            [[models.price_tiers]]
            name = "peak"
            utc = "01:00-04:00,06:00-10:00"
            days = ["mon", "tue", "wed", "thu", "fri"]
            multiplier = "2"
        "#;
        let mut settings: Settings = toml::from_str(text).unwrap();
        settings.validate().unwrap();
        let prices = settings.models[0].prices().unwrap();
        assert_eq!(prices.rules.cache_write_1h, Some(Nanos(300_000_000)));
        assert_eq!(prices.rules.explicit_cached_input, Some(Nanos(10_000_000)));
        assert_eq!(prices.rules.tiers[0].name, "peak");
        let overlapping: crate::ledger::price_tiers::PriceTier =
            toml::from_str("name = \"late\"\nutc = \"09:00-11:00\"").unwrap();
        settings.models[0].price_tiers.push(overlapping);
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("overlap"), "{error}");
        let malformed = text.replace("01:00-04:00", "1:00-4:00");
        assert!(toml::from_str::<Settings>(&malformed).is_err());
    }

    #[test]
    fn connection_bounds_come_from_the_environment_and_must_be_positive() {
        let mut settings = Settings::default();
        settings
            .apply_env(|name| match name {
                "TOKENHUB_FIRST_BYTES_TIMEOUT_MS" => Some("2500".into()),
                "TOKENHUB_MAX_CONNECTIONS" => Some("64".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            (settings.first_bytes_timeout_ms, settings.max_connections),
            (2500, 64)
        );
        settings.validate().unwrap();
        settings.max_connections = 0;
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("max_connections"), "{error}");
        settings.max_connections = 1;
        settings.first_bytes_timeout_ms = 0;
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("first_bytes_timeout_ms"), "{error}");
    }

    #[test]
    fn secret_key_comes_from_the_env_and_must_be_32_bytes() {
        let mut settings = Settings::default();
        let env = |value: &'static str| {
            move |n: &str| (n == "TOKENHUB_SECRET_KEY").then(|| value.to_string())
        };
        settings.apply_env(env("not-a-key")).unwrap();
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("TOKENHUB_SECRET_KEY"), "{error}");
        settings
            .apply_env(env(
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            ))
            .unwrap();
        settings.validate().unwrap();
        let file: Result<Settings, _> = toml::from_str("secret_key = \"x\"");
        assert!(file.is_err(), "never read from the file");
    }

    #[test]
    fn metrics_token_comes_from_the_env_and_must_be_long() {
        let mut settings = Settings::default();
        settings
            .apply_env(|n| (n == "TOKENHUB_METRICS_TOKEN").then(|| "short".into()))
            .unwrap();
        assert_eq!(
            settings.metrics_token.as_ref().map(Secret::expose),
            Some("short")
        );
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("metrics_token"), "{error}");
        settings.metrics_token = Some("a-scrape-token-of-24-chars".into());
        settings.validate().unwrap();
    }

    #[test]
    fn rejects_bad_channels_and_prices() {
        let mut settings: Settings =
            toml::from_str("[[channels]]\nname='x'\ntype='openai'\nbase_url='ftp://x'\n").unwrap();
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("http")
        );
        settings.channels.clear();
        settings.models.push(ModelConfig {
            id: "m".into(),
            provider: "p".into(),
            context: 0,
            input_usd_per_mtok: "-1".into(),
            output_usd_per_mtok: "1".into(),
            cached_input_usd_per_mtok: None,
            cache_write_usd_per_mtok: Some("1".into()),
            cache_write_1h_usd_per_mtok: None,
            explicit_cached_input_usd_per_mtok: None,
            price_tiers: Vec::new(),
            fallbacks: None,
        });
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        settings.models[0].input_usd_per_mtok = "1".into();
        settings.validate().unwrap();
        settings.models[0].cache_write_usd_per_mtok = Some("-3.75".into());
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("negative"),
            "a negative cache-write price is refused like any other"
        );
        assert!(toml::from_str::<Settings>("bogus = 1").is_err());
    }

    /// `{:?}` of the settings (a panic message, a debug log line) shows no credential.
    #[test]
    fn debug_output_shows_no_secret() {
        let text = r#"
            database_url = "postgres://tokenhub:db-password@db/tokenhub"
            redis_url = "redis://:redis-password@cache:6379"
            metrics_token = "metrics-token-of-some-length"
            [accounts]
            smtp_url = "smtps://mailer:smtp-password@mail.example.com"
            [[channels]]
            name = "c"
            type = "openai"
            base_url = "https://api.example.com"
            api_key = "sk-channel-key-one"
            api_keys = ["sk-channel-key-two"]
        "#;
        let mut settings: Settings = toml::from_str(text).unwrap();
        let env = |name: &str| match name {
            "TOKENHUB_ROOT_PASSWORD" => Some("root-password".to_string()),
            "TOKENHUB_SECRET_KEY" => Some("00112233445566778899aabbccddeeff".repeat(2)),
            _ => None,
        };
        settings.apply_env(env).unwrap();
        let printed = format!("{settings:?}");
        for secret in [
            "db-password",
            "redis-password",
            "metrics-token",
            "smtp-password",
            "sk-channel-key",
            "root-password",
            "00112233",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("[redacted]"), "{printed}");
        assert_eq!(
            settings.channels[0].keys(),
            ["sk-channel-key-one", "sk-channel-key-two"]
        );
    }

    #[test]
    fn a_malformed_cors_origin_is_refused_with_the_variable_named() {
        let mut settings = Settings::default();
        settings
            .apply_env(|n| {
                (n == "TOKENHUB_CORS_ALLOWED_ORIGINS")
                    .then(|| "https://ok.example.com, app.example.com".into())
            })
            .unwrap();
        let error = settings.validate().unwrap_err().to_string();
        assert!(
            error.contains("TOKENHUB_CORS_ALLOWED_ORIGINS") && error.contains("'app.example.com'"),
            "{error}"
        );
        settings.cors_allowed_origins = vec!["https://app.example.com/".into(), "*".into()];
        settings.validate().unwrap();
    }
}
