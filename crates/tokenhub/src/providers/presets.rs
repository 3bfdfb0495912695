//! The built-in catalogue and one preset channel per vendor, seeded on first start.
//!
//! Seeding inserts only what is missing, so an operator's later edits win. A preset
//! channel becomes usable as soon as its vendor's usual key variable is set; until then a
//! request for its models gets a 503 that names the variable.

use std::collections::BTreeMap;

use super::catalogue;
use crate::ledger::money::Nanos;
use crate::ledger::price_tiers::{PriceRules, PriceTier, PriceTierSpec};
use crate::store::{ChannelRow, ModelRow};

/// The free offline model served by the `demo` channel.
pub const DEMO_MODEL: &str = "tokenhub-demo";

/// The models seeded into the database, in the order the docs page lists them: the seed
/// page's twelve (its table is the contract) and the demo model. Their prices, contexts
/// and the source of each figure are in `catalog/models.json` (providers/catalogue.rs);
/// migration 0016 moves rows still holding an earlier seed to them.
pub const BUILTIN_MODELS: &[&str] = &[
    "deepseek-chat",
    "deepseek-v3.2",
    "deepseek-r1",
    "qwen-plus",
    "qwen-max",
    "glm-4-flash",
    "glm-5",
    "doubao-pro",
    "doubao-lite",
    "kimi-k2.5",
    "gpt-4o",
    "claude-sonnet-4",
    DEMO_MODEL,
];

/// How many models the shipped catalogue lists.
pub fn catalogue_size() -> usize {
    catalogue::builtin().len()
}

/// Where `id` stands in the built-in list (the docs page's order), if it is built in.
pub fn builtin_rank(id: &str) -> Option<usize> {
    BUILTIN_MODELS.iter().position(|m| *m == id)
}

/// Prices a model's invoice has beyond its input, output and cache-read prices, by public
/// model id. Cache prices are percentages of the model's input price, applied when the
/// catalogue is built, so they follow any change of the input price. Sources and dates:
/// docs/billing.md.
struct InvoiceRules {
    id: &'static str,
    cache_read_percent: Option<u32>,
    explicit_cache_read_percent: Option<u32>,
    cache_write_percent: Option<u32>,
    cache_write_1h_percent: Option<u32>,
    tiers: &'static [TierSeed],
}

/// A price tier in the catalogue data: `(name, service_tier, utc, days, multiplier)`.
type TierSeed = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static [&'static str]>,
    &'static str,
);

const fn rules(id: &'static str) -> InvoiceRules {
    InvoiceRules {
        id,
        cache_read_percent: None,
        explicit_cache_read_percent: None,
        cache_write_percent: None,
        cache_write_1h_percent: None,
        tiers: &[],
    }
}

/// DashScope context cache (Alibaba Model Studio, "Context cache", updated 2026-03-31):
/// implicit hits 20 % of input, explicit hits 10 %, explicit cache creation 125 %.
const fn dashscope(id: &'static str) -> InvoiceRules {
    InvoiceRules {
        cache_read_percent: Some(20),
        explicit_cache_read_percent: Some(10),
        cache_write_percent: Some(125),
        ..rules(id)
    }
}

/// DeepSeek (api-docs.deepseek.com/quick_start/pricing, from 2026-08-16 16:00 UTC): off-peak
/// rates are half the peak rates; peak is 01:00-04:00 and 06:00-10:00 UTC, Monday to
/// Friday (the Chinese page excludes China's public holidays, which a weekly window cannot
/// express: those days bill at peak here, never below DeepSeek's invoice). The catalogue
/// price of a DeepSeek model is its off-peak price.
const DEEPSEEK_PEAK: &[TierSeed] = &[(
    "peak",
    None,
    Some("01:00-04:00,06:00-10:00"),
    Some(&["mon", "tue", "wed", "thu", "fri"]),
    "2",
)];

const fn deepseek(id: &'static str) -> InvoiceRules {
    InvoiceRules {
        tiers: DEEPSEEK_PEAK,
        ..rules(id)
    }
}

const INVOICE_RULES: &[InvoiceRules] = &[
    deepseek("deepseek-chat"),
    deepseek("deepseek-v3.2"),
    deepseek("deepseek-r1"),
    dashscope("qwen-plus"),
    dashscope("qwen-max"),
    // Priority processing (openai.com/api-priority-processing): gpt-4o at $4.25 / $2.125
    // cached / $17.00, 1.7x its standard $2.50 / $1.25 / $10. Flex is not offered for it.
    InvoiceRules {
        tiers: &[("priority", Some("priority"), None, None, "1.7")],
        ..rules("gpt-4o")
    },
    // Anthropic prompt caching: 5-minute writes 1.25x input, 1-hour writes 2x, reads 0.1x.
    InvoiceRules {
        cache_read_percent: Some(10),
        cache_write_percent: Some(125),
        cache_write_1h_percent: Some(200),
        ..rules("claude-sonnet-4")
    },
];

impl InvoiceRules {
    fn apply(&self, row: &mut ModelRow) {
        let share = |percent: Option<u32>| {
            percent.map(|p| {
                let exact = i128::from(row.input_price.0) * i128::from(p);
                Nanos(i64::try_from((exact + 99).div_euclid(100)).unwrap_or(i64::MAX))
            })
        };
        let tiers = self.tiers.iter().filter_map(tier).collect();
        let cache_read = share(self.cache_read_percent);
        let cache_write = share(self.cache_write_percent);
        row.cached_input_price = cache_read.or(row.cached_input_price);
        row.cache_write_price = cache_write.or(row.cache_write_price);
        row.rules = PriceRules {
            cache_write_1h: share(self.cache_write_1h_percent),
            explicit_cached_input: share(self.explicit_cache_read_percent),
            tiers,
        };
    }
}

/// A seed as a tier; the unit tests check every seed converts.
fn tier(&(name, service_tier, utc, days, multiplier): &TierSeed) -> Option<PriceTier> {
    PriceTier::try_from(PriceTierSpec {
        name: name.into(),
        service_tier: service_tier.map(Into::into),
        utc: utc.map(Into::into),
        days: days.map(|days| days.iter().map(|d| d.to_string()).collect()),
        multiplier: Some(multiplier.into()),
        ..PriceTierSpec::default()
    })
    .ok()
}

struct Preset {
    name: &'static str,
    /// Channel type: "openai" (OpenAI-compatible) or "anthropic" (Messages API).
    kind: &'static str,
    base_url: &'static str,
    key_env: &'static str,
    models: &'static [Mapping],
}

/// A public model name (the contract with clients, never renamed) and the upstream id it
/// is sent as. Vendors retire ids; `checked` and `source` say when and where the id was
/// last seen live, so the next review starts from a diff (docs/providers/<vendor>.md has
/// the details). An operator remaps a name without a release: see docs/providers/README.md.
struct Mapping {
    public: &'static str,
    upstream: &'static str,
    /// The day the id was confirmed live (YYYY-MM-DD).
    checked: &'static str,
    /// Where: a vendor page (URL), or "2nd-hand: …" when a third party quoted it.
    source: &'static str,
}

const fn map(
    public: &'static str,
    upstream: &'static str,
    checked: &'static str,
    source: &'static str,
) -> Mapping {
    Mapping {
        public,
        upstream,
        checked,
        source,
    }
}

const DEEPSEEK_PRICING: &str = "https://api-docs.deepseek.com/zh-cn/quick_start/pricing";

const PRESETS: &[Preset] = &[
    // `deepseek-chat` and `deepseek-reasoner` were retired on 2026-07-24 (DeepSeek's V4
    // release note, 2nd-hand). The pricing page lists two models: `deepseek-flash`
    // (DeepSeek-V4.1-Flash; thinking on by default, `thinking: {"type":"disabled"}` turns
    // it off) and `deepseek-v4-pro`.
    Preset {
        name: "deepseek",
        kind: "deepseek",
        base_url: "https://api.deepseek.com",
        key_env: "DEEPSEEK_API_KEY",
        models: &[
            map(
                "deepseek-chat",
                "deepseek-flash",
                "2026-12-05",
                DEEPSEEK_PRICING,
            ),
            map(
                "deepseek-v3.2",
                "deepseek-flash",
                "2026-12-05",
                DEEPSEEK_PRICING,
            ),
            map(
                "deepseek-r1",
                "deepseek-v4-pro",
                "2026-12-05",
                DEEPSEEK_PRICING,
            ),
        ],
    },
    // Stable aliases; neither was in Model Studio's 2026-10-10 decommission notice
    // (qwen-turbo, qwen-vl-max, qwen-vl-plus, qwq-plus, qvq-max).
    Preset {
        name: "qwen",
        kind: "qwen",
        base_url: "https://dashscope.aliyuncs.com/compatible-mode/v1",
        key_env: "DASHSCOPE_API_KEY",
        models: &[
            map(
                "qwen-plus",
                "qwen-plus",
                "2026-12-05",
                "https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope",
            ),
            map(
                "qwen-max",
                "qwen-max",
                "2026-12-05",
                "https://www.alibabacloud.com/zh/notice/model_studionotice_on_the_decommissioning_of_certain_historical_mainline_models_731",
            ),
        ],
    },
    Preset {
        name: "zhipu",
        kind: "zhipu",
        base_url: "https://open.bigmodel.cn/api/paas/v4",
        key_env: "ZHIPUAI_API_KEY",
        models: &[
            map(
                "glm-4-flash",
                "glm-4-flash-250414",
                "2026-12-05",
                "https://docs.bigmodel.cn/cn/guide/models/text/glm-4",
            ),
            map(
                "glm-5",
                "glm-5",
                "2026-12-05",
                "2nd-hand: https://www.ollama.com/search?q=glm4 (GLM-5 by Z.ai)",
            ),
        ],
    },
    // The Doubao 1.5 and 1.6 series are discontinued (2nd-hand: CometAPI notice
    // 2026-02-04); Seed 2.0 is the current generation on Ark.
    Preset {
        name: "doubao",
        kind: "doubao",
        base_url: "https://ark.cn-beijing.volces.com/api/v3",
        key_env: "ARK_API_KEY",
        models: &[
            map(
                "doubao-pro",
                "doubao-seed-2-0-pro-260215",
                "2026-12-05",
                "2nd-hand: chatgpt-on-wechat docs/en/models/doubao.mdx (Ark model ids)",
            ),
            map(
                "doubao-lite",
                "doubao-seed-2-0-lite-260215",
                "2026-12-05",
                "2nd-hand: chatgpt-on-wechat docs/en/models/doubao.mdx (Ark model ids)",
            ),
        ],
    },
    // Moonshot plans to retire the K2 series at the end of December 2026 (new accounts
    // lost it on 2026-10-31; 2nd-hand, dev.to/aihubmix): remap before then.
    Preset {
        name: "moonshot",
        kind: "moonshot",
        base_url: "https://api.moonshot.cn/v1",
        key_env: "MOONSHOT_API_KEY",
        models: &[map(
            "kimi-k2.5",
            "kimi-k2.5",
            "2026-12-05",
            "https://platform.kimi.ai/docs/api/models-overview",
        )],
    },
    // Deprecated: OpenAI shuts gpt-4o down on 2027-01-14 (replacement gpt-6-luna).
    Preset {
        name: "openai",
        kind: "openai",
        base_url: "https://api.openai.com/v1",
        key_env: "OPENAI_API_KEY",
        models: &[map(
            "gpt-4o",
            "gpt-4o",
            "2026-12-05",
            "https://developers.openai.com/api/docs/deprecations",
        )],
    },
    // The native Messages API, translated by providers/anthropic.rs. Sonnet 4
    // (`claude-sonnet-4-20250514`) was retired on 2026-06-15; the release notes name
    // Sonnet 4.6 its upgrade (2nd-hand).
    Preset {
        name: "anthropic",
        kind: "anthropic",
        base_url: "https://api.anthropic.com",
        key_env: "ANTHROPIC_API_KEY",
        models: &[map(
            "claude-sonnet-4",
            "claude-sonnet-4-6",
            "2026-12-05",
            "2nd-hand: https://platform.claude.com/docs/en/release-notes/overview via ai-provider-watch",
        )],
    },
];

/// Where a preset mapping comes from: the upstream id, the day it was checked and the
/// source, for reports that name a failing mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub upstream: &'static str,
    pub checked: &'static str,
    pub source: &'static str,
}

/// The provenance of a preset channel's mapping of `public`, if that channel and name
/// are a preset's.
pub fn provenance(channel: &str, public: &str) -> Option<Provenance> {
    let preset = PRESETS.iter().find(|p| p.name == channel)?;
    let mapping = preset.models.iter().find(|m| m.public == public)?;
    Some(Provenance {
        upstream: mapping.upstream,
        checked: mapping.checked,
        source: mapping.source,
    })
}

pub fn builtin_models() -> Vec<ModelRow> {
    // Every id is in the data file: the unit tests below check it.
    BUILTIN_MODELS
        .iter()
        .filter_map(|id| catalogue::builtin_entry(id))
        .map(|entry| {
            let mut row = entry.to_row();
            if let Some(rules) = INVOICE_RULES.iter().find(|r| r.id == entry.id) {
                rules.apply(&mut row);
            }
            row
        })
        .collect()
}

pub fn preset_channels() -> Vec<ChannelRow> {
    let mut channels: Vec<ChannelRow> = PRESETS
        .iter()
        .map(|preset| ChannelRow {
            id: 0,
            name: preset.name.to_string(),
            kind: preset.kind.to_string(),
            base_url: preset.base_url.to_string(),
            api_key: None,
            api_key_env: Some(preset.key_env.to_string()),
            models: preset.models.iter().map(|m| m.public.to_string()).collect(),
            model_map: preset
                .models
                .iter()
                .filter(|m| m.public != m.upstream)
                .map(|m| (m.public.to_string(), m.upstream.to_string()))
                .collect::<BTreeMap<_, _>>(),
            priority: 0,
            weight: 1,
            enabled: true,
            limits: Default::default(),
            // OpenAI's own API serves /v1/responses (hosted tools, stored reasoning).
            responses_native: preset.name == "openai",
        })
        .collect();
    channels.push(ChannelRow {
        id: 0,
        name: "demo".to_string(),
        kind: "demo".to_string(),
        base_url: String::new(),
        api_key: None,
        api_key_env: None,
        models: vec![DEMO_MODEL.to_string()],
        model_map: BTreeMap::new(),
        priority: 0,
        weight: 1,
        enabled: true,
        limits: Default::default(),
        responses_native: false,
    });
    channels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(id: &str) -> ModelRow {
        builtin_models().into_iter().find(|m| m.id == id).unwrap()
    }

    #[test]
    fn claude_sonnet_4_has_anthropic_prices_for_every_token_class() {
        let claude = builtin("claude-sonnet-4");
        assert_eq!(claude.input_price, Nanos(3_000_000_000));
        assert_eq!(claude.output_price, Nanos(15_000_000_000));
        assert_eq!(claude.cached_input_price, Some(Nanos(300_000_000)));
        assert_eq!(claude.cache_write_price, Some(Nanos(3_750_000_000)));
    }

    #[test]
    fn invoice_rules_follow_the_input_price_and_every_seed_is_a_valid_tier() {
        let percent = |model: &ModelRow, p: i64| Nanos(model.input_price.0 * p / 100);
        for id in ["qwen-plus", "qwen-max"] {
            let qwen = builtin(id);
            assert!(!qwen.input_price.is_zero(), "{id}");
            assert_eq!(qwen.cached_input_price, Some(percent(&qwen, 20)), "{id}");
            assert_eq!(
                qwen.rules.explicit_cached_input,
                Some(percent(&qwen, 10)),
                "{id}"
            );
            assert_eq!(qwen.cache_write_price, Some(percent(&qwen, 125)), "{id}");
        }
        let claude = builtin("claude-sonnet-4");
        assert_eq!(claude.rules.cache_write_1h, Some(percent(&claude, 200)));
        assert_eq!(claude.cache_write_price, Some(percent(&claude, 125)));
        for rules in INVOICE_RULES {
            assert!(
                builtin_models().iter().any(|m| m.id == rules.id),
                "{} is not in the catalogue",
                rules.id
            );
            for seed in rules.tiers {
                assert!(tier(seed).is_some(), "{}: {seed:?}", rules.id);
            }
            let row = builtin(rules.id);
            assert_eq!(row.rules.tiers.len(), rules.tiers.len());
            crate::ledger::price_tiers::validate(&row.rules.tiers).unwrap();
        }
        let gpt = crate::ledger::price_tiers::Pricing::new(
            crate::ledger::money::Prices {
                input: crate::ledger::money::PerMillion(builtin("gpt-4o").input_price),
                ..Default::default()
            },
            &builtin("gpt-4o").rules.tiers,
        );
        assert_eq!(
            gpt.for_service_tier("priority").unwrap().prices.input.0,
            Nanos(builtin("gpt-4o").input_price.0 * 17 / 10),
            "gpt-4o priority is 1.7x standard ($4.25 for $2.50)"
        );
    }

    #[test]
    fn every_preset_mapping_says_when_and_where_it_was_checked() {
        for preset in PRESETS {
            for mapping in preset.models {
                let date = mapping.checked.as_bytes();
                assert!(
                    date.len() == 10 && date[4] == b'-' && date[7] == b'-',
                    "{}: {}",
                    mapping.public,
                    mapping.checked
                );
                assert!(!mapping.source.is_empty(), "{}", mapping.public);
            }
        }
        let claude = provenance("anthropic", "claude-sonnet-4").unwrap();
        assert_eq!(claude.upstream, "claude-sonnet-4-6");
        assert_eq!(provenance("anthropic", "gpt-4o"), None);
    }

    #[test]
    fn migration_0011_moves_old_seeds_to_these_mappings() {
        // The migration writes the maps as text; they must be what seeding writes now.
        let sqlite = include_str!("../../migrations/sqlite/0011_live_preset_ids.sql");
        let postgres = include_str!("../../migrations/postgres/0011_live_preset_ids.sql");
        assert_eq!(sqlite, postgres);
        for channel in preset_channels() {
            if ["deepseek", "zhipu", "doubao", "anthropic"].contains(&channel.name.as_str()) {
                let written = serde_json::to_string(&channel.model_map).unwrap();
                assert!(
                    sqlite.contains(&format!("'{written}'")),
                    "{}: {written}",
                    channel.name
                );
            }
        }
    }

    /// The seed page's table (name, provider, context, price per 1M): its price is the
    /// model's input price.
    const SEED_TABLE: [(&str, &str, i64, i64); 12] = [
        ("deepseek-chat", "DeepSeek", 65_536, 270_000_000),
        ("deepseek-v3.2", "DeepSeek", 128_000, 270_000_000),
        ("deepseek-r1", "DeepSeek (Reasoning)", 65_536, 550_000_000),
        ("qwen-plus", "Alibaba Qwen", 131_072, 110_000_000),
        ("qwen-max", "Alibaba Qwen", 32_768, 280_000_000),
        ("glm-4-flash", "Zhipu GLM", 128_000, 0),
        ("glm-5", "Zhipu GLM", 128_000, 140_000_000),
        ("doubao-pro", "ByteDance", 128_000, 140_000_000),
        ("doubao-lite", "ByteDance", 128_000, 10_000_000),
        ("kimi-k2.5", "Moonshot AI", 128_000, 140_000_000),
        ("gpt-4o", "OpenAI (via proxy)", 128_000, 2_500_000_000),
        (
            "claude-sonnet-4",
            "Anthropic (via proxy)",
            200_000,
            3_000_000_000,
        ),
    ];

    #[test]
    fn the_catalogue_input_price_of_each_seed_model_is_the_seed_page_price() {
        for (id, provider, context, input) in SEED_TABLE {
            let model = builtin(id);
            assert_eq!(model.input_price, Nanos(input), "{id}");
            assert_eq!(model.provider, provider, "{id}");
            assert_eq!(model.context, context, "{id}");
            let source = catalogue::builtin_entry(id)
                .unwrap()
                .source
                .clone()
                .unwrap();
            assert!(source.starts_with("TokenHub seed page"), "{id}: {source}");
        }
        let seeded: Vec<&str> = SEED_TABLE.iter().map(|row| row.0).collect();
        assert_eq!(&BUILTIN_MODELS[..12], seeded.as_slice(), "the seed's order");
    }

    #[test]
    fn paid_models_price_output_above_input() {
        // The old table had one price for both; output is dearer at every vendor listed.
        for model in builtin_models().iter().filter(|m| !m.input_price.is_zero()) {
            assert!(model.output_price > model.input_price, "{}", model.id);
            let read = model.cached_input_price.unwrap_or(model.input_price);
            assert!(read <= model.input_price, "{}", model.id);
        }
        assert_eq!(builtin("deepseek-chat").output_price, Nanos(1_100_000_000));
        assert_eq!(builtin("gpt-4o").output_price, Nanos(10_000_000_000));
    }

    #[test]
    fn every_price_parses_and_every_preset_model_is_in_the_catalogue() {
        let models = builtin_models();
        assert_eq!(
            models.len(),
            BUILTIN_MODELS.len(),
            "every built-in id is in the data"
        );
        for channel in preset_channels() {
            assert!(
                crate::catalog::ChannelKind::parse(&channel.kind).is_some(),
                "{}",
                channel.kind
            );
            for model in &channel.models {
                assert!(
                    models.iter().any(|m| &m.id == model),
                    "{model} of {} is not in the catalogue",
                    channel.name
                );
            }
        }
        let deepseek = preset_channels()
            .into_iter()
            .find(|c| c.name == "deepseek")
            .unwrap();
        assert_eq!(deepseek.model_map["deepseek-r1"], "deepseek-v4-pro");
        assert_eq!(deepseek.model_map["deepseek-chat"], "deepseek-flash");
        let anthropic = preset_channels()
            .into_iter()
            .find(|c| c.name == "anthropic")
            .unwrap();
        assert_eq!(anthropic.kind, "anthropic");
        assert_eq!(
            deepseek.kind, "deepseek",
            "presets carry their vendor's dialect"
        );
        assert!(
            models
                .iter()
                .any(|m| m.id == "glm-4-flash" && m.input_price.is_zero())
        );
    }
}
