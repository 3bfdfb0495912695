//! Gemini's `thoughtSignature` carried through OpenAI tool call ids.
//!
//! Thinking Gemini models (Gemini 3 always) sign the function calls they make, and the
//! signature must come back with that call in the next request, or Gemini refuses the
//! conversation. OpenAI's messages have no place for it, but every client echoes a tool
//! call's `id` back exactly (it must, to pair results with calls). So a signed call gets
//! the id `call_<k>_ts_<signature>`, the signature in base64url without padding (only
//! `[A-Za-z0-9_-]`, which every id check accepts); an unsigned call keeps `call_<k>`.
//! A request that replays the id gets the signature back on its `functionCall` part.
//!
//! Pure functions; the only state is in the ids the client holds.

/// What comes between the call number and the signature.
const MARKER: &str = "_ts_";

/// The id of an answer's k-th tool call (Gemini gives calls none, so they are
/// numbered), carrying the call's signature when it has one.
pub fn call_id(k: usize, signature: Option<&str>) -> String {
    match signature {
        Some(signature) if !signature.is_empty() => {
            format!("call_{k}{MARKER}{}", to_base64url(signature))
        }
        _ => format!("call_{k}"),
    }
}

/// The signature an id made by [`call_id`] carries, in standard base64 as Gemini sent
/// it. Ids from elsewhere (another model's, a client's own) carry none.
pub fn signature_of(id: &str) -> Option<String> {
    let rest = id.strip_prefix("call_")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let encoded = rest[digits..].strip_prefix(MARKER)?;
    let is_base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if digits == 0 || encoded.is_empty() || !encoded.bytes().all(is_base64url) {
        return None;
    }
    Some(from_base64url(encoded))
}

/// Standard base64 → base64url without padding (a character-for-character mapping).
fn to_base64url(standard: &str) -> String {
    standard
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

/// The inverse of [`to_base64url`], padding restored to a multiple of 4.
fn from_base64url(url_safe: &str) -> String {
    let mut standard: String = url_safe
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    standard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_survive_the_round_trip_through_an_id() {
        for signature in ["CiQBdGVzdA==", "a+b/c9==", "AAAA", "Zm9vYmFy+/+/Zg=="] {
            let id = call_id(3, Some(signature));
            assert!(id.starts_with("call_3_ts_"), "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{id} is id-safe"
            );
            assert_eq!(signature_of(&id).as_deref(), Some(signature), "{id}");
        }
    }

    #[test]
    fn unsigned_and_foreign_ids_carry_nothing() {
        assert_eq!(call_id(0, None), "call_0");
        assert_eq!(call_id(1, Some("")), "call_1");
        for id in [
            "call_0",
            "call_abc",
            "call__ts_abc",
            "call_1_ts_",
            "call_1_ts_a+b",
            "toolu_01_ts_abc",
            "call_x1_ts_abc",
        ] {
            assert_eq!(signature_of(id), None, "{id}");
        }
    }
}
