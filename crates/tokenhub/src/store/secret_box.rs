//! Upstream channel keys at rest: sealed with XChaCha20-Poly1305 under a 32-byte key,
//! stored as `enc:v1:<base64(nonce ‖ ciphertext ‖ tag)>`, a fresh random nonce per value.
//! The prefix tells a sealed value from a plain one written before sealing existed;
//! `v1` leaves room for another algorithm or key later.
//!
//! Only the store sees sealed text: it seals on write and opens when the channels are
//! loaded, so everything above it (catalogue, management API) sees plain keys and masks
//! them as before.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// What marks a sealed value.
pub const SEALED_PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 24;
/// Binds a sealed value to its purpose: a ciphertext made for something else fails.
const CONTEXT: &[u8] = b"tokenhub channel key v1";

/// The 32-byte key, from `TOKENHUB_SECRET_KEY` or the key file.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// 64 hex characters, or standard base64 of 32 bytes (`openssl rand -hex 32` or
    /// `openssl rand -base64 32`). Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            BASE64.decode(text).map_err(|_| {
                "must be 64 hex characters or the base64 of 32 bytes (e.g. `openssl rand -hex 32`)"
                    .to_string()
            })?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "must be 32 bytes (64 hex characters, or 44 base64 characters); this is {} bytes",
                bytes.len()
            )
        })?;
        Ok(SecretKey(key))
    }

    pub fn generate() -> SecretKey {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        SecretKey(key)
    }

    fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// A sealed value that this key cannot open: another key sealed it, or it was altered.
#[derive(Debug, thiserror::Error)]
#[error("a sealed value cannot be opened with this secret key")]
pub struct WrongKey;

/// Seals and opens values with one key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(…)")
    }
}

impl SecretBox {
    pub fn new(key: &SecretKey) -> SecretBox {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.0.into()),
        }
    }

    pub fn is_sealed(text: &str) -> bool {
        text.starts_with(SEALED_PREFIX)
    }

    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: CONTEXT,
        };
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 seals any message shorter than 256 GiB");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", BASE64.encode(bytes))
    }

    /// The plain text of a sealed value; a value without the prefix is returned as it is
    /// (written before sealing existed, and sealed at the next start).
    pub fn open(&self, stored: &str) -> Result<String, WrongKey> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = BASE64.decode(encoded).map_err(|_| WrongKey)?;
        if bytes.len() < NONCE_LEN {
            return Err(WrongKey);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: sealed,
            aad: CONTEXT,
        };
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| WrongKey)?;
        String::from_utf8(plain).map_err(|_| WrongKey)
    }
}

/// Where the key file of a SQLite database lives: next to it, `<database file>.key`.
pub fn key_file_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Reads the key file, or creates it with a new key (mode 0600) if there is none. Two
/// processes starting at once agree: the file appears whole or not at all (written
/// aside, then linked into place), and the second reads the first's key.
pub fn load_or_create_key_file(path: &Path) -> Result<SecretKey, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => return read_key_file(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let key = SecretKey::generate();
    let aside = path.with_extension(format!("key.{}.tmp", std::process::id()));
    write_private(&aside, &key.to_hex())
        .map_err(|e| format!("cannot write {}: {e}", aside.display()))?;
    let linked = std::fs::hard_link(&aside, path);
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => {
            tracing::warn!(
                file = %path.display(),
                "generated the secret key that seals upstream keys in the database; back it up \
                 with the database (without it the stored upstream keys cannot be read)"
            );
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            read_key_file(path, &text)
        }
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

fn read_key_file(path: &Path, text: &str) -> Result<SecretKey, String> {
    warn_if_readable_by_others(path);
    SecretKey::parse(text).map_err(|why| format!("key file {}: {why}", path.display()))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "the secret key file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_hex_or_base64_of_32_bytes() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        assert!(SecretKey::parse(hex).is_ok());
        assert!(SecretKey::parse(&format!(" {hex}\n")).is_ok());
        assert!(SecretKey::parse(&BASE64.encode([7u8; 32])).is_ok());
        for bad in [
            "",
            "short",
            &hex[..62],
            &BASE64.encode([7u8; 16]),
            "zz".repeat(32).as_str(),
        ] {
            let error = SecretKey::parse(bad).unwrap_err();
            assert!(
                error.contains("32 bytes") || error.contains("64 hex"),
                "{bad}: {error}"
            );
        }
        assert_eq!(format!("{:?}", SecretKey::generate()), "SecretKey(…)");
    }

    #[test]
    fn sealed_values_open_with_their_key_only() {
        let sealer = SecretBox::new(&SecretKey::generate());
        let sealed = sealer.seal("sk-upstream-secret");
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("sk-upstream-secret"));
        assert_ne!(
            sealed,
            sealer.seal("sk-upstream-secret"),
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(&sealed).unwrap(), "sk-upstream-secret");
        assert_eq!(sealer.open("plain-old-key").unwrap(), "plain-old-key");
        let other = SecretBox::new(&SecretKey::generate());
        assert!(other.open(&sealed).is_err());
        let mut altered = sealed.clone();
        altered.replace_range(sealed.len() - 3..sealed.len() - 2, "A");
        if altered != sealed {
            assert!(sealer.open(&altered).is_err());
        }
        assert!(sealer.open("enc:v1:not base64").is_err());
        assert!(sealer.open("enc:v1:AAAA").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = key_file_for(&dir.path().join("tokenhub.db"));
        assert!(path.ends_with("tokenhub.db.key"));
        let first = load_or_create_key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_or_create_key_file(&path).unwrap();
        assert_eq!(first.0, second.0, "the second start reads the same key");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no leftovers"
        );
    }
}
