//! What the Gemini API refuses, each rule with its source (read 2026-12-05). The mock
//! answers these with Gemini's own 400 so a translation that breaks one fails its test.

use serde_json::Value;

/// A Gemini model's generation, read from its id (`gemini-<major>.<minor>-<variant>`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Family {
    /// 25 for 2.5, 30 for 3, 31 for 3.1, …
    version: u32,
    pro: bool,
}

impl Family {
    fn of(model: &str) -> Option<Family> {
        let rest = model.strip_prefix("gemini-")?;
        let (version, variant) = rest.split_once('-')?;
        let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
        let version = major.parse::<u32>().ok()? * 10 + minor.parse::<u32>().ok()?;
        Some(Family {
            version,
            pro: variant.starts_with("pro"),
        })
    }
}

/// The message of the first rule the request breaks, if any.
pub fn refusal(request: &Value, model: &str) -> Option<String> {
    let family = Family::of(model);
    tool_schemas(request)
        .or_else(|| family.and_then(|f| penalties(request, model, f)))
        .or_else(|| family.and_then(|f| thinking(request, f)))
}

fn generation_config(request: &Value) -> Option<&Value> {
    request
        .get("generationConfig")
        .or_else(|| request.get("generation_config"))
}

/// `parameters` takes the OpenAPI 3.0 subset of `Schema`
/// (https://ai.google.dev/api/caching#Schema): a JSON Schema keyword it has no field for
/// is "Unknown name … Cannot find field", and `type` is one enum value, not a list.
/// `parametersJsonSchema` takes full JSON Schema, and the two are mutually exclusive
/// (https://ai.google.dev/api/caching#FunctionDeclaration).
fn tool_schemas(request: &Value) -> Option<String> {
    let declarations = request
        .get("tools")?
        .as_array()?
        .iter()
        .filter_map(|tool| {
            tool.get("functionDeclarations")
                .or(tool.get("function_declarations"))
        })
        .filter_map(Value::as_array)
        .flatten();
    for declaration in declarations {
        let parameters = declaration.get("parameters");
        if parameters.is_some() && declaration.get("parametersJsonSchema").is_some() {
            return Some("parameters and parametersJsonSchema cannot both be set".into());
        }
        if let Some(keyword) = parameters.and_then(not_in_openapi_subset) {
            return Some(format!(
                "Invalid JSON payload received. Unknown name \"{keyword}\" at 'tools[0].function_declarations[0].parameters': Cannot find field."
            ));
        }
    }
    None
}

/// The first JSON Schema keyword anywhere in `schema` that the OpenAPI subset lacks.
fn not_in_openapi_subset(schema: &Value) -> Option<&'static str> {
    match schema {
        Value::Object(members) => {
            for keyword in ["additionalProperties", "$schema", "const", "$defs", "$ref"] {
                if members.contains_key(keyword) {
                    return Some(keyword);
                }
            }
            if members.get("type").is_some_and(Value::is_array) {
                return Some("type");
            }
            members.values().find_map(not_in_openapi_subset)
        }
        Value::Array(items) => items.iter().find_map(not_in_openapi_subset),
        _ => None,
    }
}

/// "Penalty is not enabled for models/gemini-2.5-flash": penalties are refused from 2.5
/// on (2nd-hand: vercel/ai#8943, PublicAffairs/openai-gemini#63; the 2.0 models took
/// them).
fn penalties(request: &Value, model: &str, family: Family) -> Option<String> {
    if family.version < 25 {
        return None;
    }
    let config = generation_config(request)?;
    ["presencePenalty", "frequencyPenalty"]
        .iter()
        .any(|name| {
            config
                .get(*name)
                .and_then(Value::as_f64)
                .is_some_and(|v| v != 0.0)
        })
        .then(|| format!("Penalty is not enabled for models/{model}"))
}

/// https://ai.google.dev/gemini-api/docs/thinking: Gemini 3 takes `thinkingLevel` (Pro:
/// low, high — 3.1 Pro adds medium; Flash: minimal, low, medium, high); 2.5 takes only
/// `thinkingBudget`; the two together are a 400; 2.5 Pro and Gemini 3 cannot turn
/// thinking off (budget 0).
fn thinking(request: &Value, family: Family) -> Option<String> {
    let thinking = generation_config(request)?
        .get("thinkingConfig")
        .or_else(|| generation_config(request)?.get("thinking_config"))?;
    let level = thinking
        .get("thinkingLevel")
        .or(thinking.get("thinking_level"))
        .and_then(Value::as_str);
    let budget = thinking
        .get("thinkingBudget")
        .or(thinking.get("thinking_budget"))
        .and_then(Value::as_i64);
    if level.is_some() && budget.is_some() {
        return Some("thinking_budget and thinking_level cannot both be set".into());
    }
    if let Some(level) = level {
        if family.version < 30 {
            return Some("Thinking level is not supported for this model.".into());
        }
        let levels: &[&str] = match (family.pro, family.version) {
            (true, 30) => &["low", "high"],
            (true, _) => &["low", "medium", "high"],
            (false, _) => &["minimal", "low", "medium", "high"],
        };
        if !levels.contains(&level.to_ascii_lowercase().as_str()) {
            return Some(format!(
                "Thinking level {level} is not supported for this model."
            ));
        }
    }
    let cannot_turn_off = family.pro || family.version >= 30;
    (budget == Some(0) && cannot_turn_off)
        .then(|| "Budget 0 is invalid. This model only works in thinking mode.".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(schema_member: &str, schema: Value) -> Value {
        json!({"contents": [], "tools": [{"functionDeclarations": [{"name": "f", schema_member: schema}]}]})
    }

    #[test]
    fn json_schema_keywords_only_in_parameters_json_schema() {
        let strict = json!({"type": "object", "properties": {"a": {"type": ["string", "null"]}},
            "additionalProperties": false});
        assert!(refusal(&tool("parameters", strict.clone()), "gemini-3.5-flash").is_some());
        assert!(refusal(&tool("parametersJsonSchema", strict), "gemini-3.5-flash").is_none());
        let plain = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        assert!(refusal(&tool("parameters", plain), "gemini-3.5-flash").is_none());
    }

    #[test]
    fn penalties_and_thinking_follow_the_family() {
        let config = |c: Value| json!({"contents": [], "generationConfig": c});
        let penalty = config(json!({"presencePenalty": 0.5}));
        assert!(refusal(&penalty, "gemini-2.5-flash-lite").is_some());
        assert!(refusal(&penalty, "gemini-3.5-flash").is_some());
        assert!(refusal(&penalty, "gemini-2.0-flash").is_none());
        let off = config(json!({"thinkingConfig": {"thinkingBudget": 0}}));
        assert!(refusal(&off, "gemini-2.5-flash-lite").is_none());
        assert!(refusal(&off, "gemini-2.5-pro").is_some());
        assert!(refusal(&off, "gemini-3.5-flash").is_some());
        let minimal = config(json!({"thinkingConfig": {"thinkingLevel": "minimal"}}));
        assert!(refusal(&minimal, "gemini-3.5-flash").is_none());
        assert!(refusal(&minimal, "gemini-3.1-pro-preview").is_some());
        assert!(refusal(&minimal, "gemini-2.5-flash-lite").is_some());
    }
}
