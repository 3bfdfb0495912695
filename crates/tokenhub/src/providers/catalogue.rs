//! The model catalogue as data: the built-in list shipped in `catalog/models.json` and the
//! price lists an operator imports. Three formats are read, each detected from its shape:
//!
//! - ours (`{"models":[…]}`, also what `GET /api/admin/models/export` writes): decimal USD
//!   per 1M tokens as strings, plus optional `modalities` and `source`;
//! - LiteLLM's `model_prices_and_context_window.json` (`{"<id>": {"litellm_provider", …}}`):
//!   USD per token as JSON numbers;
//! - OpenRouter's `/api/v1/models` (`{"data":[{"id","pricing":{…}}]}`): USD per token as
//!   decimal strings.
//!
//! Every price becomes integer nano-USD per 1M tokens exactly, from the number's text
//! (never through a float). A per-token figure finer than 1e-15 USD (a nano-USD per 1M
//! tokens) is rounded up to the next whole one, the catalogue's one rounding rule for
//! derived prices. Pure: no I/O (docs/catalogue.md).

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ledger::money::{MAX_AMOUNT, Nanos};
use crate::ledger::price_tiers::{PriceRules, PriceTier};
use crate::store::ModelRow;

/// The shipped catalogue (at least 500 current models; sources per entry).
const BUILTIN_JSON: &str = include_str!("../../catalog/models.json");

static BUILTIN: LazyLock<Vec<CatalogueEntry>> =
    LazyLock::new(|| parse(BUILTIN_JSON).map_or_else(|_| Vec::new(), |read| read.entries));

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogueError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error(
        "not a catalogue: expected ours ({{\"models\":[…]}}), LiteLLM's or OpenRouter's format"
    )]
    UnknownFormat,
    #[error("model '{id}': {why}")]
    Entry { id: String, why: String },
}

/// What a model takes in and gives back (`text`, `image`, `audio`, `pdf`, `embedding`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modalities {
    #[serde(default)]
    pub input: Vec<String>,
    #[serde(default)]
    pub output: Vec<String>,
}

/// One catalogue model. `None` prices mean "not said": the input price for a new model,
/// the stored price for one already in the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub id: String,
    pub provider: String,
    pub context: i64,
    pub input: Nanos,
    pub output: Nanos,
    pub cached_input: Option<Nanos>,
    pub cache_write: Option<Nanos>,
    /// 1-hour writes, explicit cache hits and tiers: only our format carries them.
    pub rules: Option<PriceRules>,
    pub enabled: Option<bool>,
    pub modalities: Modalities,
    /// Where the prices come from.
    pub source: Option<String>,
}

/// A file read: its format, the entries, and how many were left out (no token price,
/// or a mode the gateway does not relay).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub format: Format,
    pub entries: Vec<CatalogueEntry>,
    pub skipped: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    TokenHub,
    LiteLlm,
    OpenRouter,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::TokenHub => "tokenhub",
            Format::LiteLlm => "litellm",
            Format::OpenRouter => "openrouter",
        }
    }
}

/// The shipped catalogue.
pub fn builtin() -> &'static [CatalogueEntry] {
    &BUILTIN
}

/// The shipped entry for `id`.
pub fn builtin_entry(id: &str) -> Option<&'static CatalogueEntry> {
    BUILTIN.iter().find(|e| e.id == id)
}

/// Reads a catalogue in any of the three formats.
pub fn parse(text: &str) -> Result<Read, CatalogueError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| CatalogueError::NotJson(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(CatalogueError::UnknownFormat);
    };
    if let Some(Value::Array(models)) = object.get("models") {
        return ours(models);
    }
    if let Some(Value::Array(data)) = object.get("data")
        && data.iter().all(|m| m.get("pricing").is_some())
    {
        return openrouter(data);
    }
    if object.values().any(|v| v.get("litellm_provider").is_some()) {
        return Ok(litellm(&object));
    }
    Err(CatalogueError::UnknownFormat)
}

impl CatalogueEntry {
    /// A new catalogue row from this entry.
    pub fn to_row(&self) -> ModelRow {
        ModelRow {
            id: self.id.clone(),
            provider: self.provider.clone(),
            context: self.context,
            input_price: self.input,
            output_price: self.output,
            cached_input_price: self.cached_input,
            cache_write_price: self.cache_write,
            rules: self.rules.clone().unwrap_or_default(),
            enabled: self.enabled.unwrap_or(true),
            created: 0,
        }
    }

    /// A full row as an entry (a CSV import): every field is said.
    pub fn from_row(row: ModelRow) -> CatalogueEntry {
        CatalogueEntry {
            id: row.id,
            provider: row.provider,
            context: row.context,
            input: row.input_price,
            output: row.output_price,
            cached_input: row.cached_input_price,
            cache_write: row.cache_write_price,
            rules: Some(row.rules),
            enabled: Some(row.enabled),
            modalities: Modalities::default(),
            source: None,
        }
    }

    /// `stored` with this entry's prices. An entry of our format is a whole row (a missing
    /// cache price means "the input price"); a LiteLLM or OpenRouter entry says only its
    /// prices and context, and the rest stays as stored (such a file knows no DeepSeek
    /// peak tier and must not erase it).
    pub fn merged_into(&self, stored: &ModelRow) -> ModelRow {
        if self.rules.is_some() {
            return ModelRow {
                enabled: self.enabled.unwrap_or(stored.enabled),
                created: stored.created,
                ..self.to_row()
            };
        }
        let mut row = stored.clone();
        row.input_price = self.input;
        row.output_price = self.output;
        row.cached_input_price = self.cached_input.or(stored.cached_input_price);
        row.cache_write_price = self.cache_write.or(stored.cache_write_price);
        if self.context > 0 {
            row.context = self.context;
        }
        row
    }
}

/// Our format, the admin export's shape: decimal USD per 1M tokens.
#[derive(Deserialize)]
struct OurEntry {
    id: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    context: i64,
    input_usd_per_mtok: String,
    output_usd_per_mtok: String,
    #[serde(default)]
    cached_input_usd_per_mtok: Option<String>,
    #[serde(default)]
    cache_write_usd_per_mtok: Option<String>,
    #[serde(default)]
    cache_write_1h_usd_per_mtok: Option<String>,
    #[serde(default)]
    explicit_cached_input_usd_per_mtok: Option<String>,
    #[serde(default)]
    price_tiers: Vec<PriceTier>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    modalities: Modalities,
    #[serde(default)]
    source: Option<String>,
}

fn ours(models: &[Value]) -> Result<Read, CatalogueError> {
    let entries = models
        .iter()
        .map(|value| {
            let entry = OurEntry::deserialize(value).map_err(|e| CatalogueError::Entry {
                id: value["id"].as_str().unwrap_or("?").to_string(),
                why: e.to_string(),
            })?;
            let invalid = |why: String| CatalogueError::Entry {
                id: entry.id.clone(),
                why,
            };
            let usd = |field: &str, text: &str| {
                let price = text
                    .parse::<Nanos>()
                    .map_err(|e| invalid(format!("{field}: {e}")))?;
                if price < Nanos::ZERO {
                    return Err(invalid(format!("{field}: a price is not negative")));
                }
                Ok(price)
            };
            let optional = |field: &str, text: &Option<String>| {
                text.as_deref()
                    .filter(|t| !t.is_empty())
                    .map(|t| usd(field, t))
                    .transpose()
            };
            Ok(CatalogueEntry {
                id: entry.id.trim().to_string(),
                provider: entry.provider.clone(),
                context: entry.context,
                input: usd("input_usd_per_mtok", &entry.input_usd_per_mtok)?,
                output: usd("output_usd_per_mtok", &entry.output_usd_per_mtok)?,
                cached_input: optional(
                    "cached_input_usd_per_mtok",
                    &entry.cached_input_usd_per_mtok,
                )?,
                cache_write: optional("cache_write_usd_per_mtok", &entry.cache_write_usd_per_mtok)?,
                rules: Some(PriceRules {
                    cache_write_1h: optional(
                        "cache_write_1h_usd_per_mtok",
                        &entry.cache_write_1h_usd_per_mtok,
                    )?,
                    explicit_cached_input: optional(
                        "explicit_cached_input_usd_per_mtok",
                        &entry.explicit_cached_input_usd_per_mtok,
                    )?,
                    tiers: entry.price_tiers.clone(),
                }),
                enabled: entry.enabled,
                modalities: entry.modalities.clone(),
                source: entry.source.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Read {
        format: Format::TokenHub,
        entries,
        skipped: 0,
    })
}

/// The modes the gateway relays; LiteLLM also lists image, audio and rerank models.
const RELAYED_MODES: [&str; 3] = ["chat", "completion", "embedding"];

/// LiteLLM's vendor names as we show them; others keep LiteLLM's name.
const LITELLM_PROVIDERS: &[(&str, &str)] = &[
    ("openai", "OpenAI"),
    ("anthropic", "Anthropic"),
    ("gemini", "Google Gemini"),
    ("deepseek", "DeepSeek"),
    ("mistral", "Mistral"),
    ("xai", "xAI"),
    ("dashscope", "Alibaba Qwen"),
    ("moonshot", "Moonshot AI"),
    ("zai", "Zhipu GLM"),
    ("volcengine", "ByteDance"),
    ("cohere", "Cohere"),
    ("perplexity", "Perplexity"),
    ("minimax", "MiniMax"),
    ("groq", "Groq"),
    ("together_ai", "Together AI"),
    ("deepinfra", "DeepInfra"),
    ("fireworks_ai", "Fireworks AI"),
];

fn litellm(object: &Map<String, Value>) -> Read {
    let mut entries = Vec::new();
    let mut skipped = 0;
    for (key, spec) in object {
        let Some(provider) = spec.get("litellm_provider").and_then(Value::as_str) else {
            continue; // `sample_spec`, the file's own documentation
        };
        let mode = spec.get("mode").and_then(Value::as_str).unwrap_or("chat");
        let per_token = |field: &str| spec.get(field).and_then(number_text);
        let prices = (
            per_token("input_cost_per_token").map(|t| per_million(&t)),
            per_token("output_cost_per_token")
                .map_or(Some(Ok(Nanos::ZERO)), |t| Some(per_million(&t))),
        );
        let (Some(Ok(input)), Some(Ok(output))) = prices else {
            skipped += 1;
            continue;
        };
        if !RELAYED_MODES.contains(&mode) {
            skipped += 1;
            continue;
        }
        let optional = |field: &str| per_token(field).and_then(|t| per_million(&t).ok());
        // Our ids are the vendor's own: LiteLLM's `deepseek/deepseek-chat` is `deepseek-chat`.
        let id = key
            .strip_prefix(provider)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(key);
        let id = id.replace("accounts/fireworks/models/", "");
        let shown = LITELLM_PROVIDERS
            .iter()
            .find(|(name, _)| *name == provider)
            .map_or(provider, |(_, shown)| shown);
        let flag = |field: &str| spec.get(field).and_then(Value::as_bool) == Some(true);
        let mut input_kinds = vec!["text".to_string()];
        for (field, kind) in [
            ("supports_vision", "image"),
            ("supports_audio_input", "audio"),
            ("supports_pdf_input", "pdf"),
        ] {
            if flag(field) {
                input_kinds.push(kind.into());
            }
        }
        let output_kinds = match mode {
            "embedding" => vec!["embedding".to_string()],
            _ if flag("supports_audio_output") => vec!["text".into(), "audio".into()],
            _ => vec!["text".into()],
        };
        entries.push(CatalogueEntry {
            id,
            provider: shown.to_string(),
            context: spec
                .get("max_input_tokens")
                .or_else(|| spec.get("max_tokens"))
                .and_then(Value::as_i64)
                .unwrap_or(0),
            input,
            output,
            cached_input: optional("cache_read_input_token_cost"),
            cache_write: optional("cache_creation_input_token_cost"),
            rules: None,
            enabled: None,
            modalities: Modalities {
                input: input_kinds,
                output: output_kinds,
            },
            source: Some(match spec.get("source").and_then(Value::as_str) {
                Some(page) => format!("LiteLLM entry '{key}' (its source: {page})"),
                None => format!("LiteLLM entry '{key}'"),
            }),
        });
    }
    Read {
        format: Format::LiteLlm,
        entries,
        skipped,
    }
}

fn openrouter(data: &[Value]) -> Result<Read, CatalogueError> {
    let mut entries = Vec::new();
    let mut skipped = 0;
    for model in data {
        let Some(id) = model.get("id").and_then(Value::as_str) else {
            skipped += 1;
            continue;
        };
        let pricing = &model["pricing"];
        let price = |field: &str| pricing.get(field).and_then(number_text);
        let (Some(input), Some(output)) = (price("prompt"), price("completion")) else {
            skipped += 1;
            continue;
        };
        // "-1" marks a router whose price depends on the model it picks.
        let (Ok(input), Ok(output)) = (per_million(&input), per_million(&output)) else {
            skipped += 1;
            continue;
        };
        let optional = |field: &str| price(field).and_then(|t| per_million(&t).ok());
        let strings = |field: &str| -> Vec<String> {
            model["architecture"][field]
                .as_array()
                .map(|kinds| {
                    kinds
                        .iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let vendor = id
            .split_once('/')
            .map_or("OpenRouter", |(vendor, _)| vendor);
        entries.push(CatalogueEntry {
            id: id.to_string(),
            provider: vendor.to_string(),
            context: model
                .get("context_length")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            input,
            output,
            cached_input: optional("input_cache_read"),
            cache_write: optional("input_cache_write"),
            rules: None,
            enabled: None,
            modalities: Modalities {
                input: strings("input_modalities"),
                output: strings("output_modalities"),
            },
            source: Some(format!("OpenRouter /api/v1/models entry '{id}'")),
        });
    }
    Ok(Read {
        format: Format::OpenRouter,
        entries,
        skipped,
    })
}

/// A number's exact text: a JSON number as serde wrote it (shortest round-trip form, so
/// `2.5e-6` for LiteLLM's `2.5e-06`) or a numeric string.
fn number_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.trim().to_string()),
        _ => None,
    }
}

/// USD per token (`"0.0000025"`, `2.5e-6`) as nano-USD per 1M tokens: the decimal times
/// 1e15, exactly; a remainder below one nano-USD per 1M rounds up.
pub fn per_million(per_token: &str) -> Result<Nanos, String> {
    let bad = || format!("'{per_token}' is not a non-negative decimal price");
    let (mantissa, exponent) = match per_token.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().map_err(|_| bad())?),
        None => (per_token, 0),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{frac}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Err(bad());
    }
    let value: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad())?
    };
    // value × 10^(exponent − |frac|) USD per token = value × 10^(shift) nano-USD per 1M.
    // An exponent near i32's bounds must not wrap around (a huge price read as a tiny one).
    let shift = i32::try_from(frac.len())
        .ok()
        .and_then(|places| exponent.checked_sub(places))
        .and_then(|shift| shift.checked_add(15))
        .ok_or_else(bad)?;
    let too_large = || format!("'{per_token}' is beyond $1e9 per 1M tokens");
    let nanos = if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|scale| value.checked_mul(scale))
            .ok_or_else(too_large)?
    } else {
        match 10i128.checked_pow(shift.unsigned_abs()) {
            Some(scale) => (value + scale - 1) / scale,
            None => i128::from(value > 0),
        }
    };
    i64::try_from(nanos)
        .ok()
        .map(Nanos)
        .filter(|n| *n <= MAX_AMOUNT)
        .ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_token_prices_convert_exactly_and_round_up_below_a_nano() {
        assert_eq!(per_million("2.5e-6"), Ok(Nanos(2_500_000_000)));
        assert_eq!(per_million("2.5e-06"), Ok(Nanos(2_500_000_000)));
        assert_eq!(per_million("0.0000025"), Ok(Nanos(2_500_000_000)));
        assert_eq!(per_million("8.625e-07"), Ok(Nanos(862_500_000)));
        assert_eq!(per_million("0"), Ok(Nanos::ZERO));
        assert_eq!(
            per_million("1e-16"),
            Ok(Nanos(1)),
            "rounded up, not to zero"
        );
        assert_eq!(per_million("1.0000000000000001e-15"), Ok(Nanos(2)));
        assert!(per_million("-1").is_err(), "OpenRouter's variable price");
        assert!(per_million("1e30").is_err());
        assert!(
            per_million("1e2147483647").is_err(),
            "no wrap to a tiny price"
        );
        assert!(per_million("1.5e-2147483648").is_err());
        assert_eq!(
            per_million("1e-2147483000"),
            Ok(Nanos(1)),
            "tiny: rounded up"
        );
        assert!(per_million("abc").is_err());
    }

    #[test]
    fn the_shipped_catalogue_has_500_models_each_with_a_source() {
        let all = builtin();
        assert!(all.len() >= 500, "{} models", all.len());
        let mut ids = std::collections::BTreeSet::new();
        for entry in all {
            assert!(ids.insert(&entry.id), "{} is listed twice", entry.id);
            assert!(
                entry.source.as_deref().is_some_and(|s| !s.is_empty()),
                "{} has no source",
                entry.id
            );
            assert!(!entry.provider.is_empty(), "{}", entry.id);
            assert!(!entry.modalities.input.is_empty(), "{}", entry.id);
            assert!(entry.input >= Nanos::ZERO && entry.output >= Nanos::ZERO);
        }
        let attribution = serde_json::from_str::<Value>(BUILTIN_JSON).unwrap()["attribution"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(attribution.contains("MIT"), "{attribution}");
    }

    #[test]
    fn an_unknown_shape_is_refused() {
        assert_eq!(parse("[]"), Err(CatalogueError::UnknownFormat));
        assert_eq!(parse(r#"{"a":1}"#), Err(CatalogueError::UnknownFormat));
        assert!(matches!(parse("{"), Err(CatalogueError::NotJson(_))));
    }
}
