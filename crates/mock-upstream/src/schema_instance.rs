//! A JSON value matching a JSON Schema, for answers the request constrains: Anthropic's
//! structured outputs (`output_config.format`) and a forced tool's `input_schema`. Every
//! declared property is filled; `enum`/`const` take their first value; `anyOf`/`oneOf`
//! their first branch; local `$ref`s (`#/$defs/…`, `#/definitions/…`) are followed.

use serde_json::{Map, Value, json};

/// An instance of `schema` (`root` resolves `$ref`s).
pub fn instance(schema: &Value) -> Value {
    instance_in(schema, schema, 0)
}

fn instance_in(schema: &Value, root: &Value, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    if let Some(pointer) = schema.get("$ref").and_then(Value::as_str)
        && let Some(target) = pointer.strip_prefix('#').and_then(|p| root.pointer(p))
    {
        return instance_in(target, root, depth + 1);
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    for any in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema.get(any).and_then(|e| e.get(0)) {
            return instance_in(first, root, depth + 1);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds.first().and_then(Value::as_str).unwrap_or("null"),
        Some(Value::String(kind)) => kind.as_str(),
        _ if schema.get("properties").is_some() => "object",
        _ => "object",
    };
    match kind {
        "string" => Value::from("mock"),
        "integer" => json!(1),
        "number" => json!(1.5),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        "array" => {
            let item = schema.get("items").map_or(Value::from("mock"), |items| {
                instance_in(items, root, depth + 1)
            });
            Value::Array(vec![item])
        }
        _ => {
            let mut object = Map::new();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    object.insert(name.clone(), instance_in(property, root, depth + 1));
                }
            }
            Value::Object(object)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_property_following_refs() {
        let schema = json!({"type": "object", "properties": {
            "name": {"type": "string"}, "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "pet": {"$ref": "#/$defs/Pet"}, "size": {"enum": ["s", "m"]},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
            "$defs": {"Pet": {"type": "object", "properties": {"kind": {"type": "string"}}}}});
        assert_eq!(
            instance(&schema),
            json!({"name": "mock", "age": 1, "tags": ["mock"], "pet": {"kind": "mock"},
                   "size": "s", "note": "mock"})
        );
    }
}
