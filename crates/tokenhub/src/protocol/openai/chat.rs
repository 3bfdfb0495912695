//! Typed views of OpenAI chat request members that translators to other protocols read
//! (stop, tools, tool_choice, response_format). The relay itself never parses these: it
//! passes them through untouched.

use serde::Deserialize;
use serde_json::Value;

/// `stop`: one sequence or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(stop) => vec![stop],
            Stop::Many(stops) => stops,
        }
    }
}

/// One entry of `tools`.
#[derive(Debug, Deserialize)]
pub struct ChatTool {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub function: Option<FunctionDef>,
    /// Anthropic's prompt-caching marker on a tool, as LiteLLM and OpenRouter accept it.
    #[serde(default)]
    pub cache_control: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// `tool_choice`: `"auto"`/`"none"`/`"required"`, or one named function.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ChatToolChoice {
    Mode(String),
    Function { function: FunctionName },
}

#[derive(Debug, Deserialize)]
pub struct FunctionName {
    pub name: String,
}

/// `response_format`: its `type`, and for `json_schema` the schema the answer must match.
#[derive(Debug, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub json_schema: Option<JsonSchemaFormat>,
}

/// `response_format.json_schema`: `{name, description?, schema?, strict?}`. Only the
/// schema constrains the answer; the name and the strictness flag are OpenAI's.
#[derive(Debug, Deserialize)]
pub struct JsonSchemaFormat {
    #[serde(default)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
}
