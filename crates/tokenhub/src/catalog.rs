//! The in-memory snapshot the hot path reads: models with prices, channels by model and
//! fallbacks. Built from the database, swapped atomically on change (`reload`), never
//! locked by a request. API keys and users are not in it: `accounts` caches the ones in
//! use, looked up on a miss.

pub mod accounts;
pub mod keys;
mod lookup_budget;
pub mod reload;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::fast_map::FastMap;
use crate::ledger::money::{Nanos, PerMillion, Prices};
use crate::ledger::price_tiers::Pricing;
use crate::protocol::openai::operation::Operation;
use crate::providers::dialect::Dialect;
use crate::store::{ChannelRow, ModelRow};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    pub id: String,
    pub provider: String,
    pub context: u64,
    /// The standard prices (what price lists show).
    pub prices: Prices,
    /// The standard prices with the model's tiers, for billing.
    pub pricing: Arc<Pricing>,
    /// Unix seconds, for `/v1/models`.
    pub created: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// An OpenAI-compatible HTTP upstream, with its vendor's quirks.
    OpenAi(Dialect),
    /// Anthropic's Messages API, translated to and from OpenAI's format.
    Anthropic,
    /// Gemini's native `generateContent` API, translated to and from OpenAI's format.
    Gemini,
    /// The built-in offline demo model.
    Demo,
}

/// The longest model id, in bytes.
pub const MAX_MODEL_ID_LEN: usize = 200;

/// The one model id rule, for the admin API, imports and the admin page (which reads
/// it from `data-model-id-max` and applies the same test): 1 to [`MAX_MODEL_ID_LEN`]
/// bytes, no whitespace or control characters (ids travel in URLs, CSV and lists).
pub fn valid_model_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MODEL_ID_LEN
        && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Every `type` a channel may have.
pub const CHANNEL_TYPES: &[&str] = &[
    "openai",
    "deepseek",
    "qwen",
    "zhipu",
    "doubao",
    "moonshot",
    "anthropic",
    "gemini",
    "demo",
];

impl ChannelKind {
    pub fn parse(kind: &str) -> Option<ChannelKind> {
        match kind {
            other if Dialect::parse(other).is_some() => {
                Dialect::parse(other).map(ChannelKind::OpenAi)
            }
            "anthropic" => Some(ChannelKind::Anthropic),
            "gemini" => Some(ChannelKind::Gemini),
            "demo" => Some(ChannelKind::Demo),
            _ => None,
        }
    }

    /// Which OpenAI operations an upstream of this kind can serve.
    pub fn supports(self, operation: Operation) -> bool {
        match self {
            // The Responses API only where a channel declares it (`Channel::serves`).
            ChannelKind::OpenAi(_) => operation != Operation::Responses,
            ChannelKind::Anthropic | ChannelKind::Gemini | ChannelKind::Demo => {
                operation == Operation::Chat
            }
        }
    }
}

/// A usable upstream account. Only channels with a credential (or needing none) are built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub base_url: String,
    /// The upstream keys, used in turn. Empty for a channel that needs none (demo, or an
    /// upstream without authentication).
    pub keys: Vec<UpstreamKey>,
    pub model_map: HashMap<String, String>,
    pub priority: i64,
    pub weight: u32,
    /// Overrides of the global upstream timeouts; `None` = the global default.
    pub timeouts: ChannelTimeouts,
    /// Requests in flight on this channel at most; `None` = unbounded.
    pub max_concurrency: Option<u32>,
    /// Its upstream URLs, parsed on first use.
    pub urls: crate::providers::urls::ParsedUrls,
    /// Serves OpenAI's Responses API itself (`Operation::Responses` is sent to it).
    pub responses_native: bool,
}

impl Channel {
    /// Whether routing may send `operation` here: what its kind supports, and the
    /// Responses API only where the channel declares it serves it natively.
    pub fn serves(&self, operation: Operation) -> bool {
        match operation {
            Operation::Responses => self.responses_native,
            _ => self.kind.supports(operation),
        }
    }

    /// The model id the upstream knows this public model by.
    pub fn upstream_model<'a>(&'a self, public: &'a str) -> &'a str {
        self.model_map.get(public).map_or(public, String::as_str)
    }

    /// Upstream text with this channel's keys, and anything shaped like a credential,
    /// taken out.
    pub fn redact(&self, text: &str) -> String {
        crate::providers::redact::redact(text, self.keys.iter().map(|k| k.secret.as_str()))
    }
}

pub use crate::catalog::keys::{ChannelTimeouts, MAX_KEYS_PER_CHANNEL, UpstreamKey};

/// Why a model has no usable channel, for a 503 that tells the operator what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingCredential {
    pub channel: String,
    pub env_var: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub enabled: bool,
    pub allowed_models: Option<HashSet<String>>,
    pub quota: Option<Nanos>,
    pub expires_at: Option<i64>,
    /// Client addresses allowed to use the key; `None` = any. Single IPs are /32 or /128.
    pub allowed_ips: Option<Vec<ipnet::IpNet>>,
    /// Requests per minute: the key's own limit, else its owner's default; `None` = none.
    pub rpm_limit: Option<u64>,
    /// Tokens per minute, inherited the same way.
    pub tpm_limit: Option<u64>,
}

impl KeyEntry {
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models
            .as_ref()
            .is_none_or(|allowed| allowed.contains(model))
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.allowed_ips
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|net| net.contains(&ip)))
    }
}

/// A model's standard prices, each optional class filled with its default.
fn standard_prices(model: &ModelRow, served_by_anthropic: bool) -> Prices {
    let cached_input = model.cached_input_price.unwrap_or(model.input_price);
    let cache_write = model.cache_write_price.unwrap_or(model.input_price);
    let cache_write_1h_default = if served_by_anthropic {
        Nanos(model.input_price.0.saturating_mul(2))
    } else {
        cache_write
    };
    Prices {
        input: PerMillion(model.input_price),
        cached_input: PerMillion(cached_input),
        explicit_cached_input: PerMillion(
            model.rules.explicit_cached_input.unwrap_or(cached_input),
        ),
        // Unset means no surcharge: a write costs what plain input costs.
        cache_write_input: PerMillion(cache_write),
        // Unset: Anthropic's rule (2× input) for its models; no other provider reports
        // 1-hour writes.
        cache_write_1h_input: PerMillion(
            model.rules.cache_write_1h.unwrap_or(cache_write_1h_default),
        ),
        output: PerMillion(model.output_price),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEntry {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub active: bool,
    /// Defaults for keys without their own limits.
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    models: FastMap<String, Arc<Model>>,
    /// Usable channels per public model, highest priority first.
    routes: FastMap<String, Vec<Arc<Channel>>>,
    missing: HashMap<String, Vec<MissingCredential>>,
    /// Models in the database without a price: not in `models`, so never routed or billed.
    unpriced: HashSet<String>,
    /// Per model, the models to try when all of its channels fail.
    fallbacks: HashMap<String, Vec<String>>,
}

impl Catalog {
    /// Builds a snapshot. `env` resolves `api_key_env` names (the process environment in
    /// production, a map in tests).
    pub fn build(
        models: &[ModelRow],
        channels: &[ChannelRow],
        env: impl Fn(&str) -> Option<String>,
    ) -> Catalog {
        Catalog::build_with(models, channels, &HashSet::new(), env)
    }

    /// `build`, leaving out the `unpriced` models (imported, waiting for a price).
    pub fn build_with(
        models: &[ModelRow],
        channels: &[ChannelRow],
        unpriced: &HashSet<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Catalog {
        let mut catalog = Catalog::default();
        // Anthropic's default price for 1-hour cache writes applies to the models its
        // channels serve; elsewhere such writes are never reported, so the default must
        // not inflate reservations.
        let anthropic_models: HashSet<&str> = channels
            .iter()
            .filter(|c| c.enabled && c.kind == "anthropic")
            .flat_map(|c| c.models.iter().map(String::as_str))
            .collect();
        for model in models.iter().filter(|m| m.enabled) {
            if unpriced.contains(&model.id) {
                catalog.unpriced.insert(model.id.clone());
                continue;
            }
            let prices = standard_prices(model, anthropic_models.contains(model.id.as_str()));
            let pricing = Arc::new(Pricing::new(prices, &model.rules.tiers));
            let context = u64::try_from(model.context).unwrap_or(0);
            let entry = Model {
                id: model.id.clone(),
                provider: model.provider.clone(),
                context,
                prices,
                pricing,
                created: model.created,
            };
            catalog.models.insert(model.id.clone(), Arc::new(entry));
        }
        for row in channels.iter().filter(|c| c.enabled) {
            catalog.add_channel(row, &env);
        }
        for channels in catalog.routes.values_mut() {
            channels.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        }
        catalog
    }

    fn add_channel(&mut self, row: &ChannelRow, env: &impl Fn(&str) -> Option<String>) {
        let Some(kind) = ChannelKind::parse(&row.kind) else {
            tracing::warn!(channel = %row.name, kind = %row.kind, "channel of unknown type ignored");
            return;
        };
        let stored = row.api_key.as_deref().map(keys::split_keys);
        let keys = match stored {
            Some(keys) if !keys.is_empty() => keys,
            _ => row
                .api_key_env
                .as_deref()
                .and_then(env)
                .map(|value| keys::split_keys(&value))
                .unwrap_or_default(),
        };
        if kind != ChannelKind::Demo && keys.is_empty() && row.api_key_env.is_some() {
            let missing = MissingCredential {
                channel: row.name.clone(),
                env_var: row.api_key_env.clone(),
            };
            for model in &row.models {
                self.missing
                    .entry(model.clone())
                    .or_default()
                    .push(missing.clone());
            }
            return;
        }
        let channel = Arc::new(Channel {
            id: row.id,
            name: row.name.clone(),
            kind,
            base_url: row.base_url.clone(),
            keys: keys::upstream_keys(&row.name, keys),
            model_map: row
                .model_map
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            priority: row.priority,
            weight: u32::try_from(row.weight).unwrap_or(0),
            timeouts: ChannelTimeouts::from_row(row),
            max_concurrency: row
                .limits
                .max_concurrency
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0),
            urls: Default::default(),
            responses_native: row.responses_native && matches!(kind, ChannelKind::OpenAi(_)),
        });
        for model in &row.models {
            self.routes
                .entry(model.clone())
                .or_default()
                .push(channel.clone());
        }
    }

    pub fn model(&self, id: &str) -> Option<&Arc<Model>> {
        self.models.get(id)
    }

    pub fn set_fallbacks(&mut self, fallbacks: HashMap<String, Vec<String>>) {
        self.fallbacks = fallbacks;
    }

    /// The fallback models of `id`, in order (empty if none).
    pub fn fallbacks_of(&self, id: &str) -> &[String] {
        self.fallbacks.get(id).map_or(&[], Vec::as_slice)
    }

    /// True for a catalogue model that has no price yet (and so is not in `model`).
    pub fn is_unpriced(&self, id: &str) -> bool {
        self.unpriced.contains(id)
    }

    /// A usable channel by id (for operator actions; the request path goes by model).
    pub fn channel(&self, id: i64) -> Option<Arc<Channel>> {
        self.routes.values().flatten().find(|c| c.id == id).cloned()
    }

    /// Every usable channel once, by id.
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        let mut channels: Vec<Arc<Channel>> = Vec::new();
        for channel in self.routes.values().flatten() {
            if !channels.iter().any(|c| c.id == channel.id) {
                channels.push(channel.clone());
            }
        }
        channels.sort_by_key(|c| c.id);
        channels
    }

    /// The public models a usable channel serves, sorted.
    pub fn models_of(&self, channel_id: i64) -> Vec<String> {
        let mut models: Vec<String> = self
            .routes
            .iter()
            .filter(|(_, channels)| channels.iter().any(|c| c.id == channel_id))
            .map(|(model, _)| model.clone())
            .collect();
        models.sort();
        models
    }

    /// Usable channels for a model, highest priority first (empty if none).
    pub fn channels_for(&self, model: &str) -> &[Arc<Channel>] {
        self.routes.get(model).map_or(&[], Vec::as_slice)
    }

    pub fn missing_credentials(&self, model: &str) -> &[MissingCredential] {
        self.missing.get(model).map_or(&[], Vec::as_slice)
    }

    /// Catalogue models that have at least one usable channel, sorted by id.
    pub fn routable_models(&self) -> Vec<&Arc<Model>> {
        let mut models = self.priced_models();
        models.retain(|m| !self.channels_for(&m.id).is_empty());
        models
    }

    /// Every enabled, priced model, routable or not, sorted by id.
    pub fn priced_models(&self) -> Vec<&Arc<Model>> {
        let mut models: Vec<_> = self.models.values().collect();
        models.sort_by(|a, b| a.id.cmp(&b.id));
        models
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ledger::money::TokenCounts;

    fn channel(id: i64, name: &str, priority: i64, api_key_env: Option<&str>) -> ChannelRow {
        ChannelRow {
            id,
            name: name.into(),
            kind: "openai".into(),
            base_url: "http://127.0.0.1:9".into(),
            api_key: None,
            api_key_env: api_key_env.map(str::to_string),
            models: vec!["m".into()],
            model_map: BTreeMap::from([("m".to_string(), "upstream-m".to_string())]),
            priority,
            weight: 1,
            enabled: true,
            limits: Default::default(),
            responses_native: false,
        }
    }

    #[test]
    fn channels_need_their_credential_and_sort_by_priority() {
        let channels = [
            channel(1, "low", 0, Some("SET")),
            channel(2, "high", 5, Some("SET")),
            channel(3, "nokey", 9, Some("UNSET")),
        ];
        let env = |name: &str| (name == "SET").then(|| "secret".to_string());
        let catalog = Catalog::build(&[], &channels, env);
        let names: Vec<_> = catalog
            .channels_for("m")
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["high", "low"]);
        assert_eq!(
            catalog.channels_for("m")[0].upstream_model("m"),
            "upstream-m"
        );
        assert_eq!(catalog.channels_for("m")[0].keys[0].secret, "secret");
        assert_eq!(
            catalog.missing_credentials("m"),
            [MissingCredential {
                channel: "nokey".into(),
                env_var: Some("UNSET".into())
            }]
        );
    }

    #[test]
    fn unpriced_models_are_left_out() {
        let model = |id: &str| ModelRow {
            id: id.into(),
            provider: "p".into(),
            context: 0,
            input_price: Nanos::ZERO,
            output_price: Nanos::ZERO,
            cached_input_price: None,
            cache_write_price: None,
            rules: Default::default(),
            enabled: true,
            created: 0,
        };
        let catalog = Catalog::build_with(
            &[model("old"), model("new")],
            &[],
            &HashSet::from(["new".to_string()]),
            |_| None,
        );
        assert!(catalog.model("old").is_some() && catalog.model("new").is_none());
        assert!(catalog.is_unpriced("new") && !catalog.is_unpriced("old"));
    }

    #[test]
    fn unset_cache_prices_fall_back_to_the_input_price() {
        let priced = |id: &str, read: Option<i64>, write: Option<i64>| ModelRow {
            id: id.into(),
            provider: "p".into(),
            context: 0,
            input_price: Nanos(3_000_000_000),
            output_price: Nanos(15_000_000_000),
            cached_input_price: read.map(Nanos),
            cache_write_price: write.map(Nanos),
            rules: Default::default(),
            enabled: true,
            created: 0,
        };
        let models = [
            priced("plain", None, None),
            priced("claude", Some(300_000_000), Some(3_750_000_000)),
        ];
        let catalog = Catalog::build(&models, &[], |_| None);
        let prices = |id: &str| catalog.model(id).unwrap().prices;
        let plain = prices("plain");
        assert_eq!(plain.cached_input, plain.input);
        assert_eq!(plain.cache_write_input, plain.input);
        let claude = prices("claude");
        assert_eq!(claude.cached_input, PerMillion(Nanos(300_000_000)));
        assert_eq!(claude.cache_write_input, PerMillion(Nanos(3_750_000_000)));
        // 1000 prompt tokens, all written to the cache: $3.75/1M, not $3/1M.
        let written = TokenCounts {
            prompt: 1000,
            cache_write: 1000,
            ..TokenCounts::default()
        };
        assert_eq!(claude.cost(written), Nanos(3_750_000));
        assert_eq!(plain.cost(written), Nanos(3_000_000));
        assert_eq!(plain.explicit_cached_input, plain.cached_input);
        assert_eq!(
            claude.cache_write_1h_input, claude.cache_write_input,
            "not served by an Anthropic channel: no 1-hour surcharge"
        );

        // Served by an Anthropic channel, unset 1-hour writes cost 2× input; set, their own.
        let mut anthropic = ChannelRow {
            id: 1,
            name: "claude".into(),
            kind: "anthropic".into(),
            base_url: String::new(),
            api_key: Some("k".into()),
            api_key_env: None,
            models: vec!["claude".into(), "plain".into()],
            model_map: Default::default(),
            priority: 0,
            weight: 1,
            enabled: true,
            limits: Default::default(),
            responses_native: false,
        };
        let mut own_price = priced("plain", None, None);
        own_price.rules.cache_write_1h = Some(Nanos(5_000_000_000));
        let models = [own_price, models[1].clone()];
        let catalog = Catalog::build(&models, &[anthropic.clone()], |_| None);
        let prices = |id: &str| catalog.model(id).unwrap().prices;
        assert_eq!(
            prices("claude").cache_write_1h_input,
            PerMillion(Nanos(6_000_000_000))
        );
        assert_eq!(
            prices("plain").cache_write_1h_input,
            PerMillion(Nanos(5_000_000_000))
        );
        anthropic.enabled = false;
        let catalog = Catalog::build(&models, &[anthropic], |_| None);
        assert_eq!(
            catalog.model("claude").unwrap().prices.cache_write_1h_input,
            PerMillion(Nanos(3_750_000_000))
        );
    }
}
