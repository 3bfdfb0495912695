//! A one-pass JSON reader over borrowed bytes, for `CompletionView`: the caller reads the
//! members it needs and everything else is checked to be JSON and skipped, without
//! building anything. A typed serde parse of every stream chunk cost ~8,100 instructions
//! an event, most of it turning every key into a `&str` and allocating the choices
//! (bench/RESULTS.md, addendum 16); this reads a chunk in a fraction of that.
//!
//! Its small steps are `#[inline(always)]`: left to the compiler, the calls between them
//! cost a fifth of a chunk's reading (measured with callgrind).
//!
//! What it accepts is RFC 8259 JSON, as `serde_json` does, with its nesting limit (128).
//! Like serde's skipping, it does not check UTF-8 inside the strings it skips; strings it
//! returns are checked (unescaped by `serde_json` when they hold escapes).

use std::borrow::Cow;
use std::fmt;

/// Why the bytes are not the JSON expected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub expected: &'static str,
    pub at: usize,
}

impl ReadError {
    pub fn new(expected: &'static str, at: usize) -> ReadError {
        ReadError { expected, at }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} at byte {}", self.expected, self.at)
    }
}

impl std::error::Error for ReadError {}

pub type Read<T> = Result<T, ReadError>;

/// serde_json's recursion limit.
const MAX_DEPTH: usize = 128;

pub struct JsonReader<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

impl<'a> JsonReader<'a> {
    pub fn new(bytes: &'a [u8]) -> JsonReader<'a> {
        JsonReader {
            bytes,
            at: 0,
            depth: 0,
        }
    }

    fn fail<T>(&self, expected: &'static str) -> Read<T> {
        Err(ReadError::new(expected, self.at))
    }

    /// Where the next value starts.
    pub fn position(&mut self) -> usize {
        self.peek();
        self.at
    }

    /// How many bytes have been read: just past the last value or closing bracket.
    pub fn consumed(&self) -> usize {
        self.at
    }

    /// The next byte that is not whitespace, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        // Compact JSON has no whitespace between tokens, and every whitespace byte is at
        // most ' ': one comparison settles the common case.
        match self.bytes.get(self.at) {
            Some(&byte) if byte > b' ' => Some(byte),
            _ => self.skip_whitespace(),
        }
    }

    #[cold]
    fn skip_whitespace(&mut self) -> Option<u8> {
        while let Some(&byte) = self.bytes.get(self.at) {
            if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(byte);
            }
            self.at += 1;
        }
        None
    }

    #[inline(always)]
    fn eat(&mut self, byte: u8, expected: &'static str) -> Read<()> {
        if self.peek() != Some(byte) {
            return self.fail(expected);
        }
        self.at += 1;
        Ok(())
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Read<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("the end of the JSON"),
        }
    }

    /// `null` is next: consumes it.
    #[inline(always)]
    pub fn null(&mut self) -> Read<bool> {
        if self.peek() != Some(b'n') {
            return Ok(false);
        }
        self.literal(b"null")?;
        Ok(true)
    }

    #[inline(always)]
    fn literal(&mut self, word: &'static [u8]) -> Read<()> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            self.fail("a JSON value")
        }
    }

    /// The members of an object, each handed to `member` with its key; `member` must
    /// read or skip the value.
    #[inline(always)]
    pub fn object(&mut self, mut member: impl FnMut(&mut Self, Key<'a>) -> Read<()>) -> Read<()> {
        self.eat(b'{', "an object")?;
        self.nest()?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return self.fail("a string key");
            }
            let (raw, escaped) = self.raw_string()?;
            self.eat(b':', "':'")?;
            member(self, Key { raw, escaped })?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.fail("',' or '}'"),
            }
        }
    }

    /// The items of an array, each handed to `item`, which must read or skip it.
    pub fn array(&mut self, mut item: impl FnMut(&mut Self) -> Read<()>) -> Read<()> {
        self.eat(b'[', "an array")?;
        self.nest()?;
        if self.peek() == Some(b']') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.fail("',' or ']'"),
            }
        }
    }

    fn nest(&mut self) -> Read<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail("less nesting");
        }
        Ok(())
    }

    /// A string, unescaped (borrowed when it has no escapes).
    #[inline(always)]
    pub fn string(&mut self) -> Read<Cow<'a, str>> {
        let start = self.position();
        let (raw, escaped) = self.raw_string()?;
        if escaped {
            return serde_json::from_slice::<String>(&self.bytes[start..self.at])
                .map(Cow::Owned)
                .map_err(|_| ReadError::new("a valid string escape", start));
        }
        utf8(raw)
            .map(Cow::Borrowed)
            .ok_or_else(|| ReadError::new("UTF-8 text", start))
    }

    /// Any value but `null`, as the JSON text it is written as.
    pub fn optional_raw_text(&mut self) -> Read<Option<&'a str>> {
        if self.null()? {
            return Ok(None);
        }
        let start = self.position();
        let raw = self.value()?;
        // Its strings were skipped: their bytes are checked here.
        utf8(raw)
            .map(Some)
            .ok_or_else(|| ReadError::new("UTF-8 text", start))
    }

    /// A string or `null`.
    #[inline(always)]
    pub fn optional_string(&mut self) -> Read<Option<Cow<'a, str>>> {
        if self.null()? {
            return Ok(None);
        }
        if self.peek() != Some(b'"') {
            return self.fail("a string");
        }
        self.string().map(Some)
    }

    /// The bytes between a string's quotes, escapes checked but kept, and whether it has
    /// any.
    #[inline(always)]
    fn raw_string(&mut self) -> Read<(&'a [u8], bool)> {
        self.eat(b'"', "a string")?;
        let start = self.at;
        let mut escaped = false;
        loop {
            self.at += plain_run(&self.bytes[self.at..]);
            match self.bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok((&self.bytes[start..self.at - 1], escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(_) => return self.fail("no control character in a string"),
                None => return self.fail("the end of a string"),
            }
        }
    }

    fn escape(&mut self) -> Read<()> {
        match self.bytes.get(self.at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 2,
            Some(b'u') => {
                let hex = self.bytes.get(self.at + 2..self.at + 6);
                if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return self.fail("four hex digits");
                }
                self.at += 6;
            }
            _ => return self.fail("a string escape"),
        }
        Ok(())
    }

    /// An integer that fits an `i64`, or `null`.
    pub fn optional_i64(&mut self) -> Read<Option<i64>> {
        if self.null()? {
            return Ok(None);
        }
        let start = self.at;
        let negative = self.bytes.get(self.at) == Some(&b'-');
        self.at += usize::from(negative);
        // Summed as a negative number: i64::MIN has no positive counterpart.
        let mut value: Option<i64> = Some(0);
        let digits_at = self.at;
        while let Some(&digit) = self.bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            value = value.and_then(|v| v.checked_mul(10)?.checked_sub(i64::from(digit - b'0')));
            self.at += 1;
        }
        let digits = self.at - digits_at;
        let leading_zero = digits > 1 && self.bytes[digits_at] == b'0';
        let fraction = matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E'));
        if digits == 0 || leading_zero || fraction {
            // Not an integer as JSON writes one: the grammar's own message, or "an integer".
            self.at = start;
            self.number()?;
            self.at = start;
            return self.fail("an integer");
        }
        match value.and_then(|v| if negative { Some(v) } else { v.checked_neg() }) {
            Some(value) => Ok(Some(value)),
            None => {
                self.at = start;
                self.fail("an integer that fits 64 bits")
            }
        }
    }

    /// Any value, checked and skipped; returns its bytes.
    #[inline(always)]
    pub fn value(&mut self) -> Read<&'a [u8]> {
        let Some(first) = self.peek() else {
            return self.fail("a JSON value");
        };
        let start = self.at;
        match first {
            b'{' => self.object(|reader, _| reader.value().map(drop))?,
            b'[' => self.array(|reader| reader.value().map(drop))?,
            b'"' => drop(self.raw_string()?),
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.number()?,
        }
        Ok(&self.bytes[start..self.at])
    }

    /// A number as JSON writes one: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Read<()> {
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.fail("a JSON value"),
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.bytes.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.bytes.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Read<()> {
        let start = self.at;
        self.digits();
        if self.at == start {
            return self.fail("a digit");
        }
        Ok(())
    }
}

/// An object's key as written, between its quotes.
#[derive(Clone, Copy)]
pub struct Key<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl<'a> Key<'a> {
    /// The key to compare with names: unescaped when it is written with escapes (no
    /// upstream does so, but JSON allows it). A key whose escapes stand for no text
    /// matches no name.
    #[inline(always)]
    pub fn name(self) -> Cow<'a, [u8]> {
        if !self.escaped {
            return Cow::Borrowed(self.raw);
        }
        let mut quoted = Vec::with_capacity(self.raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(self.raw);
        quoted.push(b'"');
        let name = serde_json::from_slice::<String>(&quoted);
        Cow::Owned(name.map_or_else(|_| Vec::new(), String::into_bytes))
    }
}

/// The bytes as text, if they are UTF-8. Most strings a chunk returns (ids, model
/// names, short deltas) are ASCII, which a word-at-a-time check settles faster than
/// `str::from_utf8` does.
#[inline(always)]
fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

/// How many bytes at the start of `bytes` may stand in a string as they are: no quote,
/// backslash or control character. Eight bytes at a time.
#[inline(always)]
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        // The high bit of the first byte that is a quote, a backslash or below 0x20 is set
        // (later bytes may be flagged wrongly by the borrow; bytes of 0x80 and up never are).
        let special = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word))
            & HIGHS;
        if special != 0 {
            return at + (special.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + words
        .remainder()
        .iter()
        .take_while(|&&byte| !matches!(byte, b'"' | b'\\' | 0..0x20))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skips a whole document as `value` does, then checks nothing follows.
    fn accepts(json: &[u8]) -> bool {
        let mut reader = JsonReader::new(json);
        reader.value().is_ok() && reader.end().is_ok()
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        let documents: &[&[u8]] = &[
            br#"{}"#,
            br#" {"a" : [1, -2.5e+3, 0, 0.0, true, false, null, "x\"y\\u00e9\n"], "b":{}} "#,
            br#"[[[]]]"#,
            br#""caf\u00e9 \ud83d\ude00""#,
            "\"déjà vu\"".as_bytes(),
            b"-0",
            b"1E5",
            br#"{"a":1,}"#,
            br#"[1,]"#,
            br#"{"a" 1}"#,
            b"01",
            b"1.",
            b"1e",
            b"-",
            b".5",
            b"nul",
            b"truex",
            b"\"tab\there\"",
            br#""\x""#,
            br#""\u12g4""#,
            br#""open"#,
            br#"{"a":1}}"#,
            b"",
            b"   ",
        ];
        for json in documents {
            let serde = serde_json::from_slice::<serde::de::IgnoredAny>(json).is_ok();
            assert_eq!(accepts(json), serde, "{}", String::from_utf8_lossy(json));
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(accepts(deep(128).as_bytes()));
        assert!(!accepts(deep(129).as_bytes()));
        assert!(!accepts(deep(100_000).as_bytes()), "no stack overflow");
    }

    #[test]
    fn strings_come_back_unescaped_and_borrowed_when_they_can() {
        let mut reader = JsonReader::new(br#"["plain", "a\"b\u00e9"]"#);
        let mut strings = Vec::new();
        reader
            .array(|reader| {
                strings.push(reader.string()?);
                Ok(())
            })
            .unwrap();
        assert!(matches!(strings[0], Cow::Borrowed("plain")));
        assert_eq!(strings[1], "a\"bé");
    }

    #[test]
    fn integers_fit_or_fail() {
        let read = |json: &[u8]| JsonReader::new(json).optional_i64();
        assert_eq!(read(b"1700000000"), Ok(Some(1_700_000_000)));
        assert_eq!(read(b"-5"), Ok(Some(-5)));
        assert_eq!(read(b"0"), Ok(Some(0)));
        assert_eq!(read(b"-0"), Ok(Some(0)));
        assert_eq!(read(b"null"), Ok(None));
        assert_eq!(read(b"9223372036854775807"), Ok(Some(i64::MAX)));
        assert_eq!(read(b"-9223372036854775808"), Ok(Some(i64::MIN)));
        let an_integer = |at| Err(ReadError::new("an integer", at));
        assert_eq!(read(b"1.5"), an_integer(0));
        assert_eq!(read(b"1e3"), an_integer(0));
        assert_eq!(read(b"-2E3"), an_integer(0));
        assert_eq!(read(b"01"), an_integer(0));
        assert_eq!(
            read(b"9223372036854775808"),
            Err(ReadError::new("an integer that fits 64 bits", 0))
        );
        assert_eq!(
            read(b"-9223372036854775809"),
            Err(ReadError::new("an integer that fits 64 bits", 0))
        );
        // Not a number at all: the grammar says where it broke.
        assert_eq!(read(b"-"), Err(ReadError::new("a JSON value", 1)));
        assert_eq!(read(b"1."), Err(ReadError::new("a digit", 2)));
        assert_eq!(read(b"\"1\""), Err(ReadError::new("a JSON value", 0)));
        // An integer ends where its digits do; what follows is the caller's to read.
        let mut reader = JsonReader::new(b"42,");
        assert_eq!(reader.optional_i64(), Ok(Some(42)));
        assert_eq!(reader.consumed(), 2);
    }

    #[test]
    fn whitespace_is_skipped_wherever_json_allows_it() {
        let mut texts = Vec::new();
        let json = b" \t{ \"a\" :\r\n [ \"x\" , null ] ,\"b\":\"y\"\n} \n";
        let mut reader = JsonReader::new(json);
        reader
            .object(|reader, key| {
                if &*key.name() == b"a" {
                    reader.array(|reader| {
                        texts.extend(reader.optional_string()?);
                        Ok(())
                    })
                } else {
                    texts.extend(reader.optional_string()?);
                    Ok(())
                }
            })
            .unwrap();
        assert_eq!(reader.end(), Ok(()));
        assert_eq!(texts, ["x", "y"]);
        assert!(
            JsonReader::new(b"{\x01}").value().is_err(),
            "a control byte is no whitespace"
        );
    }

    #[test]
    fn returned_text_must_be_utf8_and_need_not_be_ascii() {
        fn string(json: &[u8]) -> Read<Cow<'_, str>> {
            JsonReader::new(json).string()
        }
        assert_eq!(
            string("\"caf\u{e9} \u{1f600}\"".as_bytes()).unwrap(),
            "caf\u{e9} \u{1f600}"
        );
        assert_eq!(string(b"\"plain\"").unwrap(), "plain");
        assert_eq!(
            string(b"\"bad \xff\""),
            Err(ReadError::new("UTF-8 text", 0))
        );
        fn raw(json: &[u8]) -> Read<Option<&str>> {
            JsonReader::new(json).optional_raw_text()
        }
        assert_eq!(raw("[\"\u{e9}\"]".as_bytes()), Ok(Some("[\"\u{e9}\"]")));
        assert_eq!(raw(b"[\"\xc3\"]"), Err(ReadError::new("UTF-8 text", 0)));
    }

    #[test]
    fn escaped_keys_are_compared_unescaped() {
        let mut names = Vec::new();
        JsonReader::new(br#"{"usage":1,"\u0075sage":2,"\ud800":3}"#)
            .object(|reader, key| {
                names.push(key.name().into_owned());
                reader.value().map(drop)
            })
            .unwrap();
        assert_eq!(names, [&b"usage"[..], b"usage", b""]);
    }

    #[test]
    fn plain_runs_stop_at_quotes_backslashes_and_control_bytes() {
        assert_eq!(plain_run(b"hello world, a long one\"x"), 23);
        assert_eq!(plain_run(b"0123456789\\"), 10);
        assert_eq!(plain_run(b"0123456\x1f"), 7);
        assert_eq!(plain_run("ééééé\"".as_bytes()), 10);
        assert_eq!(plain_run(b"\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x20"), 9);
        assert_eq!(plain_run(b"\"\x01\"\"\"\"\"\""), 0);
        assert_eq!(plain_run(b"abc"), 3);
    }
}
