//! Settings an operator changes at runtime from the admin panel. Each starts at the
//! configuration file's value and is overridden by a saved row (`store::site_settings`).
//! Admin views read them from the database; the public paths any visitor can call
//! (sign-up, the anonymous chat trial, page shells) go through a `SettingsCache`, so a
//! flood of anonymous requests cannot turn into a flood of database reads. A save on one
//! instance applies there at once and on the others within `SettingsCache::MAX_AGE`.

use std::collections::HashMap;

use serde::Serialize;

use super::{AccountError, Actor, audit};
use crate::ledger::money::Nanos;
use crate::store::Store;

/// The effective settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteSettings {
    /// Whether visitors may create accounts.
    pub signup_open: bool,
    /// Credited to every new account.
    pub trial_credit: Nanos,
    /// Whether visitors who are not logged in may use the chat demo (free models only).
    pub anonymous_chat: bool,
    /// Anonymous chat requests per minute, per client address.
    pub anonymous_chat_rpm: u32,
    /// How users reach the operator ("WeChat: TokenHub_Support"), shown under "Need
    /// help?" on the docs page; empty hides it.
    pub support_contact: String,
    /// Whether sign-up asks for an email address and the account must confirm it
    /// (`verification.rs`) before it creates keys or receives the trial credit.
    pub email_verification: bool,
}

const SIGNUP: &str = "signup";
const TRIAL_CREDIT: &str = "trial_credit_nano";
const ANONYMOUS_CHAT: &str = "anonymous_chat";
const ANONYMOUS_CHAT_RPM: &str = "anonymous_chat_rpm";
const SUPPORT_CONTACT: &str = "support_contact";
const EMAIL_VERIFICATION: &str = "email_verification";

/// The longest support contact: one line on the docs page.
pub const MAX_SUPPORT_CONTACT_CHARS: usize = 200;

/// The largest anonymous rate an operator may set: the trial is a demo, not an API.
pub const MAX_ANONYMOUS_CHAT_RPM: u32 = 600;

impl SiteSettings {
    /// `defaults` overridden by every saved value that parses (others are ignored and logged).
    fn overlay(mut self, saved: &HashMap<String, String>) -> SiteSettings {
        for (name, value) in saved {
            let applied = match name.as_str() {
                SIGNUP => parse_flag(value, "open", "closed").map(|v| self.signup_open = v),
                TRIAL_CREDIT => value.parse().ok().map(|v| self.trial_credit = Nanos(v)),
                ANONYMOUS_CHAT => parse_flag(value, "on", "off").map(|v| self.anonymous_chat = v),
                ANONYMOUS_CHAT_RPM => value.parse().ok().map(|v| self.anonymous_chat_rpm = v),
                EMAIL_VERIFICATION => {
                    parse_flag(value, "on", "off").map(|v| self.email_verification = v)
                }
                SUPPORT_CONTACT => {
                    self.support_contact = value.clone();
                    Some(())
                }
                _ => Some(()),
            };
            if applied.is_none() {
                tracing::warn!(name, value, "ignoring an unreadable saved setting");
            }
        }
        self
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let flag = |on: bool, yes: &str, no: &str| if on { yes } else { no }.to_string();
        vec![
            (SIGNUP, flag(self.signup_open, "open", "closed")),
            (TRIAL_CREDIT, self.trial_credit.0.to_string()),
            (ANONYMOUS_CHAT, flag(self.anonymous_chat, "on", "off")),
            (ANONYMOUS_CHAT_RPM, self.anonymous_chat_rpm.to_string()),
            (SUPPORT_CONTACT, self.support_contact.clone()),
            (
                EMAIL_VERIFICATION,
                flag(self.email_verification, "on", "off"),
            ),
        ]
    }

    fn validate(&self) -> Result<(), AccountError> {
        if self.trial_credit < Nanos::ZERO {
            return Err(AccountError::Invalid(
                "trial_credit_usd must not be negative".into(),
            ));
        }
        if self.support_contact.chars().count() > MAX_SUPPORT_CONTACT_CHARS
            || self.support_contact.chars().any(char::is_control)
        {
            return Err(AccountError::Invalid(format!(
                "support_contact is one line of at most {MAX_SUPPORT_CONTACT_CHARS} characters"
            )));
        }
        check_anonymous_chat_rpm(self.anonymous_chat_rpm)
            .map_err(|e| AccountError::Invalid(format!("anonymous_chat_rpm {e}")))
    }
}

/// The one range check of the anonymous chat rate, for saved settings and the config file.
pub fn check_anonymous_chat_rpm(rpm: u32) -> Result<(), String> {
    if (1..=MAX_ANONYMOUS_CHAT_RPM).contains(&rpm) {
        Ok(())
    } else {
        Err(format!("must be between 1 and {MAX_ANONYMOUS_CHAT_RPM}"))
    }
}

fn parse_flag(value: &str, yes: &str, no: &str) -> Option<bool> {
    match value {
        v if v == yes => Some(true),
        v if v == no => Some(false),
        _ => None,
    }
}

/// The settings in force for the public paths, read again at most once per `MAX_AGE`.
pub struct SettingsCache {
    defaults: SiteSettings,
    /// A tokio mutex, held while reading: concurrent misses wait for one read.
    last: tokio::sync::Mutex<Option<(std::time::Instant, SiteSettings)>>,
}

impl SettingsCache {
    pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

    /// `defaults` are the configuration's values, which saved values override.
    pub fn new(defaults: SiteSettings) -> SettingsCache {
        SettingsCache {
            defaults,
            last: tokio::sync::Mutex::new(None),
        }
    }

    pub fn defaults(&self) -> &SiteSettings {
        &self.defaults
    }

    pub async fn current(&self, store: &Store) -> Result<SiteSettings, AccountError> {
        let mut last = self.last.lock().await;
        if let Some((read_at, settings)) = last.as_ref()
            && read_at.elapsed() < Self::MAX_AGE
        {
            return Ok(settings.clone());
        }
        let settings = load(store, &self.defaults).await?;
        *last = Some((std::time::Instant::now(), settings.clone()));
        Ok(settings)
    }

    /// After a save on this instance: the next use reads the new values.
    pub async fn forget(&self) {
        *self.last.lock().await = None;
    }
}

/// The settings in force: `defaults` (from the configuration) overridden by saved values.
pub async fn load(store: &Store, defaults: &SiteSettings) -> Result<SiteSettings, AccountError> {
    Ok(defaults.clone().overlay(&store.site_settings().await?))
}

/// Saves every setting (so later changes to the configuration file no longer apply) and
/// writes the change to the audit log.
pub async fn save(
    store: &Store,
    actor: &Actor,
    before: &SiteSettings,
    after: &SiteSettings,
) -> Result<(), AccountError> {
    after.validate()?;
    store.put_site_settings(&after.pairs()).await?;
    audit::record(
        store,
        actor,
        "settings.update",
        "settings",
        Some(before),
        Some(after),
    )
    .await;
    Ok(())
}

/// The id of the system user `name` that owns usage made without an account (the chat
/// demo's anonymous trial), created on first start with no password (it cannot log in)
/// and no balance (it may only use free models).
pub async fn system_user(store: &Store, name: &str) -> Result<i64, AccountError> {
    if let Some(user) = store.user_by_name(name).await? {
        return Ok(user.id);
    }
    match store.create_user(name, "user", None, Nanos::ZERO).await {
        Ok(user) => Ok(user.id),
        // Another gateway instance created it first.
        Err(crate::store::StoreError::Conflict(_)) => store
            .user_by_name(name)
            .await?
            .map(|u| u.id)
            .ok_or_else(|| AccountError::NoSuchUser(name.into())),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn defaults() -> SiteSettings {
        SiteSettings {
            signup_open: true,
            trial_credit: Nanos::from_usd(1),
            anonymous_chat: true,
            anonymous_chat_rpm: 5,
            support_contact: String::new(),
            email_verification: false,
        }
    }

    #[test]
    fn saved_values_override_the_defaults_and_round_trip() {
        let changed = SiteSettings {
            signup_open: false,
            trial_credit: Nanos(250_000_000),
            anonymous_chat: false,
            anonymous_chat_rpm: 12,
            support_contact: "WeChat: TokenHub_Support".into(),
            email_verification: true,
        };
        let saved: HashMap<String, String> = changed
            .pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(defaults().overlay(&saved), changed);
        assert_eq!(defaults().overlay(&HashMap::new()), defaults());
    }

    #[test]
    fn unreadable_saved_values_keep_the_default() {
        let saved = HashMap::from([
            (SIGNUP.to_string(), "maybe".to_string()),
            (ANONYMOUS_CHAT_RPM.to_string(), "-3".to_string()),
        ]);
        assert_eq!(defaults().overlay(&saved), defaults());
    }

    #[test]
    fn refuses_out_of_range_values() {
        let mut settings = defaults();
        settings.anonymous_chat_rpm = 0;
        assert!(settings.validate().is_err());
        settings.anonymous_chat_rpm = 5;
        settings.trial_credit = Nanos(-1);
        assert!(settings.validate().is_err());
        settings.trial_credit = Nanos::ZERO;
        settings.support_contact = "line one\nline two".into();
        assert!(settings.validate().is_err());
    }

    #[tokio::test]
    async fn the_cache_serves_the_last_read_until_it_is_told_of_a_save() {
        let (store, _dir) = crate::store::test_support::temp_store().await;
        let cache = SettingsCache::new(defaults());
        assert!(cache.current(&store).await.unwrap().anonymous_chat);
        // Another instance saves: this one keeps the values it read, for at most MAX_AGE.
        store
            .put_site_settings(&[(ANONYMOUS_CHAT, "off".into())])
            .await
            .unwrap();
        assert!(cache.current(&store).await.unwrap().anonymous_chat);
        cache.forget().await;
        assert!(!cache.current(&store).await.unwrap().anonymous_chat);
        assert_eq!(cache.defaults(), &defaults());
    }
}
