//! A setting that is a credential (an upstream key, a URL with a password, the sealing
//! key). `Debug` and `Display` print `[redacted]`, so `{:?}` of the settings, or a log
//! line that names one, never shows it; the text is read through `expose` only, by the
//! code that hands it to the service it opens.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::providers::redact::REDACTED;

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The credential itself, for the client that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Secret {
        Secret(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Secret {
        Secret(text.to_string())
    }
}

/// For `TOKENHUB_*` variables read through `config::set`.
impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(text: &str) -> Result<Secret, Infallible> {
        Ok(Secret::from(text))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_redacted_and_exposes_the_text() {
        let secret = Secret::from("redis://:hunter2@cache:6379");
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), "redis://:hunter2@cache:6379");
        let parsed: Secret = toml::from_str::<toml::Table>("k = \"sk-abc\"").unwrap()["k"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(parsed.expose(), "sk-abc");
    }
}
