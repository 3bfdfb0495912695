//! A chat request read without rebuilding it: the top-level fields are split into raw JSON
//! slices, so the gateway reads the few it needs and writes the body back with every other
//! field (unknown ones included) exactly as the client sent it.

use std::fmt;

use serde::Deserialize;

use super::operation::Operation;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level members of a JSON object, in order, values unparsed.
#[derive(Debug)]
pub struct RawObject<'a> {
    members: Vec<(String, &'a RawValue)>,
    /// Size of the JSON it was read from, for estimates that scale with the body.
    source_len: usize,
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Members<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(name) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((name, value));
                }
                Ok(RawObject {
                    members,
                    source_len: 0,
                })
            }
        }
        deserializer.deserialize_map(Members(std::marker::PhantomData))
    }
}

impl<'a> RawObject<'a> {
    pub fn parse(body: &'a [u8]) -> Result<RawObject<'a>, serde_json::Error> {
        let object: RawObject<'a> = serde_json::from_slice(body)?;
        Ok(RawObject {
            source_len: body.len(),
            ..object
        })
    }

    /// Bytes of the body this object was parsed from.
    pub fn source_len(&self) -> usize {
        self.source_len
    }

    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// Re-serialises the object with `replacements` (name → raw JSON) substituted for, or
    /// appended to, the original members. Untouched members are copied byte for byte.
    pub fn write_with(&self, rewrite: &Rewrite) -> Vec<u8> {
        let replacements = &rewrite.set;
        let capacity = self
            .members
            .iter()
            .map(|(n, v)| n.len() + v.get().len() + 4)
            .sum::<usize>()
            + 64;
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        let mut first = true;
        let mut push_member = |out: &mut Vec<u8>, name: &str, value: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(serde_json::to_string(name).unwrap_or_default().as_bytes());
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
        };
        for (name, value) in &self.members {
            if rewrite.remove.contains(&name.as_str()) {
                continue;
            }
            let replaced = replacements
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str());
            push_member(&mut out, name, replaced.unwrap_or(value.get()));
        }
        for (name, value) in replacements {
            if !self.members.iter().any(|(n, _)| n == name) {
                push_member(&mut out, name, value);
            }
        }
        out.push(b'}');
        out
    }
}

/// Members to replace or add (name → raw JSON) and members to drop, applied by
/// `RawObject::write_with`. Everything else is copied byte for byte.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rewrite {
    set: Vec<(&'static str, String)>,
    remove: Vec<&'static str>,
}

impl Rewrite {
    /// Sets a member to `raw_json` (a later `set` of the same name wins).
    pub fn set(&mut self, name: &'static str, raw_json: String) {
        self.set.retain(|(n, _)| *n != name);
        self.remove.retain(|n| *n != name);
        self.set.push((name, raw_json));
    }

    pub fn remove(&mut self, name: &'static str) {
        self.set.retain(|(n, _)| *n != name);
        self.remove.push(name);
    }
}

/// The most completions one request may ask for (`n`, `best_of`), as OpenAI allows.
pub const MAX_CHOICES: u64 = 128;

/// What the gateway needs to know about a chat request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    pub operation: Operation,
    pub model: String,
    pub stream: bool,
    /// The client's own `stream_options.include_usage`.
    pub client_wants_usage: bool,
    /// `max_completion_tokens`, else `max_tokens` (`max_output_tokens` for Responses).
    pub max_output_tokens: Option<u64>,
    /// How many completions the upstream generates and bills: `n` (and, for legacy
    /// completions, `best_of` when larger). 1 when absent.
    pub choices: u64,
    /// An operator's choice of channel (the `x-tokenhub-channel` header), for debugging.
    pub pinned_channel: Option<String>,
}

/// A client error in the request body, phrased for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    pub message: String,
    pub param: Option<&'static str>,
}

fn invalid(message: impl Into<String>, param: Option<&'static str>) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param,
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

impl RawObject<'_> {
    /// Reads and validates the fields the relay depends on.
    pub fn facts(&self, operation: Operation) -> Result<RequestFacts, InvalidRequest> {
        let model = match self.get("model") {
            None => return Err(invalid("you must provide a model parameter", Some("model"))),
            Some(raw) => serde_json::from_str::<String>(raw.get())
                .map_err(|_| invalid("'model' must be a string", Some("model")))?,
        };
        if model.is_empty() {
            return Err(invalid("you must provide a model parameter", Some("model")));
        }
        let input = operation.input_field();
        let first = self
            .get(input)
            .map(|raw| raw.get().trim_start().as_bytes().first().copied());
        match (operation, first) {
            (_, None) => {
                return Err(invalid(
                    format!("missing required parameter: '{input}'"),
                    Some(input),
                ));
            }
            (Operation::Chat, Some(Some(b'['))) => {}
            (Operation::Chat, Some(_)) => {
                return Err(invalid("'messages' must be an array", Some(input)));
            }
            (_, Some(Some(b'[' | b'"'))) => {}
            (_, Some(_)) => {
                return Err(invalid(
                    format!("'{input}' must be a string or an array"),
                    Some(input),
                ));
            }
        }
        let stream = self.optional::<bool>("stream")?.unwrap_or(false);
        if stream && !operation.can_stream() {
            return Err(invalid(
                format!("'stream' is not supported for /v1/{}", operation.path()),
                Some("stream"),
            ));
        }
        let options = self.optional::<StreamOptions>("stream_options")?;
        let max_completion = self.optional::<u64>("max_completion_tokens")?;
        let max_tokens = match operation {
            Operation::Responses => self.optional::<u64>("max_output_tokens")?,
            _ => self.optional::<u64>("max_tokens")?,
        };
        let choices = self.choices(operation)?;
        Ok(RequestFacts {
            operation,
            model,
            stream,
            client_wants_usage: options.and_then(|o| o.include_usage).unwrap_or(false),
            max_output_tokens: max_completion.or(max_tokens),
            choices,
            pinned_channel: None,
        })
    }

    /// `n` (1..=128, OpenAI's range), or for legacy completions the larger of `n` and
    /// `best_of` (the upstream generates and bills `best_of` completions).
    fn choices(&self, operation: Operation) -> Result<u64, InvalidRequest> {
        let count = |name: &'static str| -> Result<u64, InvalidRequest> {
            match self.optional::<u64>(name)? {
                None => Ok(1),
                Some(n @ 1..=MAX_CHOICES) => Ok(n),
                Some(_) => Err(invalid(
                    format!("'{name}' must be an integer from 1 to {MAX_CHOICES}"),
                    Some(name),
                )),
            }
        };
        let n = count("n")?;
        match operation {
            Operation::Completions => Ok(n.max(count("best_of")?)),
            Operation::Chat | Operation::Embeddings | Operation::Responses => Ok(n),
        }
    }

    fn optional<T: for<'de> Deserialize<'de>>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, InvalidRequest> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<Option<T>>(raw.get())
                .map_err(|e| invalid(format!("invalid value for '{name}': {e}"), Some(name))),
        }
    }

    /// The `stream_options` to send upstream: the client's, with `include_usage` forced on.
    pub fn stream_options_with_usage(&self) -> String {
        let Some(raw) = self.get("stream_options") else {
            return r#"{"include_usage":true}"#.to_string();
        };
        match RawObject::parse(raw.get().as_bytes()) {
            Ok(options) => {
                let mut rewrite = Rewrite::default();
                rewrite.set("include_usage", "true".to_string());
                String::from_utf8(options.write_with(&rewrite)).unwrap_or_default()
            }
            Err(_) => r#"{"include_usage":true}"#.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_facts_and_keeps_unknown_fields_verbatim() {
        let body = br#"{"model":"deepseek-r1","messages":[{"role":"user","content":"hi"}],"stream":true,"temperature":0.70,"x_vendor":{"deep":[1,2]},"max_tokens":64}"#;
        let object = RawObject::parse(body).unwrap();
        let facts = object.facts(Operation::Chat).unwrap();
        assert_eq!(
            facts,
            RequestFacts {
                operation: Operation::Chat,
                model: "deepseek-r1".into(),
                stream: true,
                client_wants_usage: false,
                max_output_tokens: Some(64),
                choices: 1,
                pinned_channel: None,
            }
        );
        let mut rewrite = Rewrite::default();
        rewrite.set("model", "\"deepseek-reasoner\"".to_string());
        rewrite.set("stream_options", object.stream_options_with_usage());
        rewrite.remove("x_gone");
        let rewritten = object.write_with(&rewrite);
        assert_eq!(
            std::str::from_utf8(&rewritten).unwrap(),
            r#"{"model":"deepseek-reasoner","messages":[{"role":"user","content":"hi"}],"stream":true,"temperature":0.70,"x_vendor":{"deep":[1,2]},"max_tokens":64,"stream_options":{"include_usage":true}}"#
        );
    }

    #[test]
    fn keeps_the_clients_other_stream_options() {
        let body = br#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":false}}"#;
        let object = RawObject::parse(body).unwrap();
        assert!(!object.facts(Operation::Chat).unwrap().client_wants_usage);
        assert_eq!(
            object.stream_options_with_usage(),
            r#"{"include_obfuscation":false,"include_usage":true}"#
        );
    }

    #[test]
    fn explains_what_is_wrong() {
        let facts = |body: &[u8]| RawObject::parse(body).unwrap().facts(Operation::Chat);
        assert_eq!(
            facts(br#"{"messages":[]}"#).unwrap_err().param,
            Some("model")
        );
        assert_eq!(
            facts(br#"{"model":"m"}"#).unwrap_err().param,
            Some("messages")
        );
        assert_eq!(
            facts(br#"{"model":"m","messages":"hi"}"#)
                .unwrap_err()
                .param,
            Some("messages")
        );
        assert_eq!(
            facts(br#"{"model":3,"messages":[]}"#).unwrap_err().param,
            Some("model")
        );
        assert_eq!(
            facts(br#"{"model":"m","messages":[],"stream":"yes"}"#)
                .unwrap_err()
                .param,
            Some("stream")
        );
        assert_eq!(
            facts(br#"{"model":"m","messages":[],"max_tokens":-1}"#)
                .unwrap_err()
                .param,
            Some("max_tokens")
        );
        assert!(facts(br#"{"model":"m","messages":[],"stream":null,"max_tokens":null}"#).is_ok());
        for n in ["0", "129", "-1", "1.5", "\"2\""] {
            let body = format!(r#"{{"model":"m","messages":[],"n":{n}}}"#);
            assert_eq!(facts(body.as_bytes()).unwrap_err().param, Some("n"), "{n}");
        }
        assert_eq!(
            facts(br#"{"model":"m","messages":[],"n":128}"#)
                .unwrap()
                .choices,
            128
        );
        let legacy = RawObject::parse(br#"{"model":"m","prompt":"p","n":2,"best_of":5}"#)
            .unwrap()
            .facts(Operation::Completions)
            .unwrap();
        assert_eq!(legacy.choices, 5);
        assert!(RawObject::parse(b"[1,2]").is_err());
        assert!(RawObject::parse(b"{\"a\":").is_err());
    }

    #[test]
    fn escaped_member_names_survive() {
        let object = RawObject::parse(br#"{"a\"b":1,"model":"m"}"#).unwrap();
        assert_eq!(
            object.write_with(&Rewrite::default()),
            br#"{"a\"b":1,"model":"m"}"#
        );
    }
}
