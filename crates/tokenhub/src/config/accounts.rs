//! The `[accounts]` settings: sign-up, trial credit and sessions.
//!
//! | setting | env | default |
//! |---|---|---|
//! | `accounts.signup` | `TOKENHUB_SIGNUP` (`open`/`closed`) | `open` when listening on loopback, else `closed` |
//! | `accounts.trial_credit_usd` | `TOKENHUB_TRIAL_CREDIT_USD` | `1.00` |
//! | `accounts.session_ttl_hours` | `TOKENHUB_SESSION_TTL_HOURS` | `168` (7 days) |
//! | `accounts.cookie_secure` | `TOKENHUB_COOKIE_SECURE` (`true`/`false`) | `false` (set `true` behind https) |
//! | `accounts.anonymous_chat` | `TOKENHUB_ANONYMOUS_CHAT` (`true`/`false`) | `true`: visitors may try free models in `/chat` |
//! | `accounts.anonymous_chat_rpm` | `TOKENHUB_ANONYMOUS_CHAT_RPM` | `5` requests per minute per client address |
//! | `accounts.support_contact` | `TOKENHUB_SUPPORT_CONTACT` | empty: the docs page's "Need help?" is hidden (e.g. `WeChat: TokenHub_Support`) |
//! | `accounts.smtp_url` | `TOKENHUB_SMTP_URL` | none: no password reset by email. `smtps://user:pass@host` (TLS), `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtp://host:25` (plain, a local relay) |
//! | `accounts.smtp_from` | `TOKENHUB_SMTP_FROM` | the sender of account mail, e.g. `TokenHub <noreply@example.com>` (required with `smtp_url`) |
//!
//! Sign-up, trial credit, the anonymous chat trial and the support contact are defaults: an admin may change
//! them at runtime (`/admin` → Settings), which then takes precedence.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;
use crate::ledger::money::Nanos;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    Open,
    Closed,
}

impl std::str::FromStr for SignupMode {
    type Err = String;

    fn from_str(text: &str) -> Result<SignupMode, String> {
        match text {
            "open" => Ok(SignupMode::Open),
            "closed" => Ok(SignupMode::Closed),
            other => Err(format!("'{other}' is not 'open' or 'closed'")),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AccountSettings {
    /// `None`: decided by the listen address (see `signup_open`).
    pub signup: Option<SignupMode>,
    pub trial_credit_usd: String,
    pub session_ttl_hours: u64,
    pub cookie_secure: bool,
    pub anonymous_chat: bool,
    pub anonymous_chat_rpm: u32,
    pub support_contact: String,
    /// Where account mail (password resets) is sent through; `None`: no mail.
    pub smtp_url: Option<super::Secret>,
    pub smtp_from: Option<String>,
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            signup: None,
            trial_credit_usd: "1.00".into(),
            session_ttl_hours: 168,
            cookie_secure: false,
            anonymous_chat: true,
            anonymous_chat_rpm: 5,
            support_contact: String::new(),
            smtp_url: None,
            smtp_from: None,
        }
    }
}

impl AccountSettings {
    /// Open sign-up by default only where nobody else can reach it: a public bind must
    /// opt in, so a fresh deployment is not an open credit faucet.
    pub fn signup_open(&self, listen: SocketAddr) -> bool {
        match self.signup {
            Some(mode) => mode == SignupMode::Open,
            None => listen.ip().is_loopback(),
        }
    }

    pub fn trial_credit(&self) -> Result<Nanos, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            name: "accounts.trial_credit_usd".into(),
            message,
        };
        let amount: Nanos = self
            .trial_credit_usd
            .trim()
            .parse()
            .map_err(|e: crate::ledger::money::MoneyError| invalid(e.to_string()))?;
        if amount < Nanos::ZERO {
            return Err(invalid("must not be negative".into()));
        }
        Ok(amount)
    }

    pub fn session_ttl_ms(&self) -> i64 {
        i64::try_from(self.session_ttl_hours.max(1).saturating_mul(3_600_000)).unwrap_or(i64::MAX)
    }

    pub(super) fn apply_env(
        &mut self,
        var: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Invalid {
                    name: name.into(),
                    message: e.to_string(),
                })
        }
        if let Some(v) = var("TOKENHUB_SIGNUP") {
            self.signup = Some(parse("TOKENHUB_SIGNUP", &v)?);
        }
        if let Some(v) = var("TOKENHUB_TRIAL_CREDIT_USD") {
            self.trial_credit_usd = v.trim().to_string();
        }
        if let Some(v) = var("TOKENHUB_SESSION_TTL_HOURS") {
            self.session_ttl_hours = parse("TOKENHUB_SESSION_TTL_HOURS", &v)?;
        }
        if let Some(v) = var("TOKENHUB_COOKIE_SECURE") {
            self.cookie_secure = parse("TOKENHUB_COOKIE_SECURE", &v)?;
        }
        if let Some(v) = var("TOKENHUB_ANONYMOUS_CHAT") {
            self.anonymous_chat = parse("TOKENHUB_ANONYMOUS_CHAT", &v)?;
        }
        if let Some(v) = var("TOKENHUB_ANONYMOUS_CHAT_RPM") {
            self.anonymous_chat_rpm = parse("TOKENHUB_ANONYMOUS_CHAT_RPM", &v)?;
        }
        if let Some(v) = var("TOKENHUB_SUPPORT_CONTACT") {
            self.support_contact = v.trim().to_string();
        }
        if let Some(v) = var("TOKENHUB_SMTP_URL") {
            self.smtp_url = Some(v.trim())
                .filter(|v| !v.is_empty())
                .map(super::Secret::from);
        }
        if let Some(v) = var("TOKENHUB_SMTP_FROM") {
            self.smtp_from = Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }

        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signup_defaults_follow_the_bind_and_env_overrides() {
        let mut settings = AccountSettings::default();
        assert!(settings.signup_open("127.0.0.1:3000".parse().unwrap()));
        assert!(!settings.signup_open("0.0.0.0:3000".parse().unwrap()));
        assert_eq!(settings.trial_credit().unwrap(), Nanos::from_usd(1));
        let env = |name: &str| match name {
            "TOKENHUB_SIGNUP" => Some("open".to_string()),
            "TOKENHUB_TRIAL_CREDIT_USD" => Some("0.25".to_string()),
            _ => None,
        };
        settings.apply_env(&env).unwrap();
        assert!(settings.signup_open("0.0.0.0:3000".parse().unwrap()));
        assert_eq!(settings.trial_credit().unwrap(), Nanos(250_000_000));
        assert!(
            settings
                .apply_env(&|n: &str| (n == "TOKENHUB_SIGNUP").then(|| "maybe".into()))
                .is_err()
        );
        settings.trial_credit_usd = "-1".into();
        assert!(settings.trial_credit().is_err());
    }
}
