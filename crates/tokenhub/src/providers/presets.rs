//! The built-in catalogue and one preset channel per vendor, seeded on first start.
//!
//! Seeding inserts only what is missing, so an operator's later edits win. A preset
//! channel becomes usable as soon as its vendor's usual key variable is set; until then a
//! request for its models gets a 503 that names the variable.

use std::collections::BTreeMap;

use crate::ledger::money::Nanos;
use crate::store::{ChannelRow, ModelRow};

/// The free offline model served by the `demo` channel.
pub const DEMO_MODEL: &str = "tokenhub-demo";

/// (id, provider, context tokens, USD per 1M tokens for input and output).
const MODELS: &[(&str, &str, i64, &str)] = &[
    ("deepseek-chat", "DeepSeek", 65_536, "0.27"),
    ("deepseek-v3.2", "DeepSeek", 131_072, "0.27"),
    ("deepseek-r1", "DeepSeek (Reasoning)", 65_536, "0.55"),
    ("qwen-plus", "Alibaba Qwen", 131_072, "0.11"),
    ("qwen-max", "Alibaba Qwen", 32_768, "0.28"),
    ("glm-4-flash", "Zhipu GLM", 131_072, "0"),
    ("glm-5", "Zhipu GLM", 131_072, "0.14"),
    ("doubao-pro", "ByteDance", 131_072, "0.14"),
    ("doubao-lite", "ByteDance", 131_072, "0.01"),
    ("kimi-k2.5", "Moonshot AI", 131_072, "0.14"),
    ("gpt-4o", "OpenAI", 131_072, "2.50"),
    ("claude-sonnet-4", "Anthropic", 200_000, "3.00"),
    (DEMO_MODEL, "TokenHub", 8_192, "0"),
];

struct Preset {
    name: &'static str,
    /// Channel type: "openai" (OpenAI-compatible) or "anthropic" (Messages API).
    kind: &'static str,
    base_url: &'static str,
    key_env: &'static str,
    /// (public model, upstream model id)
    models: &'static [(&'static str, &'static str)],
}

/// Base URLs and upstream ids from each vendor's documentation (see shared/docs/providers.md).
const PRESETS: &[Preset] = &[
    Preset {
        name: "deepseek",
        kind: "deepseek",
        base_url: "https://api.deepseek.com",
        key_env: "DEEPSEEK_API_KEY",
        models: &[
            ("deepseek-chat", "deepseek-chat"),
            ("deepseek-v3.2", "deepseek-chat"),
            ("deepseek-r1", "deepseek-reasoner"),
        ],
    },
    Preset {
        name: "qwen",
        kind: "qwen",
        base_url: "https://dashscope.aliyuncs.com/compatible-mode/v1",
        key_env: "DASHSCOPE_API_KEY",
        models: &[("qwen-plus", "qwen-plus"), ("qwen-max", "qwen-max")],
    },
    Preset {
        name: "zhipu",
        kind: "zhipu",
        base_url: "https://open.bigmodel.cn/api/paas/v4",
        key_env: "ZHIPUAI_API_KEY",
        models: &[("glm-4-flash", "glm-4-flash"), ("glm-5", "glm-5")],
    },
    Preset {
        name: "doubao",
        kind: "doubao",
        base_url: "https://ark.cn-beijing.volces.com/api/v3",
        key_env: "ARK_API_KEY",
        models: &[
            ("doubao-pro", "doubao-1-5-pro-32k-250115"),
            ("doubao-lite", "doubao-1-5-lite-32k-250115"),
        ],
    },
    Preset {
        name: "moonshot",
        kind: "moonshot",
        base_url: "https://api.moonshot.cn/v1",
        key_env: "MOONSHOT_API_KEY",
        models: &[("kimi-k2.5", "kimi-k2.5")],
    },
    Preset {
        name: "openai",
        kind: "openai",
        base_url: "https://api.openai.com/v1",
        key_env: "OPENAI_API_KEY",
        models: &[("gpt-4o", "gpt-4o")],
    },
    // The native Messages API, translated by providers/anthropic.rs.
    Preset {
        name: "anthropic",
        kind: "anthropic",
        base_url: "https://api.anthropic.com",
        key_env: "ANTHROPIC_API_KEY",
        models: &[("claude-sonnet-4", "claude-sonnet-4-20250514")],
    },
];

pub fn builtin_models() -> Vec<ModelRow> {
    MODELS
        .iter()
        .map(|(id, provider, context, usd)| {
            let price: Nanos = usd.parse().unwrap_or_default();
            ModelRow {
                id: id.to_string(),
                provider: provider.to_string(),
                context: *context,
                input_price: price,
                output_price: price,
                cached_input_price: None,
                enabled: true,
                created: 0,
            }
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
            models: preset
                .models
                .iter()
                .map(|(public, _)| public.to_string())
                .collect(),
            model_map: preset
                .models
                .iter()
                .filter(|(public, upstream)| public != upstream)
                .map(|(public, upstream)| (public.to_string(), upstream.to_string()))
                .collect::<BTreeMap<_, _>>(),
            priority: 0,
            weight: 1,
            enabled: true,
            limits: Default::default(),
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
    });
    channels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_price_parses_and_every_preset_model_is_in_the_catalogue() {
        let models = builtin_models();
        for (id, _, _, usd) in MODELS {
            assert!(usd.parse::<Nanos>().is_ok(), "{id}");
        }
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
        assert_eq!(deepseek.model_map["deepseek-r1"], "deepseek-reasoner");
        assert!(!deepseek.model_map.contains_key("deepseek-chat"));
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
