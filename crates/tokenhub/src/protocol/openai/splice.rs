//! Setting members of a JSON object by splicing its text: every other byte (member order,
//! spacing, unknown members, how numbers are spelled) stays as it came. The cost written
//! into every answer's `usage` (`charge.rs`) splitting the whole answer into members and
//! writing it again (`RawObject`) cost 18k instructions a request; this reads the answer
//! once with the metering reader and copies it around the one value that changes
//! (bench/RESULTS.md, addendum 23). A complete answer is not even read again: metering
//! notes where its `usage` is as it reads it (`MemberSite`, addendum 29).

use std::borrow::Cow;
use std::ops::Range;

use super::chunk::reader::{JsonReader, Read};

/// Where the one member of some name has its value in an object's text (if it has one),
/// where the object closes and whether it has members, as a reader that went through the
/// object noted them: enough to set that member without reading the object again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberSite {
    pub value: Option<Range<usize>>,
    pub close: usize,
    pub has_members: bool,
}

impl MemberSite {
    /// `json`, the object the site was noted in, as an `ObjectText` whose `get` and `with`
    /// answer for `name` alone. `None` if `json` does not close where the site says.
    pub fn object_text<'a>(&self, json: &'a [u8], name: &'static str) -> Option<ObjectText<'a>> {
        let fits = |at: &Range<usize>| at.start <= at.end && at.end <= self.close;
        if json.get(self.close) != Some(&b'}') || !self.value.as_ref().is_none_or(fits) {
            return None;
        }
        Some(ObjectText {
            json,
            values: self
                .value
                .clone()
                .map(|at| (Cow::Borrowed(name.as_bytes()), at))
                .into_iter()
                .collect(),
            close: self.close,
            has_members: self.has_members,
        })
    }
}

/// One JSON object's text and where its members' values lie in it.
pub struct ObjectText<'a> {
    json: &'a [u8],
    /// Each member's name (unescaped) and where its value lies, in order.
    values: Vec<(Cow<'a, [u8]>, Range<usize>)>,
    /// Where the closing brace is.
    close: usize,
    has_members: bool,
}

impl<'a> ObjectText<'a> {
    /// Reads `json`, which must be one object (whitespace around it allowed).
    pub fn read(json: &'a [u8]) -> Read<ObjectText<'a>> {
        let mut reader = JsonReader::new(json);
        let mut values = Vec::new();
        reader.object(|reader, key| {
            let start = reader.position();
            let value = reader.value()?;
            values.push((key.name(), start..start + value.len()));
            Ok(())
        })?;
        let close = reader.consumed() - 1;
        reader.end()?;
        Ok(ObjectText {
            json,
            has_members: !values.is_empty(),
            values,
            close,
        })
    }

    /// The value of the last member named `name`, the one JSON parsers keep.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        let json = self.json;
        self.values
            .iter()
            .rev()
            .find(|(member, _)| **member == *name.as_bytes())
            .map(|(_, at)| &json[at.clone()])
    }

    /// The object with each `(name, raw JSON)` of `set` as the value of every member of
    /// that name, or appended (in `set`'s order) where it has none. The names are plain
    /// identifiers: they are written without escaping.
    pub fn with(&self, set: &[(&str, &[u8])]) -> Vec<u8> {
        let new_value = |name: &[u8]| {
            set.iter()
                .find(|(wanted, _)| wanted.as_bytes() == name)
                .map(|(_, raw)| *raw)
        };
        let added: usize = set
            .iter()
            .map(|(name, raw)| name.len() + raw.len() + 4)
            .sum();
        let mut out = Vec::with_capacity(self.json.len() + added);
        let mut copied = 0;
        for (name, at) in &self.values {
            if let Some(raw) = new_value(name) {
                out.extend_from_slice(&self.json[copied..at.start]);
                out.extend_from_slice(raw);
                copied = at.end;
            }
        }
        out.extend_from_slice(&self.json[copied..self.close]);
        let mut has_members = self.has_members;
        for (name, raw) in set {
            debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            if self.get(name).is_some() {
                continue;
            }
            if has_members {
                out.push(b',');
            }
            has_members = true;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(raw);
        }
        out.extend_from_slice(&self.json[self.close..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn with(json: &str, set: &[(&str, &str)]) -> String {
        let set: Vec<(&str, &[u8])> = set.iter().map(|(n, raw)| (*n, raw.as_bytes())).collect();
        String::from_utf8(ObjectText::read(json.as_bytes()).unwrap().with(&set)).unwrap()
    }

    #[test]
    fn replaces_a_value_in_place_and_keeps_every_other_byte() {
        let json = " {\"id\" : \"c\",\n \"usage\":{\"a\":1} ,\"n\":1.50e3} \n";
        assert_eq!(
            with(json, &[("usage", "{\"b\":2}")]),
            " {\"id\" : \"c\",\n \"usage\":{\"b\":2} ,\"n\":1.50e3} \n"
        );
    }

    #[test]
    fn appends_missing_members_in_order_to_empty_and_full_objects() {
        assert_eq!(with("{}", &[("a", "1"), ("b", "[]")]), r#"{"a":1,"b":[]}"#);
        assert_eq!(with("{ }", &[("a", "1")]), r#"{ "a":1}"#);
        assert_eq!(
            with(r#"{"x":null }"#, &[("a", "1")]),
            r#"{"x":null ,"a":1}"#
        );
        assert_eq!(
            with(r#"{"a":0,"x":1}"#, &[("x", "2"), ("b", "3")]),
            r#"{"a":0,"x":2,"b":3}"#
        );
    }

    #[test]
    fn every_duplicate_gets_the_value_and_get_reads_the_last() {
        let json = r#"{"u":1,"v":0,"u":2}"#;
        let object = ObjectText::read(json.as_bytes()).unwrap();
        assert_eq!(object.get("u"), Some(&b"2"[..]));
        assert_eq!(object.get("w"), None);
        assert_eq!(with(json, &[("u", "9")]), r#"{"u":9,"v":0,"u":9}"#);
    }

    #[test]
    fn escaped_names_are_matched_by_what_they_spell() {
        let json = r#"{"us\u0061ge":{"a":1}}"#;
        assert_eq!(with(json, &[("usage", "7")]), r#"{"us\u0061ge":7}"#);
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for json in [
            "",
            "null",
            "[]",
            "1",
            r#"{"a":1}{"b":2}"#,
            r#"{"a":}"#,
            r#"{"a":1"#,
            r#"{"a" 1}"#,
        ] {
            assert!(ObjectText::read(json.as_bytes()).is_err(), "{json}");
        }
    }

    #[test]
    fn the_result_parses_as_the_object_with_the_members_set() {
        let json = r#"{"id":"x","choices":[{"message":{"content":"hi \"there\""}}],"usage":{"prompt_tokens":3}}"#;
        let out = with(json, &[("usage", r#"{"cost":1}"#), ("extra", "true")]);
        let value: Value = serde_json::from_str(&out).unwrap();
        let mut expected: Value = serde_json::from_str(json).unwrap();
        expected["usage"] = json!({"cost": 1});
        expected["extra"] = json!(true);
        assert_eq!(value, expected);
    }
}
