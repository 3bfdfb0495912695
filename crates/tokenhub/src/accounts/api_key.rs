//! API key secrets: `sk-` followed by 48 random base62 characters (≈285 bits).
//! Only the SHA-256 of a key is stored; lookups hash the presented key and find it in a
//! map, so no comparison runs over secret bytes.

use rand::Rng;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SECRET_LEN: usize = 48;

pub fn generate() -> String {
    random_token("sk-", SECRET_LEN)
}

/// `prefix` + `len` random base62 characters from the thread's CSPRNG (≈5.95 bits each).
/// Shared by every secret the gateway issues (keys, sessions, admin tokens, codes).
pub fn random_token(prefix: &str, len: usize) -> String {
    let mut rng = rand::rng();
    let body: String = (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{body}")
}

pub fn hash(secret: &str) -> String {
    // Into a buffer, not `hex::encode`, which collects a `char` at a time: every request
    // hashes its key (1.7k instructions of 155k, addendum 23).
    let mut text = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(secret.as_bytes()), &mut text)
        .expect("32 bytes are 64 hex digits");
    String::from_utf8(text.to_vec()).expect("hex digits are ASCII")
}

/// What lists show: enough to recognise a key, far too little to use it.
pub fn display_prefix(secret: &str) -> String {
    let shown: String = secret.chars().take(7).collect();
    format!("{shown}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_well_formed_and_hashed() {
        let a = generate();
        assert!(a.starts_with("sk-") && a.len() == 51);
        assert_ne!(a, generate());
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(hash("sk-x"), hash("sk-x"));
        // The stored form: SHA-256 in lower-case hex (FIPS 180-2's "abc" vector).
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(display_prefix("sk-abcdefgh"), "sk-abcd…");
    }
}
