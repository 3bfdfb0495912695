//! The SMTP server account mail goes through, set from the admin panel:
//! `/api/admin/mail` (admins). Saved settings override the configuration's
//! `accounts.smtp_url` until removed; the password is never returned, only whether one
//! is set.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{Body, ErrorBody, ManageError, Result};
use super::password_reset::account_mail;
use crate::accounts::Role;
use crate::accounts::mail::valid_email;
use crate::accounts::mail_settings::{self, SmtpSettings, TlsMode};
use crate::api::AppState;

#[derive(Serialize, ToSchema)]
pub struct MailView {
    /// Where account mail goes now: `admin` (the settings below), `config` (the
    /// configuration's `accounts.smtp_url`) or `none`.
    pub source: String,
    /// Whether the configuration names an SMTP server (the default when nothing is saved).
    pub config_smtp: bool,
    /// Whether `public_url` is set (links in mail start with it; mail needs it).
    pub public_url_set: bool,
    /// The saved settings; `null`: none saved.
    pub saved: Option<SmtpView>,
}

#[derive(Serialize, ToSchema)]
pub struct SmtpView {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// Whether a password is saved (it is never shown).
    pub password_set: bool,
    pub from: String,
    pub tls: TlsMode,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpChange {
    pub host: String,
    pub port: u16,
    /// Empty: the server takes mail without logging in.
    #[serde(default)]
    pub username: String,
    /// Omitted: keep the saved password; empty: remove it.
    pub password: Option<String>,
    /// The sender: `TokenHub <noreply@example.com>` or an address.
    pub from: String,
    /// `tls` (usually port 465), `starttls` (587) or `none` (a local relay).
    pub tls: TlsMode,
}

#[derive(Deserialize, ToSchema)]
pub struct TestMail {
    /// Where the test mail goes.
    pub to: String,
}

async fn view(state: &AppState) -> Result<MailView> {
    let saved = mail_settings::saved(&state.store).await?;
    let config_smtp = state.management.mail.file_default_configured();
    let source = match (&saved, config_smtp) {
        (Some(_), _) => "admin",
        (None, true) => "config",
        (None, false) => "none",
    };
    Ok(MailView {
        source: source.into(),
        config_smtp,
        public_url_set: state.web.public_url.is_some(),
        saved: saved.map(|s| SmtpView {
            password_set: s.password.is_some(),
            host: s.host,
            port: s.port,
            username: s.username,
            from: s.from,
            tls: s.tls,
        }),
    })
}

/// The SMTP server in force and the saved settings (without the password).
#[utoipa::path(get, path = "/api/admin/mail", tag = "admin",
    responses((status = 200, body = MailView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn get(State(state): State<AppState>, caller: Caller) -> Result<Json<MailView>> {
    caller.require(Role::Admin)?;
    Ok(Json(view(&state).await?))
}

/// Save SMTP settings; they replace the configuration's on every gateway sharing the database.
#[utoipa::path(put, path = "/api/admin/mail", tag = "admin", request_body = SmtpChange,
    responses((status = 200, body = MailView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Body(change): Body<SmtpChange>,
) -> Result<Json<MailView>> {
    caller.require(Role::Admin)?;
    let password = match change.password {
        None => mail_settings::saved(&state.store)
            .await?
            .and_then(|saved| saved.password),
        Some(password) if password.is_empty() => None,
        Some(password) => Some(password),
    };
    let settings = SmtpSettings {
        host: change.host.trim().to_string(),
        port: change.port,
        username: change.username.trim().to_string(),
        password,
        from: change.from.trim().to_string(),
        tls: change.tls,
    };
    let public_url = state.web.public_url.as_deref();
    mail_settings::save(&state.store, &caller.actor(), public_url, &settings).await?;
    state.management.mail.forget().await;
    Ok(Json(view(&state).await?))
}

/// Remove the saved SMTP settings: mail goes through the configuration's server again.
#[utoipa::path(delete, path = "/api/admin/mail", tag = "admin",
    responses((status = 200, body = MailView), (status = "4XX", body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn delete(State(state): State<AppState>, caller: Caller) -> Result<Json<MailView>> {
    caller.require(Role::Admin)?;
    mail_settings::remove(&state.store, &caller.actor()).await?;
    state.management.mail.forget().await;
    Ok(Json(view(&state).await?))
}

/// Send a test mail through the server in force and wait for its answer: 204 when it
/// took the mail, 502 with its reply otherwise.
#[utoipa::path(post, path = "/api/admin/mail/test", tag = "admin", request_body = TestMail,
    responses((status = 204), (status = "4XX", body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<TestMail>,
) -> Result<StatusCode> {
    caller.require(Role::Admin)?;
    let to = body.to.trim();
    if !valid_email(to) {
        return Err(ManageError::invalid("this is not an email address"));
    }
    let Some((mailer, site)) = account_mail(&state).await? else {
        return Err(ManageError::invalid(
            "no SMTP server to test: save SMTP settings first (public_url must be set)",
        ));
    };
    let body = format!(
        "This is a test mail from the TokenHub gateway at {site}.\n\
         Account mail (password resets, address confirmations) will arrive like this one.\n"
    );
    mailer
        .send(to, "TokenHub test mail", body)
        .await
        .map_err(|e| ManageError::from(crate::accounts::AccountError::Upstream(e.to_string())))?;
    Ok(StatusCode::NO_CONTENT)
}
