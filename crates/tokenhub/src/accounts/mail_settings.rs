//! Where account mail goes. The configuration's `accounts.smtp_url` and `smtp_from` are
//! the default; SMTP settings an admin saves (`/admin` → Settings) replace them as a
//! whole, and removing them returns to the default. The SMTP password is sealed at rest
//! like channel keys (`store::site_settings`) and never leaves the gateway: views say
//! only whether one is set. `MailCache` serves the mailer in force to the public paths
//! (sign-up, password reset) without a database read per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::mail::Mailer;
use super::{AccountError, Actor, audit};
use crate::store::Store;

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (usually port 465).
    Tls,
    /// Plain, then upgraded with STARTTLS, which is required (usually port 587).
    StartTls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

impl TlsMode {
    fn as_str(self) -> &'static str {
        match self {
            TlsMode::Tls => "tls",
            TlsMode::StartTls => "starttls",
            TlsMode::None => "none",
        }
    }

    fn parse(text: &str) -> Option<TlsMode> {
        [TlsMode::Tls, TlsMode::StartTls, TlsMode::None]
            .into_iter()
            .find(|mode| mode.as_str() == text)
    }
}

/// An admin's SMTP server. Serialized (for the audit log) without the password.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// Empty: the server takes mail without logging in.
    pub username: String,
    #[serde(skip)]
    pub password: Option<String>,
    /// The sender, `TokenHub <noreply@example.com>` or an address.
    pub from: String,
    pub tls: TlsMode,
}

const HOST: &str = "smtp_host";
const PORT: &str = "smtp_port";
const USERNAME: &str = "smtp_username";
const FROM: &str = "smtp_from";
const TLS: &str = "smtp_tls";
/// Stored sealed.
const PASSWORD: &str = "smtp_password";

impl SmtpSettings {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (HOST, self.host.clone()),
            (PORT, self.port.to_string()),
            (USERNAME, self.username.clone()),
            (FROM, self.from.clone()),
            (TLS, self.tls.as_str().to_string()),
        ]
    }

    /// The saved settings, if an admin saved a host (anything unreadable: none, logged).
    fn from_saved(saved: &HashMap<String, String>, password: Option<String>) -> Option<Self> {
        let host = saved.get(HOST).filter(|h| !h.is_empty())?;
        let read = || {
            Some(SmtpSettings {
                host: host.clone(),
                port: saved.get(PORT)?.parse().ok()?,
                username: saved.get(USERNAME).cloned().unwrap_or_default(),
                password,
                from: saved.get(FROM)?.clone(),
                tls: TlsMode::parse(saved.get(TLS)?)?,
            })
        };
        let settings = read();
        if settings.is_none() {
            tracing::warn!(
                "ignoring unreadable saved SMTP settings: mail uses the configuration's"
            );
        }
        settings
    }

    fn validate(&self) -> Result<(), AccountError> {
        let invalid = |message: &str| Err(AccountError::Invalid(message.into()));
        if self.host.is_empty() || self.host.len() > 253 || self.host.contains(char::is_whitespace)
        {
            return invalid("host is a host name or address, without spaces");
        }
        if self.port == 0 {
            return invalid("port must be between 1 and 65535");
        }
        if self.username.len() > 256 || self.password.as_ref().is_some_and(|p| p.len() > 256) {
            return invalid("username and password have at most 256 characters");
        }
        if !self.username.is_empty() && self.password.is_none() {
            return invalid("a username needs a password");
        }
        Mailer::from_settings(self)
            .map(|_| ())
            .map_err(|e| AccountError::Invalid(e.to_string()))
    }
}

/// The SMTP settings an admin saved, if any.
pub async fn saved(store: &Store) -> Result<Option<SmtpSettings>, AccountError> {
    let rows = store.site_settings().await?;
    if !rows.contains_key(HOST) {
        return Ok(None);
    }
    let password = store.sealed_site_setting(PASSWORD).await?;
    Ok(SmtpSettings::from_saved(&rows, password))
}

/// Saves an admin's SMTP settings, which then replace the configuration's. Links in
/// account mail start with `public_url`, so saving needs one.
pub async fn save(
    store: &Store,
    actor: &Actor,
    public_url: Option<&str>,
    settings: &SmtpSettings,
) -> Result<(), AccountError> {
    if public_url.is_none() {
        return Err(AccountError::Invalid(
            "set public_url (TOKENHUB_PUBLIC_URL) first: links in account mail start with it"
                .into(),
        ));
    }
    settings.validate()?;
    let before = saved(store).await?;
    let password = settings.password.as_deref().map(|p| (PASSWORD, p));
    store
        .put_site_settings_sealed(&settings.pairs(), password)
        .await?;
    if settings.password.is_none() {
        store.delete_site_settings(&[PASSWORD]).await?;
    }
    audit::record(
        store,
        actor,
        "mail.update",
        "smtp",
        before.as_ref(),
        Some(settings),
    )
    .await;
    Ok(())
}

/// Removes an admin's SMTP settings: mail goes through the configuration's again.
pub async fn remove(store: &Store, actor: &Actor) -> Result<(), AccountError> {
    let before = saved(store).await?;
    store
        .delete_site_settings(&[HOST, PORT, USERNAME, FROM, TLS, PASSWORD])
        .await?;
    audit::record::<SmtpSettings, SmtpSettings>(
        store,
        actor,
        "mail.remove",
        "smtp",
        before.as_ref(),
        None,
    )
    .await;
    Ok(())
}

/// The mailer in force: the admin's SMTP settings if saved, else the configuration's.
/// Read again at most once per `MAX_AGE`; a mailer is rebuilt only when the settings
/// changed, so its connection pool survives.
pub struct MailCache {
    file_default: Option<Arc<Mailer>>,
    /// A tokio mutex, held while reading: concurrent misses wait for one read.
    last: tokio::sync::Mutex<Option<Loaded>>,
}

struct Loaded {
    read_at: Instant,
    saved: Option<SmtpSettings>,
    mailer: Option<Arc<Mailer>>,
}

impl MailCache {
    pub const MAX_AGE: Duration = Duration::from_secs(1);

    /// `file_default`: the mailer of the configuration's `accounts.smtp_url`, if any.
    pub fn new(file_default: Option<Arc<Mailer>>) -> MailCache {
        MailCache {
            file_default,
            last: tokio::sync::Mutex::new(None),
        }
    }

    pub fn file_default_configured(&self) -> bool {
        self.file_default.is_some()
    }

    pub async fn current(&self, store: &Store) -> Result<Option<Arc<Mailer>>, AccountError> {
        let mut last = self.last.lock().await;
        if let Some(loaded) = last.as_ref()
            && loaded.read_at.elapsed() < Self::MAX_AGE
        {
            return Ok(loaded.mailer.clone());
        }
        let saved = saved(store).await?;
        let mailer = match last.take() {
            Some(previous) if previous.saved == saved => previous.mailer,
            _ => self.mailer_of(saved.as_ref()),
        };
        *last = Some(Loaded {
            read_at: Instant::now(),
            saved,
            mailer: mailer.clone(),
        });
        Ok(mailer)
    }

    fn mailer_of(&self, saved: Option<&SmtpSettings>) -> Option<Arc<Mailer>> {
        let Some(settings) = saved else {
            return self.file_default.clone();
        };
        match Mailer::from_settings(settings) {
            Ok(mailer) => Some(Arc::new(mailer)),
            Err(error) => {
                tracing::warn!(%error, "the saved SMTP settings are unusable: mail uses the configuration's");
                self.file_default.clone()
            }
        }
    }

    /// After a save on this instance: the next use reads the new settings.
    pub async fn forget(&self) {
        *self.last.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            username: "mailer".into(),
            password: Some("smtp-secret".into()),
            from: "TokenHub <noreply@example.com>".into(),
            tls: TlsMode::StartTls,
        }
    }

    fn root() -> Actor {
        Actor::cli()
    }

    #[test]
    fn settings_are_checked_before_they_are_saved() {
        assert!(settings().validate().is_ok());
        for broken in [
            SmtpSettings {
                host: "smtp example".into(),
                ..settings()
            },
            SmtpSettings {
                port: 0,
                ..settings()
            },
            SmtpSettings {
                password: None,
                ..settings()
            },
            SmtpSettings {
                from: "not a mailbox".into(),
                ..settings()
            },
        ] {
            assert!(broken.validate().is_err(), "{}", broken.host);
        }
    }

    #[tokio::test]
    async fn saved_settings_round_trip_with_the_password_sealed_and_can_be_removed() {
        let (store, _dir) = crate::store::test_support::temp_store().await;
        let public_url = Some("https://gateway.example");
        assert!(
            save(&store, &root(), None, &settings()).await.is_err(),
            "links need public_url"
        );
        save(&store, &root(), public_url, &settings())
            .await
            .unwrap();
        assert!(saved(&store).await.unwrap() == Some(settings()));
        let raw = store.site_settings().await.unwrap();
        assert!(!raw[PASSWORD].contains("smtp-secret"), "sealed at rest");

        let cache = MailCache::new(None);
        assert!(cache.current(&store).await.unwrap().is_some());
        remove(&store, &root()).await.unwrap();
        assert!(saved(&store).await.unwrap().is_none());
        cache.forget().await;
        assert!(
            cache.current(&store).await.unwrap().is_none(),
            "back to the configuration's (none)"
        );
    }
}
