//! Embeddings in the encoding the client asked for (`encoding_format`): an upstream that
//! ignores the member answers floats to a client that asked for base64 (openai-node 6
//! and @langchain/openai ask for base64 by default and decode floats as garbage), or the
//! reverse. Base64 is the vector's little-endian `f32` bytes, as OpenAI sends it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use serde_json::value::RawValue;

/// How `data[].embedding` is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Float,
    Base64,
}

impl Encoding {
    /// The encoding a request's raw `encoding_format` member asks for (float by default).
    pub fn requested(encoding_format: Option<&RawValue>) -> Encoding {
        match encoding_format.map(RawValue::get) {
            Some(r#""base64""#) => Encoding::Base64,
            _ => Encoding::Float,
        }
    }

    fn of(embedding: &Value) -> Option<Encoding> {
        match embedding {
            Value::Array(_) => Some(Encoding::Float),
            Value::String(_) => Some(Encoding::Base64),
            _ => None,
        }
    }
}

/// The answer with every embedding in `wanted`, or `None` when it already is (the common
/// case costs a substring search, not a parse).
pub fn in_encoding(body: &[u8], wanted: Encoding) -> Option<Vec<u8>> {
    if first_encoding(body)? == wanted {
        return None;
    }
    let mut answer: Value = serde_json::from_slice(body).ok()?;
    let data = answer.get_mut("data")?.as_array_mut()?;
    for item in data {
        let Some(embedding) = item.get_mut("embedding") else {
            continue;
        };
        if Encoding::of(embedding) == Some(wanted) {
            continue;
        }
        *embedding = match wanted {
            Encoding::Base64 => Value::String(to_base64(embedding)?),
            Encoding::Float => Value::Array(from_base64(embedding.as_str()?)?),
        };
    }
    serde_json::to_vec(&answer).ok()
}

/// The encoding of the first `"embedding"` member, read without parsing the answer
/// (the same word is also the value of every item's `object`).
fn first_encoding(body: &[u8]) -> Option<Encoding> {
    const NAME: &[u8] = br#""embedding""#;
    for at in memchr::memmem::find_iter(body, NAME) {
        let Some(value) = body[at + NAME.len()..]
            .trim_ascii_start()
            .strip_prefix(b":")
        else {
            continue;
        };
        return match value.trim_ascii_start().first()? {
            b'[' => Some(Encoding::Float),
            b'"' => Some(Encoding::Base64),
            _ => None,
        };
    }
    None
}

fn to_base64(floats: &Value) -> Option<String> {
    let mut bytes = Vec::new();
    for value in floats.as_array()? {
        bytes.extend_from_slice(&(value.as_f64()? as f32).to_le_bytes());
    }
    Some(STANDARD.encode(bytes))
}

fn from_base64(text: &str) -> Option<Vec<Value>> {
    let bytes = STANDARD.decode(text).ok()?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| Value::from(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn floats_become_base64_and_back() {
        let floats = json!({"object": "list", "data": [{"object": "embedding", "index": 0,
            "embedding": [0.5, -1.0, 0.25]}], "usage": {"prompt_tokens": 1}});
        let body = floats.to_string();
        assert_eq!(in_encoding(body.as_bytes(), Encoding::Float), None);
        let encoded = in_encoding(body.as_bytes(), Encoding::Base64).unwrap();
        let value: Value = serde_json::from_slice(&encoded).unwrap();
        let text = value["data"][0]["embedding"].as_str().unwrap();
        let mut expected = Vec::new();
        for f in [0.5f32, -1.0, 0.25] {
            expected.extend_from_slice(&f.to_le_bytes());
        }
        assert_eq!(STANDARD.decode(text).unwrap(), expected);
        assert_eq!(value["usage"], json!({"prompt_tokens": 1}));
        assert_eq!(in_encoding(&encoded, Encoding::Base64), None);
        let decoded = in_encoding(&encoded, Encoding::Float).unwrap();
        let value: Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(value["data"][0]["embedding"], json!([0.5, -1.0, 0.25]));
    }

    #[test]
    fn reads_the_requested_encoding() {
        let base64 = RawValue::from_string(r#""base64""#.into()).unwrap();
        assert_eq!(Encoding::requested(Some(&base64)), Encoding::Base64);
        assert_eq!(Encoding::requested(None), Encoding::Float);
    }
}
